"""Simulated Bragg CDI crystals, their 3D diffraction and gap-affected rocking scans."""

from __future__ import annotations

from ._crystal import rotation_matrix
from ._diffraction import Diffraction, bragg_intensity, crystal_object, simulate_volume
from ._figures import plot_central_slices
from ._io import read_scan, read_truth, write_scan
from ._params import SHAPES, CrystalParams
from ._scan import RockingScan, ScanOptions, simulate_scan

__all__ = [
    "SHAPES",
    "CrystalParams",
    "Diffraction",
    "RockingScan",
    "ScanOptions",
    "bragg_intensity",
    "crystal_object",
    "plot_central_slices",
    "read_scan",
    "read_truth",
    "rotation_matrix",
    "simulate_scan",
    "simulate_volume",
    "write_scan",
]
