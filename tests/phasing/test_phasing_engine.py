"""Phase retrieval end to end: recovery, each treatment's effect, alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcdi_online import GapMaskError, InputDataError, PhasingError
from bcdi_online.phasing import Recipe, compare, phase_retrieval, true_support
from bcdi_online.phasing._align import shift, twin
from bcdi_online.phasing._modes import first_mode
from bcdi_online.simulation import simulate_volume

SHAPE = (32, 32, 32)
SHORT = Recipe.parse("HIO**200 RAAR**100 ER**80")


@pytest.fixture(scope="module")
def crystal():
    """A strained crystal with plenty of photons, oversampled 3x."""
    return simulate_volume(
        SHAPE, seed=4, photon_budget=1e8, oversampling=3.0, strain_amplitude=1.0
    )


@pytest.fixture(scope="module")
def gap_free(crystal):
    return phase_retrieval(crystal.counts, recipe=SHORT, n_starts=4, device="cpu")


def _transformed(obj: np.ndarray) -> np.ndarray:
    """The same crystal as a reconstruction may return it: twin, shifted, offset, ramped."""
    t = twin(torch.from_numpy(obj.astype(np.complex128)))
    t = shift(t, torch.tensor([1.3, -2.0, 0.6]))
    z = torch.arange(SHAPE[0], dtype=torch.float64)[:, None, None]
    ramp = torch.polar(torch.ones(SHAPE, dtype=torch.float64), 0.05 * z + 1.1)
    return (t * ramp).numpy()


def test_compare_removes_twin_shift_offset_and_ramp(crystal) -> None:
    scores = compare(_transformed(crystal.obj), crystal.obj)
    # what is left is the interpolation of a sub-voxel shift of a sharp-edged object
    assert scores.phase_error < 0.02 and scores.strain_error < 0.03
    assert scores.modulus_error < 0.05
    noisy = crystal.obj * np.exp(1j * 0.3 * np.random.default_rng(0).standard_normal(SHAPE))
    assert compare(noisy, crystal.obj).phase_error == pytest.approx(0.3, rel=0.1)


def test_first_mode_of_equivalent_starts_is_the_crystal(crystal) -> None:
    obj = torch.from_numpy(crystal.obj.astype(np.complex128))
    starts = torch.stack([obj, twin(obj) * 1j, torch.roll(obj, 3, dims=1) * -1])
    mode, weight = first_mode(starts)
    assert weight > 0.999
    assert compare(mode.numpy(), crystal.obj).phase_error < 1e-3


def test_gap_free_reconstruction_recovers_the_crystal(crystal, gap_free) -> None:
    scores = compare(gap_free.obj, crystal.obj)
    assert scores.phase_error < 0.1, scores
    assert scores.modulus_error < 0.15, scores
    assert gap_free.mode_weight > 0.9
    assert np.isfinite(gap_free.llk) and len(gap_free.llk_starts) == 4 and len(gap_free.kept) == 2
    assert gap_free.llk_starts[gap_free.kept[0]] == min(gap_free.llk_starts)
    inside = true_support(crystal.obj)
    assert 0.5 < gap_free.support.sum() / inside.sum() < 3.0
    assert gap_free.intensity.shape == SHAPE
    # its own intensity reproduces the data it was fitted to
    assert (
        np.corrcoef(np.log1p(gap_free.intensity).ravel(), np.log1p(crystal.counts).ravel())[0, 1]
        > 0.9
    )


@pytest.fixture(scope="module")
def gapped(crystal):
    """A 4-px column stripe two pixels off the peak."""
    mask = np.zeros(SHAPE[1:], dtype=bool)
    mask[:, 18:22] = True
    data = np.where(mask, 0, crystal.counts)
    return data, mask


def _error(result, crystal) -> float:
    return compare(result.obj, crystal.obj).phase_error


def test_imposing_the_true_intensity_is_as_good_as_no_gap(crystal, gapped, gap_free) -> None:
    data, mask = gapped
    result = phase_retrieval(
        data, mask, treatment="fill", fill=crystal.counts, recipe=SHORT, device="cpu"
    )
    assert _error(result, crystal) < 1.5 * _error(gap_free, crystal) + 0.02


def test_a_wrong_fill_imposed_hurts_and_released_recovers(crystal, gapped) -> None:
    data, mask = gapped
    wrong = crystal.counts * 20.0
    imposed = phase_retrieval(data, mask, treatment="fill", fill=wrong, recipe=SHORT, device="cpu")
    released = phase_retrieval(
        data, mask, treatment="fill_then_free", fill=wrong, recipe=SHORT, device="cpu"
    )
    assert _error(imposed, crystal) > 2 * _error(released, crystal)
    # the released reconstruction's own intensity in the gap moved back towards the truth
    gap = np.broadcast_to(mask, SHAPE)
    true_total = crystal.expected[gap].sum()
    assert imposed.intensity[gap].sum() / true_total > 10
    assert released.intensity[gap].sum() / true_total < 3


def test_soft_band_collapses_to_fill_and_opens_to_free(crystal, gapped) -> None:
    data, mask = gapped
    fill = crystal.counts * 2.0
    kwargs = {"recipe": Recipe.parse("HIO**40 ER**20"), "n_starts": 2, "device": "cpu"}
    soft0 = phase_retrieval(
        data, mask, treatment="soft", fill=fill, fill_sigma=np.zeros(SHAPE), **kwargs
    )
    imposed = phase_retrieval(data, mask, treatment="fill", fill=fill, **kwargs)
    np.testing.assert_allclose(
        soft0.obj, imposed.obj, rtol=1e-4, atol=1e-4 * np.abs(imposed.obj).max()
    )
    wide = phase_retrieval(
        data, mask, treatment="soft", fill=fill, fill_sigma=np.full(SHAPE, 50.0), **kwargs
    )
    free = phase_retrieval(data, mask, treatment="fill_start", fill=fill, **kwargs)
    np.testing.assert_allclose(wide.obj, free.obj, rtol=1e-4, atol=1e-4 * np.abs(free.obj).max())


def test_starts_with_different_treatments_compete_on_likelihood(crystal, gapped) -> None:
    data, mask = gapped
    wrong = crystal.counts * 20.0
    mixed = phase_retrieval(
        data,
        mask,
        treatment=("fill", "free"),
        fill=wrong,
        n_starts=4,
        keep=1,
        recipe=SHORT,
        device="cpu",
    )
    assert mixed.treatment == "fill+free"
    # the free starts fit the measured voxels better than those forced to a wrong fill
    assert mixed.kept[0] % 2 == 1
    assert max(mixed.llk_starts[1::2]) < min(mixed.llk_starts[0::2])


def test_zeroed_gap_voxels_stay_dark_in_the_reconstruction(crystal, gapped) -> None:
    data, mask = gapped
    zeroed = phase_retrieval(data, mask, treatment="zero", recipe=SHORT, device="cpu")
    free = phase_retrieval(data, mask, treatment="free", recipe=SHORT, device="cpu")
    gap = np.broadcast_to(mask, SHAPE)
    assert zeroed.intensity[gap].sum() < 0.5 * free.intensity[gap].sum()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda c: phase_retrieval(c, np.zeros((5, 5), bool)), GapMaskError, "matches neither"),
        (lambda c: phase_retrieval(c, np.zeros(SHAPE[1:], int)), GapMaskError, "must be bool"),
        (lambda c: phase_retrieval(-c - 1.0), InputDataError, "negative"),
        (lambda c: phase_retrieval(c[0]), InputDataError, "3D"),
        (lambda c: phase_retrieval(np.zeros(SHAPE)), InputDataError, "all zero"),
        (lambda c: phase_retrieval(c, n_starts=0), PhasingError, "n_starts"),
        (lambda c: phase_retrieval(c, n_starts=2, keep=3), PhasingError, "keep 3"),
        (
            lambda c: phase_retrieval(c, n_starts=1, treatment=("zero", "free")),
            PhasingError,
            "2 treatments",
        ),
    ],
)
def test_input_errors(crystal, call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(crystal.counts.astype(np.float64))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_reconstruction_on_the_gpu(crystal, gap_free) -> None:
    result = phase_retrieval(crystal.counts, recipe=SHORT, n_starts=4, device="cuda")
    # iterations are chaotic: not bit-equal to the CPU, but as accurate
    assert _error(result, crystal) < 1.5 * _error(gap_free, crystal) + 0.02


@pytest.mark.parametrize(("treatment", "plain"), [("tv", "free"), ("fill_start_tv", "fill_start")])
def test_tv_treatments_lower_the_variation_and_keep_the_measured_far_field(
    crystal, gapped, treatment, plain
) -> None:
    data, mask = gapped
    kwargs = {"fill": crystal.counts, "recipe": SHORT, "n_starts": 2, "device": "cpu"}
    smoothed = phase_retrieval(data, mask, treatment=treatment, **kwargs)
    unsmoothed = phase_retrieval(data, mask, treatment=plain, **kwargs)

    def variation(obj: np.ndarray) -> float:
        return float(sum(np.abs(np.diff(obj, axis=axis)).sum() for axis in range(3)))

    assert variation(smoothed.obj) < 0.95 * variation(unsmoothed.obj)
    measured = ~np.broadcast_to(mask, SHAPE)
    change = np.abs(smoothed.intensity - unsmoothed.intensity)[measured].sum()
    assert change < 0.05 * unsmoothed.intensity[measured].sum()
    assert smoothed.treatment == treatment
