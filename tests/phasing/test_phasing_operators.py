"""The phase-retrieval operators and the treatments of unmeasured voxels, one by one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcdi_online import PhasingError
from bcdi_online.phasing import TREATMENTS, Recipe, Stage
from bcdi_online.phasing._operators import (
    gaussian_transfer,
    hybrid_input_output,
    impose_modulus,
    raar,
    shrink_wrap,
    total_variation_descent,
)
from bcdi_online.phasing._problem import Problem

SHAPE = (8, 10, 12)


@pytest.fixture
def field() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.complex(
        torch.randn((2, *SHAPE), generator=gen), torch.randn((2, *SHAPE), generator=gen)
    )


@pytest.fixture
def measured() -> torch.Tensor:
    mask = torch.ones(SHAPE, dtype=torch.bool)
    mask[:, :, 4:7] = False
    return mask


def test_impose_modulus_measured_voxels_get_the_data_phases_kept(field, measured) -> None:
    amplitude = torch.full(SHAPE, 3.0)
    before = field.clone()
    out = impose_modulus(field, amplitude, measured)
    assert torch.allclose(out.abs()[:, measured], torch.tensor(3.0))
    assert torch.allclose(
        torch.angle(out)[:, measured], torch.angle(before)[:, measured], atol=1e-5
    )
    # free: unmeasured voxels untouched
    assert torch.equal(out[:, ~measured], before[:, ~measured])


def test_impose_modulus_bounds_zero_impose_and_band(field, measured) -> None:
    amplitude = torch.ones(SHAPE)
    zero = torch.zeros(SHAPE)
    assert torch.all(
        impose_modulus(field.clone(), amplitude, measured, lower=zero, upper=zero)[:, ~measured]
        == 0
    )
    fill = torch.full(SHAPE, 0.7)
    imposed = impose_modulus(field.clone(), amplitude, measured, lower=fill, upper=fill)
    assert torch.allclose(imposed.abs()[:, ~measured], torch.tensor(0.7))
    low, high = torch.full(SHAPE, 0.5), torch.full(SHAPE, 1.5)
    banded = impose_modulus(field.clone(), amplitude, measured, lower=low, upper=high).abs()[
        :, ~measured
    ]
    original = field.abs()[:, ~measured]
    assert torch.all((banded >= 0.5 - 1e-6) & (banded <= 1.5 + 1e-6))
    inside = (original >= 0.5) & (original <= 1.5)
    assert torch.allclose(banded[inside], original[inside])  # the band leaves values inside alone


def test_impose_modulus_gives_a_phase_to_a_vanishing_field(measured) -> None:
    field = torch.zeros((1, *SHAPE), dtype=torch.complex64)
    out = impose_modulus(field, torch.full(SHAPE, 2.0), measured)
    assert torch.all(out[:, measured] == 2.0)


def test_hio_and_raar_act_outside_the_support_only(field) -> None:
    support = torch.zeros((2, *SHAPE), dtype=torch.bool)
    support[:, 2:6, 3:7, 4:8] = True
    projected = field * 0.5
    hio = hybrid_input_output(field, projected, support, 0.9)
    assert torch.equal(hio[support], projected[support])
    assert torch.allclose(hio[~support], field[~support] - 0.9 * projected[~support])
    rr = raar(field, projected, support, 0.75)
    assert torch.allclose(rr[~support], 0.75 * field[~support] - 0.5 * projected[~support])


def test_shrink_wrap_finds_a_blob() -> None:
    psi = torch.zeros((1, 16, 16, 16), dtype=torch.complex64)
    psi[0, 6:10, 5:11, 7:9] = 1.0
    support = shrink_wrap(psi, gaussian_transfer((16, 16, 16), 1.0, torch.device("cpu")), 0.2)
    assert support[0, 6:10, 5:11, 7:9].all()
    assert support.sum() < 4 * psi.abs().gt(0).sum()  # hugs the blob
    assert not support[0, 0, 0, 0]


def test_total_variation_descent_lowers_total_variation() -> None:
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn((1, 12, 12, 12), generator=gen)
    psi = torch.ones((1, 12, 12, 12), dtype=torch.complex64) + 0.3 * noise

    def tv(x: torch.Tensor) -> float:
        return float(sum((torch.roll(x, -1, dims=a) - x).abs().sum() for a in (-3, -2, -1)))

    smoothed = psi
    for _ in range(5):
        smoothed = smoothed + 0.02 * total_variation_descent(smoothed)
    assert tv(smoothed) < 0.8 * tv(psi)


def _problem(treatment, **kw) -> Problem:
    counts = np.full(SHAPE, 4.0)
    mask = np.zeros(SHAPE[1:], dtype=bool)
    mask[:, 5:7] = True
    return Problem.build(
        counts,
        mask,
        treatment=treatment,
        n_starts=kw.get("n_starts", 1),
        fill=kw.get("fill"),
        fill_sigma=kw.get("sigma"),
        soft_width=1.0,
        device=torch.device("cpu"),
    )


@pytest.mark.parametrize(
    ("treatment", "before", "after"),
    [
        ("zero", "zero", "zero"),
        ("free", None, None),
        ("zero_then_free", "zero", None),
        ("fill", "fill", "fill"),
        ("fill_then_free", "fill", None),
        ("fill_start", None, None),
        ("tv", None, None),
        ("fill_start_tv", None, None),
    ],
)
def test_treatment_bounds_before_and_after_release(treatment, before, after) -> None:
    problem = _problem(treatment, fill=np.full(SHAPE, 9.0))
    expected = {"zero": 0.0, "fill": 3.0, None: None}
    for released, want in ((False, before), (True, after)):
        lower, upper = problem.bounds(released=released)
        if expected[want] is None:
            assert lower is None and upper is None
        else:
            assert torch.all(lower == expected[want]) and torch.all(upper == expected[want])


def test_mixed_treatments_are_dealt_to_the_starts() -> None:
    problem = _problem(("fill_then_free", "zero_then_free"), fill=np.full(SHAPE, 9.0), n_starts=4)
    assert problem.treatments == ("fill_then_free", "zero_then_free") * 2
    assert problem.treatment == "fill_then_free+zero_then_free"
    lower, upper = problem.bounds(released=False)
    assert lower.shape == (4, *SHAPE)
    assert torch.all(upper[0] == 3.0) and torch.all(upper[1] == 0.0)
    assert problem.bounds(released=True) == (None, None)  # both free once released
    start = problem.start_amplitude()
    assert torch.all(start[0][~problem.measured] == 3.0)
    assert torch.all(start[1][~problem.measured] == 0.0)
    assert problem.initial_support(0.1).shape == (4, *SHAPE)


def test_free_and_imposed_starts_stack_with_open_bounds() -> None:
    problem = _problem(("free", "fill"), fill=np.full(SHAPE, 9.0), n_starts=2)
    lower, upper = problem.bounds(released=True)
    assert torch.all(lower[0] == 0) and torch.all(torch.isinf(upper[0]))
    assert torch.all(lower[1] == 3.0) and torch.all(upper[1] == 3.0)


def test_soft_band_is_the_log_band_around_the_fill() -> None:
    fill = np.full(SHAPE, 99.0)  # log1p = log(100)
    problem = _problem("soft", fill=fill, sigma=np.full(SHAPE, np.log(2.0)))
    lower, upper = problem.bounds(released=True)
    assert torch.allclose(lower, torch.tensor(np.sqrt(49.0), dtype=torch.float32))
    assert torch.allclose(upper, torch.tensor(np.sqrt(199.0), dtype=torch.float32))


@pytest.mark.parametrize("treatment", ["fill_start", "fill_start_tv"])
def test_fill_start_begins_from_the_fill(treatment) -> None:
    problem = _problem(treatment, fill=np.full(SHAPE, 16.0))
    start = torch.fft.fftshift(problem.start_amplitude()[0])
    assert torch.all(start[:, :, 5:7] == 4.0) and torch.all(start[:, :, :5] == 2.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"treatment": "guess"}, "unknown treatment"),
        ({"treatment": "fill"}, "needs a fill"),
        ({"treatment": "soft", "fill": np.ones(SHAPE)}, "needs fill_sigma"),
        ({"treatment": ("tv", "free")}, "cannot be mixed"),
        ({"treatment": ("fill_start_tv", "fill_start"), "fill": np.ones(SHAPE)}, "be mixed"),
    ],
)
def test_treatment_errors(kwargs, match) -> None:
    with pytest.raises(PhasingError, match=match):
        Problem.build(
            np.ones(SHAPE),
            None,
            fill=kwargs.get("fill"),
            fill_sigma=None,
            soft_width=1.0,
            device=torch.device("cpu"),
            treatment=kwargs["treatment"],
        )
    assert "soft" in TREATMENTS


def test_recipe_parse_and_errors() -> None:
    recipe = Recipe.parse("HIO**30 RAAR(0.8)**20 ER**10", shrink_wrap_every=10)
    assert recipe.stages == (Stage("HIO", 30, 0.9), Stage("RAAR", 20, 0.8), Stage("ER", 10, 0.9))
    assert recipe.iterations == 60 and recipe.shrink_wrap_every == 10
    with pytest.raises(PhasingError, match="cannot read recipe step 'HIO\\*3x'"):
        Recipe.parse("HIO*3x")
    with pytest.raises(PhasingError, match="unknown algorithm"):
        Stage("DM", 10)
    with pytest.raises(PhasingError, match="beta 1.5"):
        Stage("HIO", 10, 1.5)
