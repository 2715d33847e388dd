"""The patch engine, tested with linear stand-in predictors (no model), as MONAI does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcdi_online import GapMaskError, InputDataError
from bcdi_online.inpainting import GapInpainter, WindowPlan
from bcdi_online.inpainting._plan import dense_starts, plan_frame


def double(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return 2 * patches


class Counting:
    def __init__(self) -> None:
        self.calls = 0
        self.windows = 0

    def __call__(self, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.windows += len(patches)
        return torch.full_like(patches, 7.0)


def _mask(shape: tuple[int, int], kind: str, width: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    ny, nx = shape
    if kind in ("column", "cross"):
        mask[:, nx // 2 - width // 2 : nx // 2 - width // 2 + width] = True
    if kind in ("row", "cross"):
        mask[ny // 3 : ny // 3 + width, :] = True
    if kind == "parallel":
        mask[:, 10 : 10 + width] = True
        mask[:, nx - 20 : nx - 20 + width] = True
    if kind == "pixels":
        mask[5, 7] = mask[40, 60] = mask[41, 60] = True
    return mask


def _data(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(20.0, size=shape).astype(np.uint32)


# two parallel stripes wider than 12 px do not both fit the 112 px test frame
STITCH_CASES = [
    (kind, width)
    for kind in ("column", "row", "cross", "parallel", "pixels")
    for width in (3, 6, 12, 38, 40)
    if not (kind == "parallel" and width > 12)
]


@pytest.mark.parametrize(("kind", "width"), STITCH_CASES)
def test_linear_predictor_is_stitched_exactly(kind: str, width: int) -> None:
    shape = (40, 96, 112)
    data = _data(shape)
    mask = _mask(shape[1:], kind, width)
    out = GapInpainter(double, zero_gap=False)(data, mask)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, ~mask], data[:, ~mask].astype(np.float32))
    np.testing.assert_allclose(out[:, mask], 2 * data[:, mask], rtol=1e-5)


@pytest.mark.parametrize("n_frames", [1, 5, 31, 32, 33, 57])
def test_any_number_of_frames(n_frames: int) -> None:
    data = _data((n_frames, 64, 64))
    mask = _mask((64, 64), "cross", 6)
    out = GapInpainter(double, zero_gap=False)(data, mask)
    np.testing.assert_allclose(out[:, mask], 2 * data[:, mask], rtol=1e-5)


def test_frame_smaller_than_a_window_is_padded() -> None:
    data = _data((20, 18, 24))
    mask = np.zeros((18, 24), bool)
    mask[:, 10:13] = True
    out = GapInpainter(double, zero_gap=False)(data, mask)
    assert out.shape == data.shape
    np.testing.assert_allclose(out[:, mask], 2 * data[:, mask], rtol=1e-5)


def test_gap_is_zeroed_and_mask_passed_to_predictor() -> None:
    seen = {}

    def spy(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        seen["gap_values"] = patches[masks].abs().sum().item()
        seen["mask_fraction"] = masks.float().mean().item()
        return torch.ones_like(patches)

    data = _data((32, 64, 64))
    GapInpainter(spy)(data, _mask((64, 64), "column", 6))
    assert seen["gap_values"] == 0
    assert 0 < seen["mask_fraction"] < 0.5


def test_volume_mask_only_fills_its_own_voxels() -> None:
    data = _data((40, 64, 64))
    mask = np.zeros(data.shape, bool)
    mask[:, :, 30:36] = True
    mask[3, 10, 10] = True
    out = GapInpainter(double, zero_gap=False)(data, mask)
    np.testing.assert_array_equal(out[~mask], data[~mask].astype(np.float32))
    np.testing.assert_allclose(out[mask], 2 * data[mask], rtol=1e-5)


def test_empty_mask_copies_without_calling_the_predictor() -> None:
    predictor = Counting()
    data = _data((8, 32, 32))
    out = GapInpainter(predictor)(data, np.zeros((32, 32), bool))
    assert predictor.calls == 0
    np.testing.assert_array_equal(out, data.astype(np.float32))


def test_raw_data_is_not_modified_and_output_non_negative() -> None:
    data = _data((32, 64, 64)).astype(np.float64)
    before = data.copy()
    out = GapInpainter(lambda p, m: -p - 1)(data, _mask((64, 64), "column", 6))
    np.testing.assert_array_equal(data, before)
    assert out.min() >= 0


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_stream_equals_offline(chunk: int) -> None:
    data = _data((45, 64, 80))
    mask = _mask((64, 80), "cross", 6)
    inpainter = GapInpainter(lambda p, m: p.mean(dim=(1, 2, 3), keepdim=True) + 0 * p)
    offline = inpainter(data, mask)
    stream = inpainter.stream(mask)
    final = 0
    for start in range(0, len(data), chunk):
        done = stream.add_frames(data[start : start + chunk])
        assert done.start == final
        final = done.stop
        # frames reported final no longer change
        np.testing.assert_allclose(stream.result(final), offline[:final], rtol=1e-6)
        np.testing.assert_allclose(
            stream.result(done.stop, done.start), offline[done.start : done.stop], rtol=1e-6
        )
    np.testing.assert_allclose(stream.finish(), offline, rtol=1e-6)


def test_out_of_memory_halves_the_batch() -> None:
    state = {"failed": False}

    def flaky(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if len(patches) > 4 and not state["failed"]:
            state["failed"] = True
            raise torch.OutOfMemoryError("simulated")
        return 2 * patches

    data = _data((40, 96, 96))
    mask = _mask((96, 96), "cross", 6)
    inpainter = GapInpainter(flaky, zero_gap=False, batch_size=16)
    out = inpainter(data, mask)
    assert state["failed"]
    assert inpainter.batch_size == 16  # the inpainter's default is kept; the stream adapted
    np.testing.assert_allclose(out[:, mask], 2 * data[:, mask], rtol=1e-5)


def test_windows_only_where_the_gap_is() -> None:
    plan = WindowPlan()
    mask = _mask((256, 256), "column", 6)
    windows = plan_frame(mask, plan)
    assert len(windows) == len(dense_starts(256, 32, plan.stride))
    assert all(w.width == 32 and 0 <= w.x0 <= 125 <= w.x0 + 32 for w in windows)
    wide = plan_frame(_mask((256, 256), "column", 38), plan)
    assert {w.width for w in wide} == {64}


@pytest.mark.parametrize(
    ("data", "mask", "error", "message"),
    [
        (np.zeros((4, 8, 8)), np.zeros((8, 9), bool), GapMaskError, "does not match"),
        (np.zeros((8, 8)), np.zeros((8, 8), bool), InputDataError, "n_frames"),
        (np.full((4, 8, 8), np.nan), np.zeros((8, 8), bool), InputDataError, "NaN"),
        (-np.ones((4, 8, 8)), np.zeros((8, 8), bool), InputDataError, "negative"),
        (np.zeros((4, 8, 8)), np.ones((8, 8), bool), GapMaskError, "every pixel"),
        (np.zeros((4, 8, 8)), np.zeros((8, 8), int), GapMaskError, "bool"),
    ],
)
def test_bad_input_is_rejected(data, mask, error, message) -> None:
    with pytest.raises(error, match=message):
        GapInpainter(double)(data, mask)


def test_nan_inside_the_gap_is_accepted() -> None:
    data = _data((32, 64, 64)).astype(np.float32)
    mask = _mask((64, 64), "column", 6)
    data[:, mask] = np.nan
    out = GapInpainter(lambda p, m: torch.ones_like(p))(data, mask)
    assert np.isfinite(out).all()
