"""Patch-based gap inpainting: window planning, batched prediction, blending, streaming."""

from __future__ import annotations

from ._bad_pixels import MAX_BAD_FRACTION, MaskedStream, find_bad_pixels, inpaint_with_bad_pixels
from ._batch import BatchSize
from ._guard import OvershootGuard
from ._inpainter import DEFAULT_GUARD, GapInpainter, inpaint
from ._plan import WindowPlan, rocking_windows
from ._stream import GapStream
from ._uncertainty import FillUncertainty, coverage, gap_depth

__all__ = [
    "DEFAULT_GUARD",
    "MAX_BAD_FRACTION",
    "BatchSize",
    "FillUncertainty",
    "GapInpainter",
    "GapStream",
    "MaskedStream",
    "OvershootGuard",
    "WindowPlan",
    "coverage",
    "find_bad_pixels",
    "gap_depth",
    "inpaint",
    "inpaint_with_bad_pixels",
    "rocking_windows",
]
