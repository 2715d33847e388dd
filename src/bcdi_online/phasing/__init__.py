"""Bragg CDI phase retrieval with the standard treatments of unmeasured (gap) voxels.

:func:`phase_retrieval` runs a :class:`Recipe` (HIO, RAAR, ER, shrink-wrap) on several
random starts as one batch (CPU or GPU, torch), keeps the best by Poisson likelihood
and returns the first mode of their decomposition. :func:`compare` measures a
reconstruction against a known object after removing the trivial ambiguities.
"""

from __future__ import annotations

from ._compare import Comparison, compare, true_support
from ._engine import PhasingResult, phase_retrieval
from ._figure import crystal_figure
from ._problem import TREATMENTS
from ._recipe import Recipe, Stage
from ._scan_end import RECOMMENDED_TREATMENT, ScanReconstruction, peak_region, reconstruct_scan

__all__ = [
    "RECOMMENDED_TREATMENT",
    "TREATMENTS",
    "Comparison",
    "PhasingResult",
    "Recipe",
    "ScanReconstruction",
    "Stage",
    "compare",
    "crystal_figure",
    "peak_region",
    "phase_retrieval",
    "reconstruct_scan",
    "true_support",
]
