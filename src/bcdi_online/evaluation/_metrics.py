"""Accuracy of a gap filling against the gap-free truth, on the gap voxels only.

Correlations are taken in ``log1p`` space, where a Bragg peak's decades weigh evenly.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .._errors import InputDataError
from ..detectors import checked_mask, stripes


def volume_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Check a gap mask against a volume and broadcast it over the frames.

    Raises :class:`InputDataError` if the volume is not 3D, and
    :class:`~bcdi_online.GapMaskError` (:func:`~bcdi_online.detectors.checked_mask`) if
    the mask is not bool or does not fit.

    Parameters
    ----------
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = dead (gap) pixel.
    shape : tuple of int
        Volume shape ``(n_frames, ny, nx)``.

    Returns
    -------
    (n_frames, ny, nx) ndarray of bool
        A read-only broadcast view when ``mask`` is a frame mask.

    """
    if len(shape) != 3:
        raise InputDataError(f"volume must be (n_frames, ny, nx), got shape {shape}")
    return np.broadcast_to(checked_mask(mask, shape), shape)


def _volumes(mask: np.ndarray, **arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Check that named volumes share one shape; return them as float64 and the mask last."""
    out = {name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()}
    shapes = {name: a.shape for name, a in out.items()}
    if len(set(shapes.values())) != 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise InputDataError(f"volume shapes differ: {listed}")
    first = next(iter(out.values()))
    return (*out.values(), volume_mask(mask, first.shape))


def _pcc(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 1D samples; 0.0 when either is constant."""
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt(np.dot(da, da) * np.dot(db, db))
    return float(np.dot(da, db) / denom) if denom > 0 else 0.0


def _strict_voxels(
    gap: np.ndarray, expected: np.ndarray, min_photons: float, smooth_sigma: float
) -> np.ndarray:
    """Gap voxels whose smoothed expected intensity reaches ``min_photons``."""
    smooth = gaussian_filter(expected, smooth_sigma) if smooth_sigma > 0 else expected
    selected = gap & (smooth >= min_photons)
    if np.count_nonzero(selected) < 2:
        raise InputDataError(
            f"fewer than 2 gap voxels have a smoothed expected intensity >= {min_photons} "
            f"photons (volume shape {gap.shape}, {np.count_nonzero(gap)} gap voxels)"
        )
    return selected


def strict_pcc(
    filled: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray,
    expected: np.ndarray,
    *,
    min_photons: float = 1.0,
    smooth_sigma: float = 1.0,
) -> float:
    """Pearson correlation of ``log1p`` intensities over every gap voxel with signal.

    A voxel counts when it is in the gap and the noise-free intensity, smoothed by a
    Gaussian of ``smooth_sigma`` voxels, reaches ``min_photons``: the whole gap where
    there is something to predict, not a hand-picked crop.

    Parameters
    ----------
    filled : (n_frames, ny, nx) ndarray
        Inpainted volume.
    truth : (n_frames, ny, nx) ndarray
        Gap-free measurement (with Poisson noise).
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = gap voxel.
    expected : (n_frames, ny, nx) ndarray
        Noise-free intensity; selects the voxels only.
    min_photons : float, optional
        Threshold on the smoothed expected intensity.
    smooth_sigma : float, optional
        Gaussian sigma in voxels (0 disables smoothing).

    Returns
    -------
    float
        Correlation in [-1, 1]; 0.0 if either side is constant over the voxels.

    Raises
    ------
    InputDataError
        If shapes mismatch or fewer than 2 voxels qualify.

    """
    filled, truth, expected, gap = _volumes(mask, filled=filled, truth=truth, expected=expected)
    selected = _strict_voxels(gap, expected, min_photons, smooth_sigma)
    return _pcc(np.log1p(filled[selected]), np.log1p(truth[selected]))


def oracle_pcc(
    truth: np.ndarray,
    mask: np.ndarray,
    expected: np.ndarray,
    *,
    min_photons: float = 1.0,
    smooth_sigma: float = 1.0,
) -> float:
    """:func:`strict_pcc` of a perfect predictor, which returns the noise-free intensity.

    Poisson noise keeps this below 1.0; it is the ceiling a filling can reach, so
    ``strict_pcc / oracle_pcc`` reads as a fraction of the attainable correlation.

    Parameters
    ----------
    truth : (n_frames, ny, nx) ndarray
        Gap-free measurement (with Poisson noise).
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = gap voxel.
    expected : (n_frames, ny, nx) ndarray
        Noise-free intensity: the prediction scored, and the voxel selection.
    min_photons, smooth_sigma : float, optional
        As in :func:`strict_pcc`.

    Returns
    -------
    float
        Correlation in [-1, 1].

    Raises
    ------
    InputDataError
        As :func:`strict_pcc`.

    """
    return strict_pcc(
        expected, truth, mask, expected, min_photons=min_photons, smooth_sigma=smooth_sigma
    )


def paper_crops(mask: np.ndarray, shape: tuple[int, int, int], size: int = 32):
    """Yield ``size``^3 crops centred across every straight gap stripe, tiling the rest.

    Parameters
    ----------
    mask : (ny, nx) bool ndarray
        Frame gap mask.
    shape : tuple of int
        Volume shape (n_frames, ny, nx); axes shorter than ``size`` give shorter crops.
    size : int
        Crop edge.

    Yields
    ------
    tuple of slice
        (frames, y, x) slices of one crop.
    """
    n, ny, nx = shape

    def starts(extent: int) -> range:
        return range(0, max(extent - size, 0) + 1, size)

    def centred(centre: float, extent: int) -> slice:
        lo = int(np.clip(round(centre - size / 2), 0, max(extent - size, 0)))
        return slice(lo, lo + size)

    for stripe in stripes(mask):
        across = centred((stripe.start + stripe.stop) / 2, nx if stripe.axis == 1 else ny)
        for t0 in starts(n):
            for a0 in starts(nx if stripe.axis == 0 else ny):
                along = slice(a0, a0 + size)
                yx = (along, across) if stripe.axis == 1 else (across, along)
                yield (slice(t0, t0 + size), *yx)


def paper_pcc(
    filled: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray,
    *,
    min_voxels: int = 10,
    crop: int = 32,
) -> float:
    """Crop-wise ``log1p`` Pearson correlation, averaged per intensity decade, then over decades.

    Our reading of the metric of Masto et al., J. Appl. Cryst. 57 (2024), who score
    32^3 crops with a gap plane through the centre, in log space, per intensity range.
    Here: 32^3 crops are centred across each straight gap stripe and tiled along it
    and along the rocking axis (:func:`paper_crops`); each crop with at least
    ``min_voxels`` gap voxels whose true values vary scores the PCC of
    ``log1p(filled)`` against ``log1p(truth)`` over its gap voxels; crops are binned by
    the decade of their brightest true gap voxel (crops without a photon in the gap
    are skipped), PCCs are averaged per bin, and bins with equal weight. A constant
    filling scores 0.0 in a crop, as in :func:`strict_pcc`.

    Parameters
    ----------
    filled, truth : (n_frames, ny, nx) ndarray
        Inpainted volume and gap-free measurement.
    mask : (ny, nx) ndarray of bool
        True = gap pixel (a 3D mask is reduced to its union over frames).
    min_voxels : int, optional
        Fewest gap voxels for a crop to be scored.
    crop : int, optional
        Crop edge in voxels.

    Returns
    -------
    float
        Mean over intensity decades of the mean crop PCC.

    Raises
    ------
    InputDataError
        If shapes mismatch or no crop can be scored.
    """
    filled, truth, gap = _volumes(mask, filled=filled, truth=truth)
    frame_mask = np.asarray(gap.any(axis=0))
    per_bin: dict[int, list[float]] = {}
    for sl in paper_crops(frame_mask, truth.shape, crop):
        g = gap[sl]
        t, f = truth[sl][g], filled[sl][g]
        if t.size < min_voxels or np.ptp(t) == 0 or t.max() < 1:
            continue
        decade = int(np.floor(np.log10(t.max())))
        per_bin.setdefault(decade, []).append(_pcc(np.log1p(f), np.log1p(t)))
    if not per_bin:
        raise InputDataError(
            f"no {crop}^3 crop across a gap stripe has >= {min_voxels} gap voxels with "
            f"varying true values (volume shape {truth.shape}, {int(gap.sum())} gap voxels)"
        )
    return float(np.mean([np.mean(v) for v in per_bin.values()]))


def relative_photon_error(filled: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Relative error of the number of photons put into the gap.

    Parameters
    ----------
    filled, truth : (n_frames, ny, nx) ndarray
        Inpainted volume and gap-free measurement.
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = gap voxel.

    Returns
    -------
    float
        ``|sum(filled[gap]) - sum(truth[gap])| / sum(truth[gap])``.

    Raises
    ------
    InputDataError
        If shapes mismatch or the truth has no photons in the gap.

    """
    filled, truth, gap = _volumes(mask, filled=filled, truth=truth)
    total = truth[gap].sum()
    if total <= 0:
        raise InputDataError(f"truth has no photons in the gap (sum {total})")
    return float(abs(filled[gap].sum() - total) / total)


def _gap_photons(expected: np.ndarray, gap: np.ndarray) -> float:
    """Return the expected photons in the gap, raising if there are none."""
    total = float(expected[gap].sum())
    if total <= 0:
        raise InputDataError(f"the gap holds no expected photons (sum {total})")
    return total


def amplitude_error(filled: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> float:
    """Relative RMS error of the filled amplitudes over the gap voxels.

    Phase retrieval fits amplitudes, not log intensities: this is the error it sees,
    ``sqrt(sum((sqrt(filled) - sqrt(expected))^2) / sum(expected))`` over gap voxels.
    Scoring the gap-free measurement itself the same way gives the Poisson floor
    (about ``0.5 / sqrt(mean counts)`` per voxel).

    Parameters
    ----------
    filled : (n_frames, ny, nx) ndarray
        Inpainted volume (or the gap-free measurement, for the floor).
    expected : (n_frames, ny, nx) ndarray
        Noise-free intensity.
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = gap voxel.

    Returns
    -------
    float

    Raises
    ------
    InputDataError
        If shapes mismatch or the gap holds no expected photons.
    """
    filled, expected, gap = _volumes(mask, filled=filled, expected=expected)
    total = _gap_photons(expected, gap)
    diff = np.sqrt(np.clip(filled[gap], 0, None)) - np.sqrt(expected[gap])
    return float(np.sqrt(np.sum(diff**2) / total))


def gap_ratios(filled: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Compare the gap's brightest voxel and its photon total with the truth.

    Parameters
    ----------
    filled, expected : (n_frames, ny, nx) ndarray
        Inpainted volume and noise-free intensity.
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = gap voxel.

    Returns
    -------
    dict of str to float
        ``peak_ratio``: ``max(filled[gap]) / max(expected[gap])`` (1 = the gap's
        maximum recovered; well below 1 when a gap through the Bragg peak is
        under-filled, above 1 when it is over-filled); ``photon_ratio``:
        ``sum(filled[gap]) / sum(expected[gap])``.

    Raises
    ------
    InputDataError
        If shapes mismatch or the gap holds no expected photons.
    """
    filled, expected, gap = _volumes(mask, filled=filled, expected=expected)
    total = _gap_photons(expected, gap)
    return {
        "peak_ratio": float(filled[gap].max() / expected[gap].max()),
        "photon_ratio": float(filled[gap].sum() / total),
    }


def evaluate(
    filled: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray,
    expected: np.ndarray,
    *,
    min_photons: float = 1.0,
    smooth_sigma: float = 1.0,
) -> dict[str, float]:
    """All metrics of one filling, for tables and benchmarks.

    Parameters
    ----------
    filled, truth, expected : (n_frames, ny, nx) ndarray
        Inpainted volume, gap-free measurement and noise-free intensity.
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = gap voxel.
    min_photons, smooth_sigma : float, optional
        Voxel selection of :func:`strict_pcc` and :func:`oracle_pcc`.

    Returns
    -------
    dict of str to float
        ``strict_pcc``, ``oracle_pcc``, ``pcc_ratio`` (strict / oracle; NaN if the
        oracle is not positive), ``paper_pcc`` (against the noisy measurement),
        ``paper_pcc_oracle`` (the noise-free intensity scored the same way: the ceiling
        Poisson noise leaves), ``paper_pcc_noise_free`` (the filling against the
        noise-free intensity, as on the noise-free simulations of Masto et al.),
        ``photon_error`` (:func:`relative_photon_error`), ``amplitude_error`` and
        ``amplitude_floor`` (:func:`amplitude_error` of the filling and of the gap-free
        measurement), ``peak_ratio`` and ``photon_ratio`` (:func:`gap_ratios`).

    Raises
    ------
    InputDataError
        As the individual metrics.

    """
    kwargs = {"min_photons": min_photons, "smooth_sigma": smooth_sigma}
    strict = strict_pcc(filled, truth, mask, expected, **kwargs)
    oracle = oracle_pcc(truth, mask, expected, **kwargs)
    return {
        "strict_pcc": strict,
        "oracle_pcc": oracle,
        "pcc_ratio": strict / oracle if oracle > 0 else float("nan"),
        "paper_pcc": paper_pcc(filled, truth, mask),
        "paper_pcc_oracle": paper_pcc(expected, truth, mask),
        "paper_pcc_noise_free": paper_pcc(filled, expected, mask),
        "photon_error": relative_photon_error(filled, truth, mask),
        "amplitude_error": amplitude_error(filled, expected, mask),
        "amplitude_floor": amplitude_error(truth, expected, mask),
        **gap_ratios(filled, expected, mask),
    }
