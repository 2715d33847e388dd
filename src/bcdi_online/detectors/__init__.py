"""Detector gap geometry: which pixels of a frame carry no signal.

A registry of named area detectors (MAXIPIX, EIGER, EIGER2, EIGER2 CdTe, the ID01
Eiger2M, PILATUS, LAMBDA, Merlin) gives each one's full-frame dead-pixel mask;
:func:`gap_mask` crops it to a region of interest and adds a user mask;
:func:`stripes` finds the straight dead stripes the inpainting fills. Masks are
``(ny, nx)`` bool, True = dead pixel.
"""

from __future__ import annotations

from ._mask import checked_mask, gap_mask, roi_around
from ._nexus import DETECTOR_DATA_PATH, FRAMES_PATH, PIXEL_MASK_PATH
from ._registry import DETECTORS, detector_names, get_detector
from ._spec import DetectorSpec
from ._stripes import Stripe, stripes

__all__ = [
    "DETECTORS",
    "DETECTOR_DATA_PATH",
    "FRAMES_PATH",
    "PIXEL_MASK_PATH",
    "DetectorSpec",
    "Stripe",
    "checked_mask",
    "detector_names",
    "gap_mask",
    "get_detector",
    "roi_around",
    "stripes",
]
