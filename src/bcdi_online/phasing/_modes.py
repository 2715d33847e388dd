"""Combining the best starts: registration and the first mode of their decomposition."""

from __future__ import annotations

import math

import torch

from ._align import match_phase, register


def first_mode(objects: torch.Tensor) -> tuple[torch.Tensor, float]:
    """First mode of several reconstructions after registering them on the first.

    The starts are aligned on ``objects[0]`` (twin, whole-voxel translation, phase),
    stacked and decomposed by SVD, as PyNX's mode analysis does; the first mode is the
    consensus object and its weight the share of the total norm it carries (1 when
    all starts agree).

    Parameters
    ----------
    objects : (k, nz, ny, nx) complex Tensor
        Reconstructions, best first, centred layout.

    Returns
    -------
    mode : (nz, ny, nx) complex Tensor
        Scaled to the starts' RMS norm, phase matched to ``objects[0]``.
    weight : float
        ``s_0^2 / sum(s_i^2)`` of the singular values.
    """
    ref = objects[0]
    aligned = [ref] + [register(obj, ref, subvoxel=False) for obj in objects[1:]]
    matrix = torch.stack(aligned).reshape(len(aligned), -1)
    _, values, vh = torch.linalg.svd(matrix, full_matrices=False)
    energy = values.abs() ** 2
    weight = float(energy[0] / energy.sum()) if float(energy.sum()) > 0 else 0.0
    mode = (vh[0] * values[0] / math.sqrt(len(aligned))).reshape(ref.shape)
    # svd's row vectors are defined up to a phase: bring the mode onto the best start
    return match_phase(mode.to(ref.dtype), ref), weight
