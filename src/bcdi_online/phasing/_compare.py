"""Errors of a reconstruction against a known object, after registration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .._errors import PhasingError
from ._align import register, remove_ramp


@dataclass(frozen=True)
class Comparison:
    """How far a reconstruction is from the true object, inside the true support.

    Attributes
    ----------
    phase_error : float
        Modulus-weighted RMS of the wrapped phase difference (radians).
    strain_error : float
        Modulus-weighted RMS of the difference of phase gradients (radians per voxel),
        on voxels whose neighbours are inside the support too: what a strain map shows.
    modulus_error : float
        Relative RMS error of the modulus over the whole grid, after a least-squares scale.
    aligned : (nz, ny, nx) complex ndarray
        The reconstruction registered on the truth (twin, shift, phase offset and ramp).
    """

    phase_error: float
    strain_error: float
    modulus_error: float
    aligned: np.ndarray

    def as_dict(self) -> dict[str, float]:
        """Return the three errors as plain floats."""
        return {
            "phase_error": self.phase_error,
            "strain_error": self.strain_error,
            "modulus_error": self.modulus_error,
        }


def true_support(obj: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Return the voxels where a known object's modulus reaches ``threshold`` x its maximum."""
    modulus = np.abs(obj)
    return modulus >= threshold * modulus.max()


def _phase_gradient(obj: np.ndarray, axis: int) -> np.ndarray:
    """Return the wrapped phase difference between neighbours along ``axis``."""
    return np.angle(np.roll(obj, -1, axis=axis) * np.conj(obj))


def compare(
    obj: np.ndarray, truth: np.ndarray, *, support: np.ndarray | None = None
) -> Comparison:
    """Register a reconstruction on the true object and measure its errors.

    Parameters
    ----------
    obj : (nz, ny, nx) complex ndarray
        Reconstruction, centred layout (as :class:`PhasingResult` gives it).
    truth : (nz, ny, nx) complex ndarray
        The object that made the data (e.g. a simulation's ``obj``).
    support : (nz, ny, nx) bool ndarray, optional
        Where to measure phase and strain; default the truth's modulus >= 0.5 x max.

    Returns
    -------
    Comparison
    """
    obj = np.asarray(obj)
    truth = np.asarray(truth)
    if obj.shape != truth.shape or obj.ndim != 3:
        raise PhasingError(
            f"reconstruction {obj.shape} and truth {truth.shape} must be the same 3D shape"
        )
    inside = true_support(truth) if support is None else np.asarray(support, dtype=bool)
    if inside.shape != truth.shape or not inside.any():
        raise PhasingError(
            f"support of shape {inside.shape} is empty or does not match {truth.shape}"
        )
    ref = torch.from_numpy(truth.astype(np.complex128))
    moved = register(torch.from_numpy(obj.astype(np.complex128)), ref)
    weight = torch.from_numpy(np.where(inside, np.abs(truth), 0.0))
    aligned = remove_ramp(moved, ref, weight).numpy()

    w = np.abs(truth)[inside]
    diff = np.angle(aligned * np.conj(truth))[inside]
    phase_error = float(np.sqrt(np.sum(w * diff**2) / np.sum(w)))

    core = ndimage.binary_erosion(inside, iterations=1)
    squares, weights = 0.0, 0.0
    for axis in range(3):
        both = core & np.roll(core, -1, axis=axis)
        delta = _phase_gradient(aligned, axis) - _phase_gradient(truth, axis)
        delta = np.angle(np.exp(1j * delta))[both]
        ww = np.abs(truth)[both]
        squares += float(np.sum(ww * delta**2))
        weights += float(np.sum(ww))
    strain_error = float(np.sqrt(squares / weights)) if weights > 0 else float("nan")

    mod, ref_mod = np.abs(aligned), np.abs(truth)
    scale = float(np.sum(mod * ref_mod) / max(np.sum(mod**2), 1e-30))
    modulus_error = float(np.linalg.norm(scale * mod - ref_mod) / np.linalg.norm(ref_mod))
    return Comparison(phase_error, strain_error, modulus_error, aligned.astype(np.complex64))
