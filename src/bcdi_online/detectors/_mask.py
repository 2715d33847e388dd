"""Gap masks of a detector, cropped to a region of interest."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from .._errors import GapMaskError
from ._registry import get_detector
from ._spec import DetectorSpec

Roi = tuple[int, int, int, int]
"""Region of interest ``(y0, y1, x0, x1)``, half-open, in full-frame pixels."""

_MAXIPIX_GAPS = {6: True, 4: False}  # stripe width -> mark the enlarged edge pixels


def checked_mask(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Return a gap mask as a bool array after checking that it fits ``shape``.

    The one check of a mask against the data it applies to, for the whole package.

    Parameters
    ----------
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = dead pixel.
    shape : tuple of int
        A frame ``(ny, nx)``, which the mask must match, or a volume
        ``(n_frames, ny, nx)``, which it matches as a frame mask or a volume mask.

    Returns
    -------
    ndarray of bool
        ``mask`` itself (no copy).

    Raises
    ------
    GapMaskError
        If the mask is not bool or its shape does not fit.
    """
    mask = np.asarray(mask)
    shape = tuple(int(n) for n in shape)
    if mask.dtype != np.bool_:
        raise GapMaskError(f"mask dtype must be bool (True = dead pixel), got {mask.dtype}")
    if len(shape) == 2 and mask.shape != shape:
        raise GapMaskError(f"mask shape {mask.shape} does not match frame shape {shape}")
    if len(shape) != 2 and mask.shape not in (shape, shape[1:]):
        raise GapMaskError(
            f"mask shape {mask.shape} does not match data shape {shape} "
            f"(expected {shape[1:]} or {shape})"
        )
    return mask


def _spec(detector: str | DetectorSpec) -> DetectorSpec:
    return detector if isinstance(detector, DetectorSpec) else get_detector(detector)


def _check_roi(roi: Sequence[int], shape: tuple[int, int]) -> Roi:
    """Validate ``roi`` against a frame ``shape`` and return it as four ints."""
    try:
        y0, y1, x0, x1 = (operator.index(v) for v in roi)
    except (TypeError, ValueError) as err:  # not integers, or not four of them
        raise GapMaskError(f"roi must be four integers (y0, y1, x0, x1), got {roi!r}") from err
    ny, nx = shape
    if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
        raise GapMaskError(
            f"roi (y0, y1, x0, x1) = {(y0, y1, x0, x1)} is empty or outside the frame "
            f"of shape {shape}"
        )
    return y0, y1, x0, x1


def gap_mask(
    detector: str | DetectorSpec,
    roi: Sequence[int] | None = None,
    *,
    user_mask: np.ndarray | None = None,
    maxipix_gap: int = 6,
) -> np.ndarray:
    """Dead-pixel mask of a detector frame, or of a region of interest of it.

    Parameters
    ----------
    detector : str or DetectorSpec
        A registry name (see :func:`detector_names`) or a spec.
    roi : (y0, y1, x0, x1) sequence of int, optional
        Half-open region in full-frame pixels; the whole frame if None.
    user_mask : (ny, nx) or (y1 - y0, x1 - x0) ndarray of bool, optional
        Extra dead pixels (hot pixels, defects), OR-ed in. Either the full frame
        (cropped like the gap mask) or the region of interest.
    maxipix_gap : {6, 4}, optional
        Width of a chip-gap stripe on detectors with enlarged chip-edge pixels
        (MAXIPIX; the Merlin's 3-px gaps follow the same choice). 6: the 4 empty
        pixels and the enlarged edge pixel on either side are dead (columns
        255..260 of a MAXIPIX 2x2). 4: only the empty pixels (256..259), as pyFAI's
        ``Maxipix`` masks them.

    Returns
    -------
    (ny, nx) or (y1 - y0, x1 - x0) ndarray of bool
        True = no signal. A new array, safe to modify.

    Raises
    ------
    UnknownDetectorError
        If ``detector`` is not a known name.
    GapMaskError
        If ``roi`` is empty or leaves the frame, ``user_mask`` is not bool or fits
        neither the frame nor the region, or ``maxipix_gap`` is not 4 or 6.

    """
    spec = _spec(detector)
    if maxipix_gap not in _MAXIPIX_GAPS:
        raise GapMaskError(f"maxipix_gap must be 6 or 4, got {maxipix_gap!r}")
    window: tuple[slice, slice]
    if roi is None:
        window = np.s_[:, :]
    else:
        y0, y1, x0, x1 = _check_roi(roi, spec.shape)
        window = np.s_[y0:y1, x0:x1]
    # a crop is copied, the full frame (already contiguous) is not
    mask = np.ascontiguousarray(spec.full_mask(mark_edges=_MAXIPIX_GAPS[maxipix_gap])[window])
    if user_mask is None:
        return mask
    user_mask = np.asarray(user_mask)
    if user_mask.dtype != np.bool_:
        raise GapMaskError(
            f"user_mask must be bool (True = dead pixel), got dtype {user_mask.dtype}"
        )
    if user_mask.shape == spec.shape:
        user_mask = user_mask[window]
    elif user_mask.shape != mask.shape:
        expected = f"frame shape {spec.shape}"
        if roi is not None:
            expected += f" or roi shape {mask.shape}"
        raise GapMaskError(f"mask shape {user_mask.shape} does not match {expected}")
    mask |= user_mask
    return mask


def roi_around(
    detector: str | DetectorSpec,
    center: tuple[float, float],
    size: tuple[int, int],
) -> Roi:
    """Region of interest of a given size centred on a pixel, kept inside the frame.

    Near an edge the region is shifted, not shrunk, so it always has ``size``.

    Parameters
    ----------
    detector : str or DetectorSpec
        A registry name or a spec.
    center : (yc, xc) float
        Full-frame pixel to centre on (e.g. the Bragg peak); rounded to the nearest
        pixel, which lands at index ``(h // 2, w // 2)`` of the region when no edge
        is near.
    size : (h, w) int
        Region size in pixels, at most the frame size.

    Returns
    -------
    (y0, y1, x0, x1) tuple of int
        Half-open, with ``y1 - y0 == h`` and ``x1 - x0 == w``.

    Raises
    ------
    GapMaskError
        If ``size`` is not positive or exceeds the frame, or ``center`` is outside it.

    """
    spec = _spec(detector)
    bounds = []
    for c, n, length in zip(center, size, spec.shape, strict=True):
        if not 0 < n <= length:
            raise GapMaskError(
                f"roi size {tuple(size)} must be positive and fit in frame shape {spec.shape}"
            )
        if not 0 <= c < length:
            raise GapMaskError(f"center {tuple(center)} is outside frame shape {spec.shape}")
        start = min(max(int(round(c)) - n // 2, 0), length - n)
        bounds += [start, start + n]
    y0, y1, x0, x1 = bounds
    return y0, y1, x0, x1
