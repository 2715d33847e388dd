"""Engine contract edge cases: predictor output checks, plan geometry, stream life cycle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcdi_online import InputDataError, ModelError
from bcdi_online.inpainting import GapInpainter, WindowPlan
from bcdi_online.inpainting._plan import plan_frame


def double(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return 2 * patches


def _data(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(1).poisson(20.0, size=shape).astype(np.float32)


def _column(shape: tuple[int, int] = (64, 64), width: int = 3) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[:, 30 : 30 + width] = True
    return mask


@pytest.mark.parametrize(
    ("segment", "transposed"),
    [((slice(50, 51), slice(5, 100)), True), ((slice(5, 90), slice(40, 42)), False)],
    ids=["horizontal", "vertical"],
)
def test_dead_segment_gets_windows_along_its_length(segment, transposed) -> None:
    mask = np.zeros((96, 112), dtype=bool)
    mask[segment] = True
    windows = plan_frame(mask, WindowPlan())
    assert {w.transposed for w in windows} == {transposed}
    assert {(w.width, w.height)[transposed] for w in windows} == {32}  # across the segment
    data = _data((40, 96, 112))
    out = GapInpainter(double, zero_gap=False)(data, mask)
    np.testing.assert_allclose(out[:, mask], 2 * data[:, mask], rtol=1e-5)


@pytest.mark.parametrize(("depth", "length"), [(64, 16), (16, 64)])
def test_along_stride_follows_the_window_length(depth: int, length: int) -> None:
    plan = WindowPlan(depth=depth, length=length)
    windows = plan_frame(_column((256, 256), 6), plan)
    starts = sorted(w.y0 for w in windows)
    assert starts[0] == 0 and starts[-1] == 256 - length
    assert max(np.diff(starts)) == plan.along_stride == round(0.75 * length)


@pytest.mark.parametrize(
    ("predictor", "message"),
    [
        (lambda p, m: p[..., :-1], "shape"),
        (lambda p, m: torch.full_like(p, float("nan")), "NaN"),
        (lambda p, m: torch.where(m, torch.inf, p), "inf"),
    ],
    ids=["wrong-shape", "nan", "inf"],
)
def test_broken_predictor_output_is_rejected(predictor, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        GapInpainter(predictor)(_data((32, 64, 64)), _column())


def test_non_finite_prediction_outside_the_gap_is_ignored() -> None:
    out = GapInpainter(lambda p, m: torch.where(m, 2 * p, torch.nan))(
        _data((32, 64, 64)), _column()
    )
    assert np.isfinite(out).all()


def test_finished_stream_rejects_frames_and_finish_is_idempotent() -> None:
    data = _data((40, 64, 64))
    stream = GapInpainter(double).stream(_column())
    stream.add_frames(data)
    first = stream.finish()
    np.testing.assert_array_equal(stream.finish(), first)
    with pytest.raises(InputDataError, match="finished after 40 frames"):
        stream.add_frames(data[:1])


def test_frame_masks_then_frame_mask_past_the_first_buffer() -> None:
    data = _data((100, 64, 64))
    mask = _column(width=6)
    stream = GapInpainter(double, zero_gap=False).stream(mask)
    stream.add_frames(data[:1], mask[None])
    for start in range(1, len(data), 9):
        stream.add_frames(data[start : start + 9])
    out = stream.finish()
    np.testing.assert_allclose(out[:, mask], 2 * data[:, mask], rtol=1e-5)
