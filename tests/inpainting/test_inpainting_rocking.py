"""Windows along the rocking axis: the shallow tail window and the expected frame count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcdi_online.inpainting import GapInpainter, WindowPlan, rocking_windows
from bcdi_online.inpainting._plan import dense_starts


def _patch_mean(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """A stand-in whose output depends on the whole window (as a CNN's does)."""
    return patches.mean(dim=(1, 2, 3), keepdim=True) + 0 * patches


class Counting:
    """Wraps a predictor; counts the windows it was asked for, by depth."""

    def __init__(self) -> None:
        self.by_depth: dict[int, int] = {}

    def __call__(self, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        depth = patches.shape[1]
        self.by_depth[depth] = self.by_depth.get(depth, 0) + len(patches)
        return _patch_mean(patches, masks)


def _scan(n_frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    data = np.random.default_rng(seed).poisson(20.0, size=(n_frames, 64, 80))
    mask = np.zeros((64, 80), bool)
    mask[:, 37:43] = True
    mask[20:26, :] = True
    return data.astype(np.uint32), mask


@pytest.mark.parametrize("n_frames", [32, 33, 38, 39, 40, 41, 45, 47, 64, 100, 128, 255, 256])
def test_rocking_windows_cover_the_scan_with_a_tail(n_frames: int) -> None:
    plan = WindowPlan()
    windows = rocking_windows(n_frames, plan)
    cover = np.zeros(n_frames, int)
    for start, depth in windows:
        assert 0 <= start and start + depth <= n_frames
        cover[start : start + depth] += 1
    assert cover.min() >= 1
    reserve = plan.tail_reserve
    if n_frames - reserve >= plan.depth:  # room for a tail: it alone holds the last frames
        assert windows[-1] == (n_frames - plan.tail_depth, plan.tail_depth)
        assert all(s + d <= n_frames - reserve for s, d in windows[:-1])
        assert np.all(cover[n_frames - reserve :] == 1)
        if windows[-2][0] >= plan.margin:  # the last two full windows are not both at
            assert windows[-2][0] - windows[-3][0] >= plan.margin  # the very end
    else:
        assert {d for _, d in windows} == {plan.depth}


def test_regular_windows_belong_to_every_longer_scan() -> None:
    # what lets a live stream run them before it knows how many frames will come
    plan = WindowPlan()
    for start in range(0, 200, plan.stride):
        for n_frames in range(start + plan.depth + plan.settle_frames, 260):
            assert (start, plan.depth) in rocking_windows(n_frames, plan)


def test_tail_can_be_turned_off_and_is_checked() -> None:
    for off in (WindowPlan(tail_depth=0), WindowPlan(tail_depth=32)):
        assert rocking_windows(128, off) == [(s, 32) for s in dense_starts(128, 32, 24)]
    with pytest.raises(ValueError, match="tail_depth 18"):
        WindowPlan(tail_depth=18)
    with pytest.raises(ValueError, match="tail_depth 36"):
        WindowPlan(tail_depth=36)
    with pytest.raises(ValueError, match="end_margin -1"):
        WindowPlan(end_margin=-1)
    assert WindowPlan(end_margin=20).margin == 32 - 24 + 1


@pytest.mark.parametrize("n_frames", [45, 128])
def test_tail_is_the_only_work_left_when_the_expected_scan_ends(n_frames: int) -> None:
    data, mask = _scan(n_frames)
    offline = GapInpainter(_patch_mean)(data, mask)
    counting = Counting()
    stream = GapInpainter(counting).stream(mask, expected_frames=n_frames)
    for frame in data[:-1]:
        stream.add_frames(frame[None])
    before_last = dict(counting.by_depth)
    stream.add_frames(data[-1:])
    at_last = dict(counting.by_depth)
    result = stream.finish()
    np.testing.assert_allclose(result, offline, rtol=1e-6)
    assert counting.by_depth == at_last  # finishing ran no window
    n_spatial = len(stream.windows)
    ran_at_last = {d: at_last[d] - before_last.get(d, 0) for d in at_last}
    tail = WindowPlan().tail_depth
    assert ran_at_last == {tail: n_spatial, 32: 0}  # only the tail needed the last frame
    n_full = len(rocking_windows(n_frames, WindowPlan())) - 1
    assert counting.by_depth == {32: n_full * n_spatial, tail: n_spatial}


@pytest.mark.parametrize(("expected", "n_frames"), [(128, 90), (128, 120), (100, 128), (64, 40)])
def test_a_wrong_expected_count_still_gives_the_offline_result(
    expected: int, n_frames: int
) -> None:
    # aborted scans end early, some plans take more points than announced
    data, mask = _scan(n_frames, seed=1)
    offline = GapInpainter(_patch_mean)(data, mask)
    stream = GapInpainter(_patch_mean).stream(mask, expected_frames=expected)
    final = 0
    for start in range(0, n_frames, 5):
        done = stream.add_frames(data[start : start + 5])
        final = done.stop
        np.testing.assert_allclose(stream.result(final), offline[:final], rtol=1e-6)
    np.testing.assert_allclose(stream.finish(), offline, rtol=1e-6)


def test_provisional_frames_are_what_finish_returns() -> None:
    data, mask = _scan(100, seed=2)
    offline = GapInpainter(_patch_mean)(data, mask)
    stream = GapInpainter(_patch_mean).stream(mask, expected_frames=100)
    published: dict[int, tuple[int, np.ndarray]] = {}  # frame -> (frames in, values)
    for start in range(0, 100, 4):
        stream.add_frames(data[start : start + 4])
        ready = stream.provisional(len(published))
        if ready is not None:
            frames, values = ready
            assert frames.start == len(published)
            for frame, value in zip(frames, values, strict=True):
                published[frame] = (stream.n_frames, value)
    assert sorted(published) == list(range(100))
    # only the tail window waits for the last frame: what it does not reach came earlier
    tail_start = 100 - WindowPlan().tail_depth
    assert all(seen < 100 for frame, (seen, _) in published.items() if frame < tail_start)
    assert stream.complete() == range(100 - 32 - WindowPlan().tail_reserve, 100)
    assert stream.complete() == range(100, 100) and stream.provisional() is None
    result = stream.result()
    for frame, (_, values) in published.items():  # the final values, bit for bit
        np.testing.assert_array_equal(values, result[frame], err_msg=f"frame {frame}")
    np.testing.assert_allclose(result, offline, rtol=1e-6)
