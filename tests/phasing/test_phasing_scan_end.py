"""The scan-end reconstruction: region around the peak, binning, convergence verdict."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bcdi_online import InputDataError, PhasingError
from bcdi_online.evaluation import amplitude_error, linear_interpolation
from bcdi_online.phasing import (
    RECOMMENDED_TREATMENT,
    Recipe,
    crystal_figure,
    peak_in_gap,
    peak_region,
    reconstruct_scan,
    refine_fill,
)
from bcdi_online.phasing._scan_end import _binned
from bcdi_online.simulation import simulate_volume

QUICK = Recipe.parse("HIO**150 RAAR**100 ER**60")


def test_peak_region_is_centred_on_the_peak_and_clipped() -> None:
    volume = np.zeros((20, 40, 50), dtype=np.float32)
    volume[5, 30, 10] = 100.0
    assert peak_region(volume, (8, 16, 16)) == (1, 9, 22, 38, 2, 18)
    assert peak_region(volume, (32, 64, 8)) == (0, 20, 0, 40, 6, 14)  # clipped to the volume


def test_binning_sums_counts_and_marks_any_gap() -> None:
    volume = np.arange(2 * 4 * 5, dtype=float).reshape(2, 4, 5)
    summed = _binned(volume, (1, 2, 2), "sum")
    assert summed.shape == (2, 2, 2)  # the odd last column is trimmed
    assert summed[0, 0, 0] == volume[0, :2, :2].sum()
    gap = np.zeros((2, 4, 5), dtype=bool)
    gap[:, 1, 3] = True
    assert (
        _binned(gap, (1, 2, 2), "any")[:, 0, 1].all() and _binned(gap, (1, 2, 2), "any").sum() == 2
    )


@pytest.fixture(scope="module")
def scan():
    """A 32 x 64 x 64 scan, a 4 px column gap, filled with the true counts."""
    sim = simulate_volume(
        (32, 64, 64), seed=5, photon_budget=1e8, oversampling=3.0, strain_amplitude=0.8
    )
    mask = np.zeros((64, 64), dtype=bool)
    mask[:, 36:40] = True
    return sim, mask


@pytest.fixture(scope="module")
def reconstructed(scan):
    """The scan-end reconstruction of ``scan`` (defaults: unbinned)."""
    sim, mask = scan
    return reconstruct_scan(
        sim.counts, mask, region_shape=(32, 64, 64), recipe=QUICK, device="cpu"
    )


def test_a_well_filled_scan_reconstructs_and_converges(reconstructed) -> None:
    result = reconstructed
    assert result.converged and result.reason == ""
    assert result.region == (0, 32, 0, 64, 0, 64) and result.binning == (1, 1, 1)
    assert result.obj.shape == result.support.shape == (32, 64, 64)
    assert result.modulus.max() == pytest.approx(1.0) and result.modulus.dtype == np.float32
    assert np.all(result.phase[~result.support] == 0)
    # the crystal is a compact blob of about the simulated size (a third of the grid wide)
    assert 0.003 < result.support_fraction < 0.1
    foms = result.figures_of_merit()
    assert foms["converged"] is True and foms["treatment"] == RECOMMENDED_TREATMENT
    assert foms["peak_in_gap"] is False  # the gap runs beside the peak
    figure = crystal_figure(result, title="scan 1")
    assert len(figure.axes) == 7  # 2 x 3 slices and the phase colour bar
    assert figure.get_suptitle().startswith("scan 1\nconverged")


def test_noise_is_reported_as_not_converged() -> None:
    noise = np.random.default_rng(0).poisson(5.0, (16, 32, 32)).astype(np.float32)
    result = reconstruct_scan(
        noise,
        np.zeros((32, 32), bool),
        region_shape=(16, 32, 32),
        binning=(1, 1, 1),
        recipe=QUICK,
        device="cpu",
    )
    assert not result.converged
    assert result.reason  # says why
    assert "NOT CONVERGED" in crystal_figure(result).get_suptitle()


def test_reconstruct_scan_rejects_a_frame() -> None:
    with pytest.raises(InputDataError, match="n_frames, ny, nx"):
        reconstruct_scan(np.ones((8, 8)), np.zeros((8, 8), bool))


@pytest.mark.parametrize(
    ("binning", "gain"),
    [((1, 1, 1), 0.5), ((1, 2, 2), 0.7)],  # a binned crystal is coarser: less gained
)
def test_the_converged_crystal_refills_the_gap_closer_to_the_truth(scan, binning, gain) -> None:
    sim, mask = scan
    gap = np.broadcast_to(mask, sim.counts.shape)
    rough = linear_interpolation(np.where(gap, 0, sim.counts), mask)  # a plain fill
    result = reconstruct_scan(
        rough, mask, region_shape=(32, 64, 64), binning=binning, recipe=QUICK, device="cpu"
    )
    assert result.converged and result.intensity.shape == result.obj.shape
    refined = refine_fill(rough, mask, result)
    assert refined.shape == (32, 64, 64) and refined.dtype == np.float32
    np.testing.assert_array_equal(refined[~gap], rough[~gap])  # measured voxels untouched
    before = amplitude_error(rough, sim.expected, mask)
    after = amplitude_error(refined, sim.expected, mask)
    assert after < gain * before, (before, after)


def test_refine_fill_refuses_a_crystal_that_did_not_converge(scan, reconstructed) -> None:
    sim, mask = scan
    result = reconstructed
    failed = dataclasses.replace(result, converged=False, reason="the random starts disagree")
    with pytest.raises(PhasingError, match="did not converge.*starts disagree"):
        refine_fill(sim.counts, mask, failed)
    with pytest.raises(InputDataError, match="does not hold the region"):
        refine_fill(sim.counts[:16], mask, result)


def test_no_refill_where_the_peak_lies_in_the_gap(scan) -> None:
    sim, _ = scan
    through = np.zeros((64, 64), dtype=bool)
    through[:, 30:34] = True  # through the Bragg peak's centre
    hidden, ratio = peak_in_gap(
        sim.counts.astype(np.float32), np.broadcast_to(through, (32, 64, 64))
    )
    assert hidden and ratio >= 0.5
    aside = np.broadcast_to(scan[1], (32, 64, 64))
    assert peak_in_gap(sim.counts.astype(np.float32), aside)[0] is False
    rough = linear_interpolation(np.where(through, 0, sim.counts), through)
    result = reconstruct_scan(
        rough, through, region_shape=(32, 64, 64), binning=(1, 1, 1), recipe=QUICK, device="cpu"
    )
    assert result.peak_in_gap and result.figures_of_merit()["peak_in_gap"] is True
    # even a crystal judged converged (such phasings often are, and wrong) refills nothing
    converged = dataclasses.replace(result, converged=True, reason="")
    with pytest.raises(PhasingError, match="Bragg peak may lie in the gap"):
        refine_fill(rough, through, converged)
    # and its picture says that converged is no proof here
    assert "may lie in the gap" in crystal_figure(converged).get_suptitle()
