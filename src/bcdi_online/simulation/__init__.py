"""Simulated Bragg CDI crystals, their 3D diffraction and gap-affected rocking scans."""

from __future__ import annotations

from ._diffraction import Diffraction, crystal_object, simulate_volume
from ._figures import plot_central_slices
from ._io import read_scan, read_truth, write_scan
from ._params import SHAPES, CrystalParams
from ._scan import RockingScan, ScanOptions, simulate_scan

# What users need (crystals, volumes, scans, their files and figures); the geometry
# and intensity helpers behind them are internal.
__all__ = [
    "SHAPES",
    "CrystalParams",
    "Diffraction",
    "RockingScan",
    "ScanOptions",
    "crystal_object",
    "plot_central_slices",
    "read_scan",
    "read_truth",
    "simulate_scan",
    "simulate_volume",
    "write_scan",
]
