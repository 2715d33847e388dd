"""Simulated crystals with gaps through the Bragg peak and off it, for real-space evaluation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..simulation import CrystalParams, simulate_volume

#: Seeds of real-space cases start here (validation: 900000, uncertainty calibration: 950000).
REAL_SPACE_SEED = 970_000
#: Positions of a stripe relative to the Bragg peak.
POSITIONS = ("centre", "off")


@dataclass(frozen=True)
class RealSpaceCase:
    """One crystal, its gap-affected scan and everything needed to judge a reconstruction.

    Attributes
    ----------
    name : str
        ``"w{width}-{single|cross}-{centre|off}-{low|high}-{i}"``.
    data : (n_frames, ny, nx) float32 ndarray
        Counts with zeros in the gap.
    mask : (ny, nx) bool ndarray
        Gap pixels.
    truth : (n_frames, ny, nx) float32 ndarray
        The same counts without the gap.
    expected : (n_frames, ny, nx) float32 ndarray
        Noise-free intensity.
    obj : (n_frames, ny, nx) complex64 ndarray
        The crystal that made them, centred.
    width : int
        Gap width in pixels.
    cross : bool
        Whether a second stripe crosses the first (12 px for 38 px gaps, as on EIGER2).
    position : str
        ``"centre"``: the stripes run through the peak's centre; ``"off"``: their near
        edge is one to two fringes from it.
    params : CrystalParams
        The crystal's parameters.
    """

    name: str
    data: np.ndarray
    mask: np.ndarray
    truth: np.ndarray
    expected: np.ndarray
    obj: np.ndarray
    width: int
    cross: bool
    position: str
    params: CrystalParams

    @property
    def group(self) -> str:
        """``"6 px single, centre"``: the table row the case belongs to."""
        return f"{self.width} px {'cross' if self.cross else 'single'}, {self.position}"


def _stripe_start(
    size: int, width: int, position: str, fringe: float, rng: np.random.Generator
) -> int:
    """Return the first pixel of a stripe on an axis whose peak is at ``size // 2``."""
    centre = size // 2
    if position == "centre":
        return centre - width // 2 + int(rng.integers(-1, 2))
    distance = int(round(rng.uniform(1.0, 2.0) * fringe))
    if rng.random() < 0.5:
        return centre + distance
    return centre - distance - width


def real_space_cases(
    *,
    per_group: int = 2,
    widths: Iterable[int] = (6, 12, 38),
    shape: tuple[int, int, int] = (64, 128, 128),
    seed: int = REAL_SPACE_SEED,
) -> list[RealSpaceCase]:
    """Build the real-space evaluation set: width x single/cross x centre/off x ``per_group``.

    Crystals are drawn with :meth:`CrystalParams.random` (every habit, strain,
    dislocations) at oversampling 2.5-4; cases alternate low (1e6-1e7) and high
    (1e8-1e9) photon budgets. The fringe period along the detector axes is
    ``oversampling * ny / n_frames`` pixels.

    Parameters
    ----------
    per_group : int
        Crystals per (width, single/cross, centre/off) group; 2 gives 24 cases.
    widths : iterable of int
        Gap widths in pixels.
    shape : tuple of int
        Scan shape (n_frames, ny, nx).
    seed : int
        First seed (cases use ``seed + i``).

    Returns
    -------
    list of RealSpaceCase
    """
    cases = []
    index = 0
    for width in widths:
        for cross in (False, True):
            for position in POSITIONS:
                for i in range(per_group):
                    rng = np.random.default_rng(seed + index)
                    index += 1
                    level, (lo, hi) = ("low", (6.0, 7.0)) if i % 2 == 0 else ("high", (8.0, 9.0))
                    params = CrystalParams.random(
                        rng,
                        oversampling=float(rng.uniform(2.5, 4.0)),
                        photon_budget=float(10 ** rng.uniform(lo, hi)),
                    )
                    sim = simulate_volume(shape, params)
                    fringe = params.oversampling * shape[2] / min(shape)
                    mask = np.zeros(shape[1:], dtype=bool)
                    x0 = _stripe_start(shape[2], width, position, fringe, rng)
                    mask[:, max(x0, 0) : x0 + width] = True
                    if cross:
                        cross_width = 12 if width > 12 else width
                        y0 = _stripe_start(shape[1], cross_width, position, fringe, rng)
                        mask[max(y0, 0) : y0 + cross_width, :] = True
                    truth = sim.counts.astype(np.float32)
                    data = np.where(mask, np.float32(0), truth)
                    layout = "cross" if cross else "single"
                    cases.append(
                        RealSpaceCase(
                            name=f"w{width}-{layout}-{position}-{level}-{i}",
                            data=data,
                            mask=mask,
                            truth=truth,
                            expected=sim.expected,
                            obj=sim.obj,
                            width=width,
                            cross=cross,
                            position=position,
                            params=params,
                        )
                    )
    return cases
