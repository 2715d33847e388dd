"""A calibrated per-voxel uncertainty of the filled values.

The error of a fill grows with the distance from the nearest measured pixel and
depends on the intensity level (Poisson-dominated at a few photons, shape-dominated in
the peak). :class:`FillUncertainty` is a table of the empirical 68 % and 95 %
quantiles of ``|log1p(expected) - log1p(fill)|`` per (depth into the gap, fill level)
bin, fitted on held-out simulations: calibrated by construction on its own data,
checked on others (``benchmarks/calibrate_uncertainty.py``). It costs nothing at
inference, so the live path can write it beside every corrected scan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .._errors import InputDataError, ModelError

#: Depth bins (pixels from the nearest measured pixel) and fill-level bins (log10(1 + counts)).
DEPTH_EDGES = (0.0, 1.5, 2.5, 3.5, 5.5, 8.5, 12.5, 19.5, np.inf)
LEVEL_EDGES = (-np.inf, 0.3, 1.0, 2.0, 3.0, 4.0, np.inf)
#: Bins with fewer voxels than this take the quantile of their whole depth row.
MIN_VOXELS = 200
#: The shipped calibration of the shipped weights.
SHIPPED = (
    Path(__file__).resolve().parent.parent / "model" / "weights" / "gap_unet_uncertainty.json"
)


def gap_depth(mask: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Distance (pixels) of every gap voxel from the nearest measured pixel of its frame.

    Parameters
    ----------
    mask : (ny, nx) or (n_frames, ny, nx) bool ndarray
        True = gap.
    shape : tuple of int
        Scan shape (n_frames, ny, nx).

    Returns
    -------
    (n_frames, ny, nx) float32 ndarray
        0 at measured voxels.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == tuple(shape[1:]):
        return np.broadcast_to(ndimage.distance_transform_edt(mask).astype(np.float32), shape)
    if mask.shape != tuple(shape):
        raise InputDataError(f"mask shape {mask.shape} matches neither {shape} nor {shape[1:]}")
    return np.stack([ndimage.distance_transform_edt(m) for m in mask]).astype(np.float32)


def _bins(depth: np.ndarray, filled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and level bin indices of voxels."""
    d = np.clip(np.digitize(depth, DEPTH_EDGES) - 1, 0, len(DEPTH_EDGES) - 2)
    level = np.log10(1.0 + np.clip(filled, 0, None))
    lv = np.clip(np.digitize(level, LEVEL_EDGES) - 1, 0, len(LEVEL_EDGES) - 2)
    return d, lv


@dataclass(frozen=True)
class FillUncertainty:
    """Uncertainty of filled values in ``log1p`` units, by depth into the gap and level.

    Attributes
    ----------
    q68, q95 : tuple of tuple of float
        ``(n_depth_bins, n_level_bins)`` quantiles of the absolute ``log1p`` error.
    provenance : dict
        How it was fitted (model sha256, cases, command) and its coverage on held-out data.
    """

    q68: tuple[tuple[float, ...], ...]
    q95: tuple[tuple[float, ...], ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, cases: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], **provenance: Any
    ) -> FillUncertainty:
        """Fit the quantile tables.

        Parameters
        ----------
        cases : iterable of (filled, expected, mask)
            Filled scans ``(n_frames, ny, nx)``, their noise-free intensity and gap masks.
        **provenance
            Stored with the tables.
        """
        errors: list[np.ndarray] = []
        bins: list[np.ndarray] = []
        for filled, expected, mask in cases:
            depth = gap_depth(mask, filled.shape)
            gap = depth > 0
            d, lv = _bins(depth[gap], filled[gap])
            bins.append(d * (len(LEVEL_EDGES) - 1) + lv)
            errors.append(
                np.abs(np.log1p(expected[gap]) - np.log1p(np.clip(filled[gap], 0, None)))
            )
        if not errors:
            raise InputDataError("no cases to fit a fill uncertainty on")
        err, index = np.concatenate(errors), np.concatenate(bins)
        n_depth, n_level = len(DEPTH_EDGES) - 1, len(LEVEL_EDGES) - 1
        tables = []
        for q in (0.6827, 0.9545):
            table = np.zeros((n_depth, n_level))
            for depth_bin in range(n_depth):
                row = (index // n_level) == depth_bin
                pooled = (
                    float(np.quantile(err[row], q))
                    if row.sum() >= MIN_VOXELS
                    else float(np.quantile(err, q))
                )
                for level_bin in range(n_level):
                    cell = index == depth_bin * n_level + level_bin
                    table[depth_bin, level_bin] = (
                        float(np.quantile(err[cell], q)) if cell.sum() >= MIN_VOXELS else pooled
                    )
            tables.append(tuple(tuple(float(v) for v in r) for r in table))
        return cls(tables[0], tables[1], dict(provenance))

    def __call__(self, filled: np.ndarray, mask: np.ndarray, *, level: float = 0.68) -> np.ndarray:
        """Per-voxel uncertainty of a filled scan.

        Parameters
        ----------
        filled : (n_frames, ny, nx) ndarray
            Filled counts.
        mask : (ny, nx) or (n_frames, ny, nx) bool ndarray
            Gap voxels.
        level : float
            0.68 (one standard uncertainty) or 0.95 (the 95 % half-width).

        Returns
        -------
        (n_frames, ny, nx) float32 ndarray
            Half-width of the band in ``log1p`` units: the expected intensity lies in
            ``expm1(log1p(filled) +- sigma)`` with the stated probability; 0 where measured.
        """
        if level not in (0.68, 0.95):
            raise InputDataError(f"uncertainty level must be 0.68 or 0.95, got {level}")
        filled = np.asarray(filled)
        depth = gap_depth(mask, filled.shape)
        table = np.asarray(self.q68 if level == 0.68 else self.q95, dtype=np.float32)
        d, lv = _bins(depth, filled)
        return np.where(depth > 0, table[d, lv], np.float32(0)).astype(np.float32)

    def to_json(self, path: str | Path) -> None:
        """Write the tables and provenance as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path | None = None) -> FillUncertainty:
        """Read a calibration (default: the one shipped for the shipped weights)."""
        path = SHIPPED if path is None else Path(path)
        try:
            raw = json.loads(Path(path).read_text())
            return cls(
                tuple(tuple(float(v) for v in r) for r in raw["q68"]),
                tuple(tuple(float(v) for v in r) for r in raw["q95"]),
                dict(raw.get("provenance", {})),
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(
                f"cannot read a fill uncertainty calibration from {path}: {err}"
            ) from err


def coverage(
    uncertainty: FillUncertainty,
    cases: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    level: float = 0.68,
) -> float:
    """Fraction of gap voxels whose expected intensity lies inside the stated band.

    Parameters
    ----------
    uncertainty : FillUncertainty
    cases : iterable of (filled, expected, mask)
    level : float
        0.68 or 0.95.
    """
    inside = total = 0
    for filled, expected, mask in cases:
        sigma = uncertainty(filled, mask, level=level)
        gap = gap_depth(mask, filled.shape) > 0
        err = np.abs(np.log1p(expected[gap]) - np.log1p(np.clip(filled[gap], 0, None)))
        inside += int(np.count_nonzero(err <= sigma[gap]))
        total += int(gap.sum())
    if total == 0:
        raise InputDataError("no gap voxels to measure coverage on")
    return inside / total
