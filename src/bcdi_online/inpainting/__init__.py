"""Patch-based gap inpainting: window planning, batched prediction, blending, streaming."""

from __future__ import annotations

from ._batch import BatchSize
from ._inpainter import GapInpainter, inpaint
from ._plan import SpatialWindow, WindowPlan, dense_starts, plan_frame, rocking_windows
from ._stream import GapStream, importance
from ._uncertainty import FillUncertainty, coverage, gap_depth

__all__ = [
    "BatchSize",
    "FillUncertainty",
    "GapInpainter",
    "GapStream",
    "SpatialWindow",
    "WindowPlan",
    "coverage",
    "dense_starts",
    "gap_depth",
    "importance",
    "inpaint",
    "plan_frame",
    "rocking_windows",
]
