"""Accuracy of gap fillings: metrics against simulated truth and classical baselines.

Metrics compare a filled volume with the gap-free truth on the gap voxels only;
baselines fill a gap without a network, for comparison; :func:`score_methods` runs
methods over the :func:`validation_set` and :func:`summarise` tables the scores.
Volumes are ``(n_frames, ny, nx)``; masks are bool, True = dead pixel, either
``(ny, nx)`` (the same for every frame) or ``(n_frames, ny, nx)``.
"""

from __future__ import annotations

from ._baselines import biharmonic, inverse_distance_weighting, linear_interpolation
from ._metrics import (
    evaluate,
    oracle_pcc,
    paper_crops,
    paper_pcc,
    relative_photon_error,
    strict_pcc,
)
from ._report import summarise
from ._validation import VALIDATION_SEED, ValidationCase, score_methods, validation_set

__all__ = [
    "VALIDATION_SEED",
    "ValidationCase",
    "biharmonic",
    "evaluate",
    "inverse_distance_weighting",
    "linear_interpolation",
    "oracle_pcc",
    "paper_crops",
    "paper_pcc",
    "relative_photon_error",
    "score_methods",
    "strict_pcc",
    "summarise",
    "validation_set",
]
