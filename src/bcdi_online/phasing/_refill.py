"""Refill a scan's gap from its reconstructed crystal, where the measured data pin it."""

from __future__ import annotations

import numpy as np

from .._errors import InputDataError, PhasingError
from ._scan_end import PEAK_IN_GAP_RATIO, ScanReconstruction, _binned


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
    made (``reconstruction.peak_in_gap``). Each phased bin's gap voxels receive the bin's
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
    if reconstruction.peak_in_gap:
        raise PhasingError(
            "the Bragg peak may lie in the gap (brightest count next to it "
            f"{reconstruction.peak_edge_ratio:.2f} of the brightest measured, >= "
            f"{PEAK_IN_GAP_RATIO}): the measured data do not pin a refill there"
        )
    box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
    region = corrected[box].copy()
    factors = reconstruction.binning
    size = tuple(n // f for n, f in zip(region.shape, factors, strict=True))
    if size != reconstruction.intensity.shape:
        raise InputDataError(
            f"the reconstruction's grid {reconstruction.intensity.shape} is not the region "
            f"{region.shape} binned by {factors}"
        )
    inner = tuple(slice(0, n * f) for n, f in zip(size, factors, strict=True))
    values = region[inner]
    gap = np.broadcast_to(np.asarray(mask, dtype=bool), corrected.shape)[box][inner]

    def per_voxel(per_bin: np.ndarray) -> np.ndarray:  # each bin's value on its voxels
        for axis, factor in enumerate(factors):
            per_bin = np.repeat(per_bin, factor, axis=axis)
        return per_bin

    fill = np.where(gap, np.clip(values, 0.0, None), 0.0)
    measured = _binned(np.where(gap, 0.0, values), factors, "sum")
    share = np.clip(reconstruction.intensity - measured, 0.0, None)
    fill_total = per_voxel(_binned(fill, factors, "sum"))
    evenly = 1.0 / np.maximum(per_voxel(_binned(gap, factors, "sum")), 1)
    weight = np.where(fill_total > 0, fill / np.where(fill_total > 0, fill_total, 1.0), evenly)
    region[inner] = np.where(gap, per_voxel(share) * weight, values)
    return region
