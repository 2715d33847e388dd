"""The overshoot guard: the bound it states, measured voxels untouched, live == offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcdi_online import ConfigurationError
from bcdi_online.evaluation import gap_ratios, real_space_cases
from bcdi_online.inpainting import GapInpainter, OvershootGuard, inpaint

GUARD = OvershootGuard()


def _poisson_upper(n: float, z: float = GUARD.noise_sigmas) -> float:
    return n + z * z / 2 + z * np.sqrt(n + z * z / 4)


def huge(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """A predictor that overshoots everything."""
    return torch.full_like(patches, 1e9)


def tenfold_max(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Overshoots by a window-dependent amount (as a model that over-fills does)."""
    return 10 * patches.amax(dim=(1, 2, 3), keepdim=True) + patches


def _two_sides(left: float, right: float) -> tuple[np.ndarray, np.ndarray]:
    """A 10 px column stripe between flat sides, and a bright measured spot far from it."""
    data = np.full((20, 48, 64), left, dtype=np.float32)
    data[:, :, 30:] = right
    data[:, 2:5, 55:58] = 1e6  # the Bragg peak, measured, 35 px from the gap
    mask = np.zeros((48, 64), dtype=bool)
    mask[:, 20:30] = True
    return data, mask


def test_flat_edges_bound_the_fill_at_factor_times_their_poisson_limit() -> None:
    data, mask = _two_sides(100.0, 100.0)
    out = GapInpainter(huge)(data, mask)
    np.testing.assert_allclose(out[:, mask], GUARD.factor * _poisson_upper(100.0), rtol=1e-5)
    np.testing.assert_allclose(GapInpainter(huge, guard=None)(data, mask)[:, mask], 1e9, rtol=1e-6)


def test_across_a_stripe_the_bound_is_log_linear_between_its_edges() -> None:
    # the stripe spans the frame and its sides are flat: the harmonic interpolation is 1D
    data, mask = _two_sides(100.0, 10_000.0)
    out = GapInpainter(huge)(data, mask)
    left, right = np.log(_poisson_upper(100.0)), np.log(_poisson_upper(10_000.0))
    x = np.arange(20, 30)
    expected = GUARD.factor * np.exp(left + (right - left) * (x - 19) / 11)
    np.testing.assert_allclose(
        out[:, :, 20:30], np.broadcast_to(expected, (20, 48, 10)), rtol=1e-4
    )


@pytest.mark.parametrize("guard", [GUARD, OvershootGuard(factor=1.5, edge_reach=2)])
def test_measured_voxels_are_never_touched(guard: OvershootGuard) -> None:
    data, mask = _two_sides(100.0, 10_000.0)
    data += np.random.default_rng(0).poisson(5.0, data.shape).astype(np.float32)
    out = GapInpainter(huge, guard=guard)(data, mask)
    np.testing.assert_array_equal(out[:, ~mask], data[:, ~mask])
    assert np.all(out[:, mask] <= guard.factor * _poisson_upper(float(data[:, ~mask].max())))


def test_a_peak_in_the_gap_is_left_alone() -> None:
    # the edges are the peak's flanks, the brightest measured counts: nothing is bounded
    data, mask = _two_sides(100.0, 100.0)
    data[:, 2:5, 55:58] = 100.0
    data[:, 20:26, 19] = data[:, 20:26, 30] = 5e4
    out = GapInpainter(huge)(data, mask)
    np.testing.assert_allclose(out[:, mask], 1e9, rtol=1e-6)


def _crystal_like(late_spot: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian Bragg peak with fringes, measured; a 12 px cross off it.

    With ``late_spot`` the peak is in the gap instead, and a brighter spot far from the
    gap in frame 60 makes the frames before it guarded, but only once it has come.
    """
    t, y, x = np.meshgrid(
        np.arange(64) - 32.0,
        np.arange(72) - 30.0,
        np.arange(80) - (46.0 if late_spot else 28.0),
        indexing="ij",
    )
    r = np.sqrt((2 * t) ** 2 + y**2 + x**2)
    expected = 1e5 * np.exp(-((r / 3) ** 2)) + 2e3 * np.cos(r) ** 2 / (1 + r**2)
    data = np.random.default_rng(1).poisson(expected).astype(np.float32)
    mask = np.zeros((72, 80), bool)
    mask[:, 40:52] = True
    mask[44:56, :] = True
    if late_spot:
        data[60, 5:7, 5:7] = 1e7
    return data, mask


def test_the_guard_is_active_on_the_crystal_like_scan() -> None:
    data, mask = _crystal_like()
    plain = GapInpainter(tenfold_max, guard=None)(data, mask)
    guarded = GapInpainter(tenfold_max)(data, mask)
    assert np.count_nonzero(guarded[:, mask] < plain[:, mask]) > 0.3 * plain[:, mask].size
    assert guarded[:, mask].sum() < 0.5 * plain[:, mask].sum()


@pytest.mark.parametrize("expected_frames", [None, 64, 70])
@pytest.mark.parametrize("chunk", [1, 5])
@pytest.mark.parametrize(
    ("guard", "late_spot"),
    [(GUARD, False), (GUARD, True), (OvershootGuard(peak_frames=40), True)],
)
def test_streamed_with_the_guard_equals_offline(
    expected_frames: int | None, chunk: int, guard: OvershootGuard, late_spot: bool
) -> None:
    # peak_frames=40 reads further ahead than the window plan holds frames back
    data, mask = _crystal_like(late_spot)
    inpainter = GapInpainter(tenfold_max, guard=guard)
    offline = inpainter(data, mask)
    stream = inpainter.stream(mask, expected_frames=expected_frames)
    published: dict[int, np.ndarray] = {}
    for start in range(0, len(data), chunk):
        final = stream.add_frames(data[start : start + chunk])
        for frame, values in zip(final, stream.result(final.stop, final.start), strict=True):
            published[frame] = values
        ready = stream.provisional(len(published))
        if ready is not None and expected_frames == len(data):
            for frame, values in zip(*ready, strict=True):
                published.setdefault(frame, values)
    result = stream.finish()
    np.testing.assert_allclose(result, offline, rtol=1e-6)
    assert published
    for frame, values in published.items():
        np.testing.assert_allclose(values, offline[frame], rtol=1e-6, err_msg=f"frame {frame}")


def test_frames_are_held_until_the_bound_can_read_the_frames_after_them() -> None:
    data, mask = _crystal_like()
    guard = OvershootGuard(peak_frames=40)  # more than the window plan holds frames back
    stream = GapInpainter(tenfold_max, guard=guard).stream(mask)
    for frame in data[:60]:
        final = stream.add_frames(frame[None])
        assert final.stop <= stream.n_frames - guard.lookahead or not len(final)


@pytest.mark.parametrize(
    "settings",
    [
        {"factor": 0.5},
        {"noise_sigmas": 0.0},
        {"edge_reach": -1},
        {"edge_frames": -1},
        {"peak_frames": -2},
        {"peak_ratio": 0.0},
        {"peak_ratio": 1.5},
    ],
)
def test_settings_out_of_range_raise(settings: dict) -> None:
    with pytest.raises(ConfigurationError):
        OvershootGuard(**settings)


@pytest.mark.slow
def test_the_guard_cuts_the_shipped_models_overshoot_on_a_wide_cross_off_the_peak() -> None:
    # the 38 px cross off the peak where the model card reports the overshoot
    # (real_space_cases(per_group=4)'s "w38-cross-off-low-0": seed 970044)
    case = real_space_cases(per_group=1, widths=(38,), seed=970_041)[3]
    assert case.name == "w38-cross-off-low-0"
    plain = gap_ratios(inpaint(case.data, case.mask, guard=None), case.expected, case.mask)
    guarded = gap_ratios(inpaint(case.data, case.mask), case.expected, case.mask)
    assert plain["photon_ratio"] > 3  # the over-filling is there to cut
    for key in ("peak_ratio", "photon_ratio"):
        assert guarded[key] - 1 < 0.6 * (plain[key] - 1), key
