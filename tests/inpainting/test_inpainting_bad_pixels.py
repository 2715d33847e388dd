"""MaskedStream: bad measured voxels dead for their frame, filled; live equals offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcdi_online import InputDataError
from bcdi_online.inpainting import (
    GapInpainter,
    MaskedStream,
    find_bad_pixels,
    inpaint_with_bad_pixels,
)


def window_mean(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    keep = (~masks).float()
    total = (patches * keep).sum(dim=(1, 2, 3), keepdim=True)
    return (total / keep.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1)).expand_as(patches)


INPAINTER = GapInpainter(window_mean)
MASK = np.zeros((48, 48), bool)
MASK[:, 20:26] = True


def scan(n: int, bad: dict[tuple[int, int, int], float]) -> np.ndarray:
    data = np.random.default_rng(n).poisson(40.0, (n, 48, 48)).astype(np.float32)
    data[:, MASK] = 0
    for (t, y, x), value in bad.items():
        data[t, y, x] = value
    return data


def live(data: np.ndarray, chunk: int, expected: int | None) -> np.ndarray:
    stream = MaskedStream(INPAINTER, MASK, expected_frames=expected)
    out = np.full(data.shape, -1.0, np.float32)
    for start in range(0, len(data), chunk):
        done = stream.add_frames(data[start : start + chunk])
        out[done.start : done.stop] = stream.result(done.stop, done.start)
    done = stream.complete()
    out[done.start : done.stop] = stream.result(done.stop, done.start)
    return out


BAD = {(0, 3, 4): np.nan, (17, 40, 40): -2.0, (18, 40, 40): np.inf, (39, 5, 30): np.nan}


@pytest.mark.parametrize("chunk", [1, 5, 40])
@pytest.mark.parametrize("expected", [None, 40])
def test_live_equals_offline_whatever_the_chunks(chunk, expected):
    data = scan(40, BAD)
    before = data.copy()
    offline, bad = inpaint_with_bad_pixels(INPAINTER, data, MASK)
    np.testing.assert_allclose(live(data, chunk, expected), offline, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(data, before)  # never modified (NaN included)
    assert bad.sum() == len(BAD) and np.isfinite(offline).all() and (offline >= 0).all()
    measured = ~MASK & ~bad
    np.testing.assert_array_equal(offline[measured], data[measured])  # bit-exact


def test_without_bad_pixels_it_is_the_gap_stream_exactly():
    data = scan(40, {})
    np.testing.assert_array_equal(inpaint_with_bad_pixels(INPAINTER, data, MASK)[0],
                                  INPAINTER(data, MASK))  # fmt: skip


def test_short_scan_and_counts():
    data = scan(10, {(2, 10, 10): np.nan, (9, 11, 11): -1.0})
    stream = MaskedStream(INPAINTER, MASK)
    assert not len(stream.add_frames(data))  # shorter than a window: nothing final yet
    filled = stream.finish()
    assert np.isfinite(filled).all() and stream.bad_pixels == 2 and stream.bad_frames == [2, 9]


def test_too_many_bad_pixels_in_a_frame_names_it():
    data = scan(8, {})
    data[5, :10, :] = np.nan  # 480 of 1920 measured pixels
    with pytest.raises(InputDataError, match=r"frames \[5\] have more than 1.00%"):
        MaskedStream(INPAINTER, MASK).add_frames(data)


def test_find_bad_pixels_ignores_the_gap_and_unsigned_data():
    data = scan(2, {(0, 0, 0): -1.0, (1, 0, 21): np.nan})  # the second one in the gap
    assert find_bad_pixels(data, MASK).sum() == 1
    assert not find_bad_pixels(np.abs(np.nan_to_num(data)).astype(np.uint32), MASK).any()
