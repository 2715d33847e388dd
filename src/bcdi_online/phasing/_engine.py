"""Bragg CDI phase retrieval: several random starts as one batch, on CPU or GPU."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._errors import PhasingError
from ._modes import first_mode
from ._operators import (
    error_reduction,
    gaussian_transfer,
    hybrid_input_output,
    impose_modulus,
    raar,
    shrink_wrap,
    to_fourier,
    to_real,
    total_variation_descent,
)
from ._problem import TV_TREATMENTS, Problem, poisson_llk
from ._recipe import Recipe


@dataclass(frozen=True)
class PhasingResult:
    """A reconstruction and its figures of merit.

    Attributes
    ----------
    obj : (nz, ny, nx) complex64 ndarray
        The crystal, centred: the first mode of the kept starts.
    support : (nz, ny, nx) bool ndarray
        Its support (shrink-wrap rule applied to ``obj``).
    intensity : (nz, ny, nx) float32 ndarray
        ``|FFT(obj)|^2`` scaled to the data, peak centred: the reconstruction's own
        intensity, gap voxels included.
    llk : float
        Poisson log-likelihood (half deviance per measured voxel) of ``intensity``;
        about 0.5 for a fit within Poisson noise.
    llk_starts : tuple of float
        The same for every start, in start order.
    kept : tuple of int
        Starts combined into ``obj``, best first.
    mode_weight : float
        Share of the kept starts' norm carried by the first mode (1 = all agree).
    treatment : str
        How unmeasured voxels were treated (``"a+b"``: starts treated differently).
    seconds : float
        Wall time.
    """

    obj: np.ndarray
    support: np.ndarray
    intensity: np.ndarray
    llk: float
    llk_starts: tuple[float, ...]
    kept: tuple[int, ...]
    mode_weight: float
    treatment: str
    seconds: float

    @property
    def support_fraction(self) -> float:
        """Return the fraction of the grid inside the support."""
        return float(self.support.mean())


def _release_iteration(recipe: Recipe) -> int:
    """Return the iteration at which a ``*_then_free`` treatment releases the voxels."""
    feedback = sum(s.iterations for s in recipe.stages if s.algorithm != "ER")
    return int(round(recipe.release * (feedback or recipe.iterations)))


def _iterate(
    problem: Problem, recipe: Recipe, psi: torch.Tensor, support: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the recipe's stages on a batch of starts."""
    transfer = gaussian_transfer(problem.shape, recipe.shrink_wrap_sigma, psi.device)
    release_at = _release_iteration(recipe)
    last_update = recipe.iterations - recipe.shrink_wrap_every
    done = 0
    for stage in recipe.stages:
        for _ in range(stage.iterations):
            lower, upper = problem.bounds(released=done >= release_at)
            projected = to_real(
                impose_modulus(
                    to_fourier(psi), problem.amplitude, problem.measured, lower=lower, upper=upper
                )
            )
            if stage.algorithm == "HIO":
                psi = hybrid_input_output(psi, projected, support, stage.beta)
            elif stage.algorithm == "RAAR":
                psi = raar(psi, projected, support, stage.beta)
            else:
                psi = error_reduction(projected, support)
            done += 1
            every = recipe.shrink_wrap_every
            if every and done % every == 0 and done <= last_update:
                support = shrink_wrap(psi, transfer, recipe.shrink_wrap_threshold)
    if problem.treatments[0] in TV_TREATMENTS:  # never mixed with others
        psi = _least_total_variation(problem, recipe, psi, support)
    return psi, support


def _least_total_variation(
    problem: Problem, recipe: Recipe, psi: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """Among the objects with the same measured far field and support, move to the least TV.

    Malm et al.'s first algorithm (J. Synchrotron Rad. 2025), as post-processing: the
    measured Fourier components of the reconstruction (modulus and phase) are held
    fixed, and total-variation descent steps alternate with the support and those
    components, so that only the modes the data leave free change.
    """
    fixed = to_fourier(psi)
    for _ in range(recipe.tv_iterations):
        psi = (psi + recipe.tv_step * total_variation_descent(psi)) * support
        field = to_fourier(psi)
        psi = to_real(torch.where(problem.measured, fixed, field))
    return psi * support


def phase_retrieval(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    treatment: str | Sequence[str] = "free",
    fill: np.ndarray | None = None,
    fill_sigma: np.ndarray | None = None,
    soft_width: float = 1.0,
    recipe: Recipe | None = None,
    n_starts: int = 4,
    keep: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> PhasingResult:
    """Reconstruct a crystal from its 3D Bragg intensity.

    Parameters
    ----------
    intensity : (nz, ny, nx) ndarray
        Measured counts, Bragg peak near the centre; values at unmeasured voxels are
        ignored.
    mask : (nz, ny, nx) or (ny, nx) bool ndarray, optional
        True where nothing was measured (detector gaps, bad pixels).
    treatment : str or sequence of str
        What unmeasured voxels become at each Fourier projection (a sequence is dealt
        to the starts in turn, which then compete on the likelihood of the measured
        voxels): ``"zero"``;
        ``"free"`` (left as computed, PyNX's default); ``"zero_then_free"`` (zero for
        the first ``recipe.release`` of the HIO/RAAR iterations, PyNX's
        ``zero_mask=auto``); ``"fill"`` (``fill`` imposed as if measured);
        ``"fill_then_free"`` (imposed, then released); ``"fill_start"`` (free, starting
        from ``fill``); ``"soft"`` (kept within ``soft_width`` x ``fill_sigma`` of
        ``fill``, PyNX's ``mask_interp`` with a confidence interval); ``"tv"`` (free,
        then ``recipe.tv_iterations`` steps towards the least total variation among the
        objects with the same support and measured far field, after Malm et al. 2025);
        ``"fill_start_tv"`` (``"fill_start"``, then the same least-total-variation steps).
    fill : (nz, ny, nx) ndarray, optional
        Estimated counts at unmeasured voxels (e.g. :func:`bcdi_online.inpaint`'s
        output); needed by the ``fill*`` and ``soft`` treatments.
    fill_sigma : (nz, ny, nx) ndarray, optional
        Uncertainty of ``fill`` in ``log1p`` units (as
        :class:`bcdi_online.inpainting.FillUncertainty` gives it); needed by ``soft``,
        whose band is ``expm1(log1p(fill) +- soft_width * fill_sigma)``.
    soft_width : float
        Half-width of the soft band in units of ``fill_sigma``.
    recipe : Recipe, optional
        Algorithms and support updates; default :class:`Recipe`.
    n_starts : int
        Random starts, run as one batch.
    keep : int, optional
        Best starts (lowest LLK) combined into the first mode; default half, at least 1.
    seed : int
        Seed of the random starts.
    device : str or torch.device, optional
        Default CUDA when available, else CPU.

    Returns
    -------
    PhasingResult

    Examples
    --------
    >>> from bcdi_online.simulation import simulate_volume
    >>> sim = simulate_volume((32, 32, 32), seed=1, photon_budget=1e8, strain_amplitude=0.0)
    >>> result = phase_retrieval(sim.counts, n_starts=2, recipe=Recipe.parse("HIO**60 ER**40"))
    >>> result.obj.shape, result.support.dtype
    ((32, 32, 32), dtype('bool'))
    """
    started = time.perf_counter()
    recipe = recipe or Recipe()
    if n_starts < 1:
        raise PhasingError(f"n_starts must be >= 1, got {n_starts}")
    keep = max(1, n_starts // 2) if keep is None else keep
    if not 1 <= keep <= n_starts:
        raise PhasingError(f"keep {keep} must be between 1 and n_starts {n_starts}")
    dev = (
        torch.device(device)
        if device is not None
        else (torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    )
    problem = Problem.build(
        intensity,
        mask,
        treatment=treatment,
        n_starts=n_starts,
        fill=fill,
        fill_sigma=fill_sigma,
        soft_width=soft_width,
        device=dev,
    )
    if len(problem.treatments) != n_starts:
        raise PhasingError(
            f"{len(problem.treatments)} treatments {problem.treatments} for {n_starts} starts"
        )
    generator = torch.Generator(device="cpu").manual_seed(seed)
    support = problem.initial_support(recipe.autocorrelation_threshold)
    phases = torch.rand((n_starts, *problem.shape), generator=generator, dtype=torch.float32)
    start_field = torch.polar(problem.start_amplitude().cpu(), phases * (2 * math.pi))
    psi = to_real(start_field.to(dev)) * support

    with torch.no_grad():
        psi, support = _iterate(problem, recipe, psi, support)
        llk_starts = poisson_llk(problem, to_fourier(psi))
        order = torch.argsort(llk_starts)[:keep]
        centred = torch.fft.fftshift(psi[order], dim=(-3, -2, -1))
        mode, weight = first_mode(centred.cpu().to(torch.complex128))
        field = torch.fft.fftn(torch.fft.ifftshift(mode))[None]
        model = problem.scaled_intensity(field.to(dev).to(torch.complex64))
        llk = float(poisson_llk(problem, None, model_intensity=model)[0])
        transfer = gaussian_transfer(problem.shape, recipe.shrink_wrap_sigma, torch.device("cpu"))
        final_support = shrink_wrap(
            mode[None].to(torch.complex64), transfer, recipe.shrink_wrap_threshold
        )[0]
    return PhasingResult(
        obj=mode.numpy().astype(np.complex64),
        support=final_support.numpy(),
        intensity=torch.fft.fftshift(model[0].cpu()).numpy().astype(np.float32),
        llk=llk,
        llk_starts=tuple(float(v) for v in llk_starts.cpu()),
        kept=tuple(int(i) for i in order.cpu()),
        mode_weight=weight,
        treatment=problem.treatment,
        seconds=time.perf_counter() - started,
    )
