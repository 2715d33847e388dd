"""The held-out validation set: simulated scans with 6, 12 and 38 px gaps, scored per method."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..simulation import CrystalParams, simulate_volume
from ._metrics import evaluate

#: Seeds of validation crystals start here; training sets are drawn from other seeds.
VALIDATION_SEED = 900_000

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ValidationCase:
    """One validation volume.

    Attributes
    ----------
    name : str
        ``"w{width}-{single|cross}-{low|high}-{i}"``.
    data : (n_frames, ny, nx) uint32 ndarray
        Counts with zeros in the gap.
    mask : (ny, nx) bool ndarray
        Gap pixels.
    truth : (n_frames, ny, nx) uint32 ndarray
        Counts without gaps (same Poisson draw).
    expected : (n_frames, ny, nx) float32 ndarray
        Noise-free intensity.
    width : int
        Gap width in pixels (the crossing stripe of a 38 px cross is 12 px, as on EIGER2).
    cross : bool
        Whether a perpendicular stripe crosses the first.
    photons : float
        Photon budget of the crystal.
    """

    name: str
    data: np.ndarray
    mask: np.ndarray
    truth: np.ndarray
    expected: np.ndarray
    width: int
    cross: bool
    photons: float


def _mask(shape: tuple[int, int], width: int, cross: bool, rng: np.random.Generator) -> np.ndarray:
    """Draw a column stripe (and a row stripe) over the peak or on its flanks."""
    ny, nx = shape
    mask = np.zeros(shape, dtype=bool)
    x0 = nx // 2 - width // 2 + int(rng.integers(-12, 13))
    mask[:, x0 : x0 + width] = True
    if cross:
        cross_width = 12 if width > 12 else width
        y0 = ny // 2 - cross_width // 2 + int(rng.integers(-12, 13))
        mask[y0 : y0 + cross_width, :] = True
    return mask


def validation_set(
    *,
    shape: tuple[int, int, int] = (64, 128, 128),
    per_case: int = 2,
    widths: Iterable[int] = (6, 12, 38),
    seed: int = VALIDATION_SEED,
    measurement_effects: bool = False,
) -> list[ValidationCase]:
    """Build the validation scans: every width x single/cross x low/high counts.

    Low counts draw a photon budget in [1e6, 1e7], high counts in [1e8, 1e9]; crystals
    are drawn with :meth:`CrystalParams.random` from seeds ``seed + i``, never used in
    training.

    Parameters
    ----------
    shape : tuple of int
        Volume shape (n_frames, ny, nx).
    per_case : int
        Volumes per (width, cross, counts) combination; 2 gives 24 volumes.
    widths : iterable of int
        Gap widths in pixels.
    seed : int
        First seed.
    measurement_effects : bool
        Draw the crystals with a detector-frame shear and partial-coherence blur
        (:meth:`CrystalParams.random`): the same crystals and gaps, measured as a
        rocking scan sees them.

    Returns
    -------
    list of ValidationCase
    """
    cases = []
    index = 0
    for width in widths:
        for cross in (False, True):
            for level, (lo, hi) in (("low", (6.0, 7.0)), ("high", (8.0, 9.0))):
                for i in range(per_case):
                    rng = np.random.default_rng(seed + index)
                    index += 1
                    photons = float(10 ** rng.uniform(lo, hi))
                    params = CrystalParams.random(rng, photon_budget=photons)
                    if measurement_effects:
                        effects = CrystalParams.random(
                            np.random.default_rng([seed + index, 1]), measurement_effects=True
                        )
                        params = dataclasses.replace(
                            params, shear=effects.shear, coherence_blur=effects.coherence_blur
                        )
                    diffraction = simulate_volume(shape, params)
                    mask = _mask(shape[1:], width, cross, rng)
                    data = diffraction.counts.copy()
                    data[:, mask] = 0
                    name = f"w{width}-{'cross' if cross else 'single'}-{level}-{i}"
                    cases.append(
                        ValidationCase(
                            name,
                            data,
                            mask,
                            diffraction.counts,
                            diffraction.expected,
                            width,
                            cross,
                            params.photon_budget,
                        )
                    )
    return cases


def score_methods(
    methods: dict[str, Method], cases: Iterable[ValidationCase]
) -> list[dict[str, float | str]]:
    """Fill every case with every method and score it with :func:`evaluate`.

    Parameters
    ----------
    methods : dict of str to callable
        ``name -> f(data, mask) -> filled``.
    cases : iterable of ValidationCase
        Validation volumes.

    Returns
    -------
    list of dict
        One row per (case, method): case fields, method, seconds and the metrics.
    """
    rows: list[dict[str, float | str]] = []
    for case in cases:
        for name, method in methods.items():
            start = time.perf_counter()
            filled = method(case.data, case.mask)
            seconds = time.perf_counter() - start
            metrics = evaluate(filled, case.truth, case.mask, case.expected)
            rows.append(
                {
                    "case": case.name,
                    "width": case.width,
                    "cross": str(case.cross),
                    "photons": case.photons,
                    "method": name,
                    "seconds": seconds,
                    **metrics,
                }
            )
    return rows
