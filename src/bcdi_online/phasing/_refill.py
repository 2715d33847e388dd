"""Refill a scan's gap from its reconstructed crystal, where the measured data pin it."""

from __future__ import annotations

import numpy as np

from .._errors import InputDataError, PhasingError
from ._scan_end import PEAK_IN_GAP_RATIO, ScanReconstruction, peak_in_gap


def refine_fill(
    corrected: np.ndarray, mask: np.ndarray, reconstruction: ScanReconstruction
) -> np.ndarray:
    """Refill the gap of the phased region from a converged reconstruction's far field.

    A converged phase retrieval fits every measured voxel with one compact crystal; its
    own intensity on the gap voxels is a fill consistent with all of them. Where the
    Bragg peak was measured, its amplitudes are about half as far from the truth as the
    model's (``benchmarks/reconstruction_fill.py``: better on 12 of 12 simulated
    crystals); where the peak lies in the gap the phasing often converges to a wrong
    crystal that looks converged, and its refill is worse than the model's, so none is
    made (:func:`peak_in_gap`). Each phased bin's gap voxels receive the bin's
    reconstructed counts less its measured counts, shared in proportion to the model's
    fill (evenly where that is zero); measured voxels are returned unchanged, and voxels
    the binning trimmed keep the model's fill.

    Parameters
    ----------
    corrected : (n_frames, ny, nx) ndarray
        The corrected scan the reconstruction was made from (measured counts, model fill).
    mask : (ny, nx) or (n_frames, ny, nx) bool ndarray
        Gap voxels (True = not measured).
    reconstruction : ScanReconstruction
        :func:`reconstruct_scan`'s result for that scan; it must be converged.

    Returns
    -------
    (z1 - z0, y1 - y0, x1 - x0) float32 ndarray
        The scan's ``reconstruction.region``, gap voxels refilled.

    Raises
    ------
    PhasingError
        If the reconstruction did not converge or carries no intensity, or the Bragg
        peak may lie in the gap.
    InputDataError
        If the scan does not hold the reconstruction's region.
    """
    if not reconstruction.converged:
        raise PhasingError(
            f"a reconstruction that did not converge refills nothing: {reconstruction.reason}"
        )
    if reconstruction.intensity is None:
        raise PhasingError("the reconstruction carries no intensity to refill the gap from")
    corrected = np.asarray(corrected, dtype=np.float32)
    z0, z1, y0, y1, x0, x1 = reconstruction.region
    if corrected.ndim != 3 or any(
        stop > n for stop, n in zip((z1, y1, x1), corrected.shape, strict=True)
    ):
        raise InputDataError(
            f"the scan {corrected.shape} does not hold the region {reconstruction.region}"
        )
    box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
    region = corrected[box].copy()
    gap = np.broadcast_to(np.asarray(mask, dtype=bool), corrected.shape)[box]
    hidden, ratio = peak_in_gap(region, gap)
    if hidden:
        raise PhasingError(
            f"the Bragg peak may lie in the gap (brightest count next to it {ratio:.2f} of "
            f"the brightest measured, >= {PEAK_IN_GAP_RATIO}): the measured data do not pin "
            "a refill there"
        )
    factors = reconstruction.binning
    size = tuple(n // f for n, f in zip(region.shape, factors, strict=True))
    if size != reconstruction.intensity.shape:
        raise InputDataError(
            f"the reconstruction's grid {reconstruction.intensity.shape} is not the region "
            f"{region.shape} binned by {factors}"
        )
    inner = tuple(slice(0, n * f) for n, f in zip(size, factors, strict=True))

    def blocks(volume: np.ndarray) -> np.ndarray:  # (bins..., voxels of a bin)
        split = volume[inner].reshape(
            size[0], factors[0], size[1], factors[1], size[2], factors[2]
        )
        return split.transpose(0, 2, 4, 1, 3, 5).reshape(*size, -1)

    values, in_gap = blocks(region), blocks(gap)
    measured = np.where(in_gap, 0.0, values).sum(axis=-1)
    share = np.clip(reconstruction.intensity - measured, 0.0, None)
    weights = np.where(in_gap, np.clip(values, 0.0, None), 0.0)
    total = weights.sum(axis=-1, keepdims=True)
    even = in_gap / np.maximum(in_gap.sum(axis=-1, keepdims=True), 1)
    weights = np.where(total > 0, weights / np.where(total > 0, total, 1.0), even)
    refilled = np.where(in_gap, share[..., None] * weights, values)
    region[inner] = (
        refilled.reshape(*size, *factors).transpose(0, 3, 1, 4, 2, 5).reshape(region[inner].shape)
    )
    return region
