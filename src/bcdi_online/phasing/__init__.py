"""Bragg CDI phase retrieval with the standard treatments of unmeasured (gap) voxels.

:func:`phase_retrieval` runs a :class:`Recipe` (HIO, RAAR, ER, shrink-wrap) on several
random starts as one batch (CPU or GPU, torch), keeps the best by Poisson likelihood
and returns the first mode of their decomposition. :func:`compare` measures a
reconstruction against a known object after removing the trivial ambiguities.
:func:`reconstruct_scan` is the crystal at a scan's end; :func:`refine_fill` refills
the scan's gap from it where the Bragg peak was measured (:func:`peak_in_gap`).
"""

from __future__ import annotations

from ._compare import Comparison, compare, true_support
from ._engine import PhasingResult, phase_retrieval
from ._figure import crystal_figure
from ._problem import TREATMENTS
from ._recipe import Recipe, Stage
from ._refill import refine_fill
from ._scan_end import (
    RECOMMENDED_TREATMENT,
    SCAN_END_REGION,
    ScanReconstruction,
    peak_in_gap,
    peak_region,
    reconstruct_scan,
)

__all__ = [
    "RECOMMENDED_TREATMENT",
    "SCAN_END_REGION",
    "TREATMENTS",
    "Comparison",
    "PhasingResult",
    "Recipe",
    "ScanReconstruction",
    "Stage",
    "compare",
    "crystal_figure",
    "peak_in_gap",
    "peak_region",
    "phase_retrieval",
    "reconstruct_scan",
    "refine_fill",
    "true_support",
]
