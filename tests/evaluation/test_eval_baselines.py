from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from bcdi_online import GapMaskError, InputDataError
from bcdi_online.evaluation import biharmonic, inverse_distance_weighting, linear_interpolation

SHAPE = (8, 64, 64)
Baseline = Callable[[np.ndarray, np.ndarray], np.ndarray]
BASELINES: list[Baseline] = [linear_interpolation, biharmonic, inverse_distance_weighting]


def _blob() -> np.ndarray:
    """Smooth Bragg-like peak over a flat background, float32 counts."""
    z, y, x = np.meshgrid(*(np.arange(s) for s in SHAPE), indexing="ij")
    peak = np.exp(-((z - 3.5) ** 2 / 20 + (y - 30) ** 2 / 200 + (x - 34) ** 2 / 300))
    return (1000 * peak + 1).astype(np.float32)


def _mask(kind: str) -> np.ndarray:
    n, ny, nx = SHAPE
    frame = np.zeros((ny, nx), dtype=bool)
    if kind == "columns":
        frame[:, 28:34] = True
    elif kind == "rows":
        frame[25:31, :] = True
    elif kind == "cross":
        frame[:, 28:34] = True
        frame[40:46, :] = True
    elif kind == "border":
        frame[:, :6] = True
    elif kind == "moving":  # a (n_frames, ny, nx) mask that differs per frame
        volume = np.zeros(SHAPE, dtype=bool)
        for k in range(n):
            volume[k, :, 20 + 3 * k : 26 + 3 * k] = True
        return volume
    return frame


def _relative_mse(filled: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    gap = np.broadcast_to(mask, truth.shape)
    return float(np.mean((filled[gap] - truth[gap]) ** 2) / np.mean(truth[gap] ** 2))


@pytest.mark.parametrize("kind", ["columns", "rows", "cross", "border", "moving"])
@pytest.mark.parametrize("baseline", BASELINES)
def test_measured_pixels_bit_exact_and_gap_non_negative(baseline: Baseline, kind: str) -> None:
    mask = _mask(kind)
    rng = np.random.default_rng(1)
    data = rng.poisson(_blob()).astype(np.int32)  # integer input is cast to float32
    gap = np.broadcast_to(mask, SHAPE)

    out = baseline(data, mask)

    assert out.dtype == np.float32
    assert out.shape == SHAPE
    np.testing.assert_array_equal(out[~gap], data.astype(np.float32)[~gap])
    assert np.isfinite(out).all()
    assert out[gap].min() >= 0


@pytest.mark.parametrize("kind", ["columns", "rows", "cross", "moving"])
@pytest.mark.parametrize(
    ("baseline", "max_ratio"),
    [(linear_interpolation, 0.01), (biharmonic, 0.01), (inverse_distance_weighting, 0.2)],
)
def test_fill_beats_zero_fill(baseline: Baseline, max_ratio: float, kind: str) -> None:
    truth, mask = _blob(), _mask(kind)
    data = np.where(mask, 0, truth)

    # the error of a zero fill is mean(truth**2) over the gap
    assert _relative_mse(baseline(data, mask), truth, mask) < max_ratio


@pytest.mark.parametrize("kind", ["columns", "rows", "cross"])
def test_linear_interpolation_exact_on_a_plane(kind: str) -> None:
    _, y, x = np.meshgrid(*(np.arange(s) for s in SHAPE), indexing="ij")
    plane = (10 + 2 * y + 3 * x).astype(np.float32)
    mask = _mask(kind)

    out = linear_interpolation(np.where(mask, 0, plane), mask)

    np.testing.assert_allclose(out, plane, rtol=1e-6)


def test_linear_interpolation_copies_nearest_at_border() -> None:
    truth, mask = _blob(), _mask("border")

    out = linear_interpolation(np.where(mask, 0, truth), mask)

    np.testing.assert_array_equal(out[:, :, :6], np.repeat(truth[:, :, 6:7], 6, axis=2))


@pytest.mark.parametrize("baseline", BASELINES)
def test_frame_mask_same_as_broadcast_volume_mask(baseline: Baseline) -> None:
    truth, mask = _blob(), _mask("cross")
    data = np.where(mask, 0, truth)

    np.testing.assert_allclose(
        baseline(data, mask), baseline(data, np.broadcast_to(mask, SHAPE).copy()), rtol=1e-5
    )


@pytest.mark.parametrize("baseline", [linear_interpolation, biharmonic])
def test_dead_frame_filled_with_zeros_by_2d_baselines(baseline: Baseline) -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[3] = True

    out = baseline(_blob(), mask)

    np.testing.assert_array_equal(out[3], 0)


def test_idw_fills_a_dead_frame_from_its_neighbours() -> None:
    truth = _blob()
    mask = np.zeros(SHAPE, dtype=bool)
    mask[3] = True

    out = inverse_distance_weighting(np.where(mask, 0, truth), mask)

    assert _relative_mse(out, truth, mask) < 0.05


def test_idw_fills_gaps_wider_than_its_radius() -> None:
    truth = _blob()
    mask = np.zeros(SHAPE[1:], dtype=bool)
    mask[:, 22:42] = True  # 20 px, ten times the radius

    out = inverse_distance_weighting(np.where(mask, 0, truth), mask, radius=2)

    assert np.isfinite(out).all()
    assert _relative_mse(out, truth, mask) < 0.5


@pytest.mark.parametrize("baseline", BASELINES)
@pytest.mark.parametrize(
    ("data_shape", "mask_shape"),
    [(SHAPE, (64, 63)), (SHAPE, (7, 64, 64)), (SHAPE[1:], SHAPE[1:])],
)
def test_shape_mismatch_raises(
    baseline: Baseline, data_shape: tuple[int, ...], mask_shape: tuple[int, ...]
) -> None:
    error = InputDataError if len(data_shape) != 3 else GapMaskError  # data, else the mask
    with pytest.raises(error, match="shape"):
        baseline(np.ones(data_shape, np.float32), np.zeros(mask_shape, dtype=bool))


@pytest.mark.parametrize("baseline", BASELINES)
def test_non_bool_mask_raises(baseline: Baseline) -> None:
    with pytest.raises(GapMaskError, match="bool"):
        baseline(_blob(), _mask("columns").astype(np.uint8))


@pytest.mark.parametrize("baseline", BASELINES)
def test_non_finite_measured_value_raises(baseline: Baseline) -> None:
    data = _blob()
    data[0, 0, 40] = np.nan
    with pytest.raises(InputDataError, match="NaN"):
        baseline(data, _mask("columns"))


def test_idw_radius_below_one_raises() -> None:
    with pytest.raises(InputDataError, match="radius"):
        inverse_distance_weighting(_blob(), _mask("columns"), radius=0)
