"""Where frames and masks live in the HDF5 (NeXus) files the package reads and writes."""

from __future__ import annotations

PIXEL_MASK_PATH = "/entry/instrument/detector/pixel_mask"
"""NeXus ``NXdetector/pixel_mask``: non-zero = dead or bad pixel (detector and scan files)."""
DETECTOR_DATA_PATH = "/entry/instrument/detector/data"
"""NeXus ``NXdetector/data``: the frames of a scan file (``bcdi-online simulate``)."""
FRAMES_PATH = "/entry/data/data"
"""The frames of an area detector's file (its ``NXdata``), as the simulated detectors write."""
