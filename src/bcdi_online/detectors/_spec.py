"""Geometry of a tiled area detector and the dead-pixel mask it implies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import ConfigurationError


@dataclass(frozen=True)
class DetectorSpec:
    """A detector made of identical modules (or chips) on a regular grid.

    The frame is ``n_modules[0] x n_modules[1]`` modules of ``module_shape`` pixels,
    separated by ``module_gap`` pixels that no sensor covers. The mask conventions
    follow pyFAI's ``calc_mask`` of the matching class (:attr:`pyfai`), plus two
    additions that pyFAI lacks: enlarged chip-edge pixels (MAXIPIX, Merlin) and
    dead columns inside every module (EIGER2 CdTe, as pyFAI's ``Eiger2CdTe``).

    Raises ``ValueError`` if ``shape`` is not tiled exactly by the modules and gaps.
    """

    name: str
    """Registry key, e.g. ``"maxipix_2x2"``."""
    shape: tuple[int, int]
    """Full frame ``(ny, nx)`` in pixels, as the detector writes it."""
    pixel_size: tuple[float, float]
    """Pixel size ``(y, x)`` in metres."""
    module_shape: tuple[int, int]
    """Pixels ``(rows, columns)`` of one module (chip for MAXIPIX, Merlin, Lambda)."""
    module_gap: tuple[int, int]
    """Dead rows between modules stacked along y, dead columns between modules along x."""
    source: str
    """Where the numbers come from (pyFAI class, manual, reference code)."""
    edge_pixels: int = 0
    """Enlarged pixels on each side of every gap, dead by default: the counts of a
    chip-edge pixel wider than the others are read into one image pixel, the rest of
    its width is left empty, so these pixels are not comparable with their neighbours."""
    module_dead_columns: tuple[int, int] | None = None
    """Half-open columns ``(start, stop)``, counted from each module's first column,
    that are dead inside every module (the EIGER2 CdTe mid-module stripe)."""
    pyfai: str | None = None
    """Name of the pyFAI detector class with the same geometry, for
    ``pyFAI.detector_factory``; None where pyFAI has none."""

    def __post_init__(self) -> None:
        for axis in (0, 1):
            pitch = self.module_shape[axis] + self.module_gap[axis]
            if (self.shape[axis] + self.module_gap[axis]) % pitch:
                raise ConfigurationError(
                    f"{self.name}: frame size {self.shape[axis]} along axis {axis} is not "
                    f"a whole number of {self.module_shape[axis]}-px modules with "
                    f"{self.module_gap[axis]}-px gaps"
                )

    @property
    def n_modules(self) -> tuple[int, int]:
        """Number of modules ``(along y, along x)``."""
        ny, nx = (
            (self.shape[axis] + self.module_gap[axis])
            // (self.module_shape[axis] + self.module_gap[axis])
            for axis in (0, 1)
        )
        return ny, nx

    def full_mask(self, *, mark_edges: bool = True) -> np.ndarray:
        """Dead-pixel mask of the full frame.

        Parameters
        ----------
        mark_edges : bool, optional
            Also mark the :attr:`edge_pixels` on each side of every gap dead.
            No effect on detectors without enlarged edge pixels.

        Returns
        -------
        (ny, nx) ndarray of bool
            True = no signal (module gap, enlarged edge pixel, dead module column).

        """
        ny, nx = self.shape
        (my, mx), (gy, gx) = self.module_shape, self.module_gap
        edge = self.edge_pixels if mark_edges else 0
        mask = np.zeros(self.shape, dtype=bool)
        # the same loops as pyFAI's ModuleDetector subclasses' calc_mask
        for y in range(my, ny, my + gy):
            mask[y - edge : y + gy + edge, :] = True
        for x in range(mx, nx, mx + gx):
            mask[:, x - edge : x + gx + edge] = True
        if self.module_dead_columns is not None:
            start, stop = self.module_dead_columns
            for x in range(0, nx, mx + gx):
                mask[:, x + start : x + stop] = True
        return mask
