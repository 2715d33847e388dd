from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from bcdi_online import GapMaskError, InputDataError
from bcdi_online.evaluation import (
    amplitude_error,
    evaluate,
    gap_ratios,
    oracle_pcc,
    paper_pcc,
    relative_photon_error,
    strict_pcc,
)

SHAPE = (8, 64, 64)


@pytest.fixture
def scan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, mask, expected): a Poisson-noisy peak with a cross-shaped gap."""
    z, y, x = np.meshgrid(*(np.arange(s) for s in SHAPE), indexing="ij")
    expected = 500 * np.exp(-((z - 3.5) ** 2 / 20 + (y - 30) ** 2 / 150 + (x - 34) ** 2 / 200))
    expected += 0.2
    truth = np.random.default_rng(0).poisson(expected).astype(np.float32)
    mask = np.zeros(SHAPE[1:], dtype=bool)
    mask[:, 28:34] = True
    mask[40:46, :] = True
    return truth, mask, expected


def test_strict_pcc_perfect_fill_is_one(scan: tuple) -> None:
    truth, mask, expected = scan
    assert strict_pcc(truth, truth, mask, expected) == pytest.approx(1.0)


def test_oracle_below_one_with_poisson_noise(scan: tuple) -> None:
    truth, mask, expected = scan
    oracle = oracle_pcc(truth, mask, expected)
    assert 0.8 < oracle < 0.999
    assert oracle == strict_pcc(expected, truth, mask, expected)


def test_strict_pcc_constant_fill_is_zero(scan: tuple) -> None:
    truth, mask, expected = scan
    assert strict_pcc(np.zeros_like(truth), truth, mask, expected) == 0.0


def test_strict_pcc_threshold_drops_dark_voxels(scan: tuple) -> None:
    truth, mask, expected = scan
    # garbage on the dark voxels only: excluded by min_photons, counted without it
    dark = gaussian_filter(expected, 1.0) < 1
    filled = np.where(dark, np.random.default_rng(1).uniform(0, 50, SHAPE), truth)
    assert strict_pcc(filled, truth, mask, expected) == pytest.approx(1.0)
    assert strict_pcc(filled, truth, mask, expected, min_photons=0) < 0.97


def test_strict_pcc_volume_mask_same_as_frame_mask(scan: tuple) -> None:
    truth, mask, expected = scan
    filled = np.sqrt(expected * truth)
    volume_mask = np.broadcast_to(mask, SHAPE).copy()
    assert strict_pcc(filled, truth, volume_mask, expected) == strict_pcc(
        filled, truth, mask, expected
    )


def test_strict_pcc_no_qualifying_voxel_raises(scan: tuple) -> None:
    truth, mask, expected = scan
    with pytest.raises(InputDataError, match="min_photons|photons"):
        strict_pcc(truth, truth, mask, expected, min_photons=1e6)


@pytest.mark.parametrize(
    ("filled_shape", "mask_shape"), [((8, 64, 63), (64, 64)), (SHAPE, (64, 63))]
)
def test_metrics_shape_mismatch_raises(
    scan: tuple, filled_shape: tuple[int, ...], mask_shape: tuple[int, ...]
) -> None:
    truth, _, expected = scan
    filled, mask = np.zeros(filled_shape), np.zeros(mask_shape, dtype=bool)
    # filled vs truth: the data; data vs mask: the mask (GapMaskError), both ValueErrors
    error = InputDataError if filled_shape != SHAPE else GapMaskError
    with pytest.raises(error, match=r"64, 63\)"):
        strict_pcc(filled, truth, mask, expected)
    with pytest.raises(error, match=r"64, 63\)"):
        paper_pcc(filled, truth, mask)
    with pytest.raises(error, match=r"64, 63\)"):
        relative_photon_error(filled, truth, mask)


def test_paper_pcc_perfect_and_noisy(scan: tuple) -> None:
    truth, mask, expected = scan
    assert paper_pcc(truth, truth, mask) == pytest.approx(1.0)
    assert paper_pcc(expected, truth, mask) < 0.99
    assert paper_pcc(np.zeros_like(truth), truth, mask) == 0.0


def test_paper_pcc_averages_crops_per_decade() -> None:
    rng = np.random.default_rng(2)
    truth = rng.poisson(50.0, size=(32, 64, 32)).astype(float)
    truth[:, 32:] = rng.poisson(5000.0, size=(32, 32, 32))  # second crop, brighter decade
    mask = np.zeros((64, 32), dtype=bool)
    mask[:, 14:18] = True
    filled = truth.copy()
    top = np.zeros(truth.shape, dtype=bool)
    top[:, 32:] = True
    flip = top & mask[None]
    filled[flip] = np.expm1(20 - np.log1p(truth[flip]))  # PCC -1 in the bright crop
    assert paper_pcc(filled, truth, mask) == pytest.approx(0.0, abs=1e-9)  # (1 - 1) / 2


def test_paper_pcc_no_scorable_bin_raises(scan: tuple) -> None:
    truth, mask, _ = scan
    with pytest.raises(InputDataError, match="crop"):
        paper_pcc(truth, truth, mask, min_voxels=10**6)


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0, 1.1])
def test_relative_photon_error(scan: tuple, factor: float) -> None:
    truth, mask, _ = scan
    assert relative_photon_error(factor * truth, truth, mask) == pytest.approx(abs(factor - 1))


def test_relative_photon_error_empty_gap_raises(scan: tuple) -> None:
    truth, mask, _ = scan
    with pytest.raises(InputDataError, match="no photons"):
        relative_photon_error(truth, np.where(mask, 0, truth), mask)


def test_evaluate_keys_and_ratio(scan: tuple) -> None:
    truth, mask, expected = scan

    perfect = evaluate(truth, truth, mask, expected)
    oracle = evaluate(expected, truth, mask, expected)

    assert set(perfect) == {
        "strict_pcc",
        "oracle_pcc",
        "pcc_ratio",
        "paper_pcc",
        "paper_pcc_oracle",
        "paper_pcc_noise_free",
        "amplitude_error",
        "amplitude_floor",
        "peak_ratio",
        "photon_ratio",
        "photon_error",
    }
    assert oracle["paper_pcc_noise_free"] == pytest.approx(1.0)
    assert oracle["paper_pcc"] == oracle["paper_pcc_oracle"] < 0.99  # noise caps it
    assert perfect["pcc_ratio"] == pytest.approx(perfect["strict_pcc"] / perfect["oracle_pcc"])
    assert perfect["pcc_ratio"] > 1  # the noisy truth correlates with itself better
    assert oracle["pcc_ratio"] == pytest.approx(1.0)
    assert perfect["photon_error"] == 0.0


def test_amplitude_error_zero_for_the_expected_and_at_the_floor_for_counts(scan: tuple) -> None:
    truth, mask, expected = scan
    assert amplitude_error(expected, expected, mask) == 0.0
    floor = amplitude_error(truth, expected, mask)
    # Poisson: E[(sqrt(n) - sqrt(lambda))^2] is about 1/4 per voxel where lambda >> 1
    gap = np.broadcast_to(mask, SHAPE)
    assert (
        0.5 * np.sqrt(0.25 * gap.sum() / expected[gap].sum())
        < floor
        < 2 * np.sqrt(0.25 * gap.sum() / expected[gap].sum())
    )


@pytest.mark.parametrize("factor", [0.25, 1.0, 4.0])
def test_amplitude_error_of_a_scaled_fill(scan: tuple, factor: float) -> None:
    truth, mask, expected = scan
    # sqrt(f e) - sqrt(e) = (sqrt(f) - 1) sqrt(e): the relative RMS is |sqrt(f) - 1|
    assert amplitude_error(factor * expected, expected, mask) == pytest.approx(
        abs(np.sqrt(factor) - 1)
    )


def test_gap_ratios(scan: tuple) -> None:
    truth, mask, expected = scan
    assert gap_ratios(expected, expected, mask) == {"peak_ratio": 1.0, "photon_ratio": 1.0}
    flat = np.where(np.broadcast_to(mask, SHAPE), 2 * expected.mean(), expected)
    ratios = gap_ratios(flat, expected, mask)
    gap = np.broadcast_to(mask, SHAPE)
    assert ratios["peak_ratio"] == pytest.approx(2 * expected.mean() / expected[gap].max())
    with pytest.raises(InputDataError, match="no expected photons"):
        gap_ratios(expected, np.where(gap, 0, expected), mask)
