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
    amplitude_error,
    evaluate,
    gap_ratios,
    oracle_pcc,
    paper_crops,
    paper_pcc,
    relative_photon_error,
    strict_pcc,
)
from ._real_space import (
    PRACTICES,
    SUCCESS_PHASE_ERROR,
    Practice,
    crop_centre,
    fill_scores,
    reconstruct_case,
    reference_object,
    region_reference,
)
from ._real_space_cases import REAL_SPACE_SEED, RealSpaceCase, real_space_cases
from ._real_space_report import central_slices_figure, summarise_real_space
from ._report import summarise
from ._validation import VALIDATION_SEED, ValidationCase, score_methods, validation_set

__all__ = [
    "PRACTICES",
    "REAL_SPACE_SEED",
    "SUCCESS_PHASE_ERROR",
    "VALIDATION_SEED",
    "Practice",
    "RealSpaceCase",
    "ValidationCase",
    "amplitude_error",
    "biharmonic",
    "central_slices_figure",
    "crop_centre",
    "evaluate",
    "fill_scores",
    "gap_ratios",
    "inverse_distance_weighting",
    "linear_interpolation",
    "oracle_pcc",
    "paper_crops",
    "paper_pcc",
    "real_space_cases",
    "reconstruct_case",
    "reference_object",
    "region_reference",
    "relative_photon_error",
    "score_methods",
    "strict_pcc",
    "summarise",
    "summarise_real_space",
    "validation_set",
]
