"""Classical gap fillings to compare the network against.

Every baseline takes ``(data, mask)`` and returns a float32 volume equal, bit for bit,
to ``data`` cast to float32 outside the gap and non-negative inside it.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import oaconvolve
from skimage.restoration import inpaint_biharmonic

from .._errors import InputDataError
from ._metrics import volume_mask


def _prepare(data: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cast data to float32, broadcast the mask, and check the measured voxels are finite."""
    data32 = np.asarray(data, dtype=np.float32)
    gap = volume_mask(mask, data32.shape)
    if not np.isfinite(data32[~gap]).all():
        raise InputDataError("data has NaN or inf values outside the gap")
    return data32, gap


def _composite(data32: np.ndarray, gap: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Measured voxels from ``data32``, gap voxels from ``filled`` clamped at zero."""
    out = data32.copy()
    out[gap] = np.maximum(filled[gap], 0.0)
    return out


def _line_estimate(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation along the last axis between the nearest valid neighbours.

    Returns the estimate and its weight ``1 / span``, where span is the distance between
    the two neighbours, or twice the distance to the only one (copied as is); the weight
    is 0 on valid pixels and on lines without any valid pixel.
    """
    n = values.shape[-1]
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=-1)
    nxt = np.minimum.accumulate(np.where(valid, idx, n)[..., ::-1], axis=-1)[..., ::-1]
    has_prev, has_next = prev >= 0, nxt < n
    v_prev = np.take_along_axis(values, np.clip(prev, 0, n - 1), axis=-1)
    v_next = np.take_along_axis(values, np.clip(nxt, 0, n - 1), axis=-1)
    both = has_prev & has_next
    frac = np.where(both, (idx - prev) / np.maximum(nxt - prev, 1), 0.0)
    one_sided = np.where(has_prev, v_prev, v_next)
    estimate = np.where(both, v_prev + frac * (v_next - v_prev), one_sided)
    span = np.where(both, nxt - prev, 2 * np.where(has_prev, idx - prev, nxt - idx))
    weight = np.zeros(values.shape)
    scored = ~valid & (has_prev | has_next)
    weight[scored] = 1.0 / span[scored]
    return estimate, weight


def _linear_frame(values: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Fill the dead pixels of one (ny, nx) frame, pass after pass."""
    out = np.where(dead, 0.0, values)
    todo = dead.copy()
    while todo.any():
        est_x, w_x = _line_estimate(out, ~todo)
        est_y, w_y = (a.T for a in _line_estimate(out.T, ~todo.T))
        w_sum = w_x + w_y
        fill = todo & (w_sum > 0)
        if not fill.any():  # nothing measured in this frame
            break
        out[fill] = (w_x * est_x + w_y * est_y)[fill] / w_sum[fill]
        todo &= ~fill
    return out


def linear_interpolation(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill each stripe by linear interpolation across it, frame by frame.

    A dead pixel is interpolated along the detector rows and columns between the nearest
    measured pixels on either side, in the same frame. The two 1D estimates are weighted
    by the inverse of their span: across a stripe the span is its width, along a stripe
    spanning the frame there is no estimate, so a stripe is interpolated across, and at
    a square crossing the two estimates are averaged. Beside a border (measured pixels
    on one side only) the nearest measured value is copied, weighted as a span of twice
    its distance. Crossings of full-frame stripes have no measured pixel on their lines:
    they are filled in a second pass from the pixels filled in the first. Frames without
    any measured pixel are filled with zeros.

    Parameters
    ----------
    data : (n_frames, ny, nx) ndarray
        Measured counts; values in the gap are ignored.
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = dead pixel.

    Returns
    -------
    (n_frames, ny, nx) ndarray of float32

    Raises
    ------
    InputDataError
        If the shapes do not match or measured values are not finite.

    """
    data32, gap = _prepare(data, mask)
    filled = np.empty(data32.shape)
    for k in range(data32.shape[0]):
        filled[k] = _linear_frame(data32[k].astype(np.float64), gap[k])
    return _composite(data32, gap, filled)


def _biharmonic_frames(log_frames: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Biharmonic filling of (k, ny, nx) frames sharing one (ny, nx) dead-pixel mask."""
    if dead.all():
        return np.zeros_like(log_frames)
    filled = inpaint_biharmonic(np.moveaxis(log_frames, 0, -1), dead, channel_axis=-1)
    return np.moveaxis(filled, -1, 0)


def biharmonic(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the gap with :func:`skimage.restoration.inpaint_biharmonic`, frame by frame.

    The filling is 2D, in each detector frame: a 3D biharmonic system over a whole
    rocking scan is far too slow to solve. Frames that share a mask are passed together
    as channels of one call, so the sparse system is factorised once for all of them.
    It is solved in ``log1p`` space, where a Bragg peak's decades vary smoothly and the
    biharmonic surface does not overshoot into negative counts; the result is mapped
    back with ``expm1`` and clamped at zero.

    Parameters
    ----------
    data : (n_frames, ny, nx) ndarray
        Measured counts; values in the gap are ignored.
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = dead pixel.

    Returns
    -------
    (n_frames, ny, nx) ndarray of float32

    Raises
    ------
    InputDataError
        If the shapes do not match or measured values are not finite.

    """
    data32, gap = _prepare(data, mask)
    log = np.log1p(np.maximum(np.where(gap, 0.0, data32.astype(np.float64)), 0.0))
    frame_masks, inverse = np.unique(gap.reshape(gap.shape[0], -1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for group, flat_mask in enumerate(frame_masks):
        if flat_mask.any():
            frames = np.flatnonzero(inverse == group)
            log[frames] = _biharmonic_frames(log[frames], flat_mask.reshape(gap.shape[1:]))
    return _composite(data32, gap, np.expm1(log))


def _idw_kernel(radius: int, power: float) -> np.ndarray:
    """(2r+1,)*3 cube of weights ``1 / d**power``, zero at the centre."""
    ax = np.arange(-radius, radius + 1, dtype=np.float64)
    dist = np.sqrt(ax[:, None, None] ** 2 + ax[None, :, None] ** 2 + ax[None, None, :] ** 2)
    kernel = np.zeros_like(dist)
    kernel[dist > 0] = dist[dist > 0] ** -power
    return kernel


def inverse_distance_weighting(
    data: np.ndarray, mask: np.ndarray, *, power: float = 2.0, radius: int = 4
) -> np.ndarray:
    """Fill each gap voxel with the inverse-distance-weighted mean of its 3D neighbours.

    The scheme of PyNX's CDI ``mask_interp=k,n`` option (its ``mask_interp_dist``
    kernel): a masked voxel becomes ``sum(w * I) / sum(w)`` over the measured voxels
    from ``i - k`` to ``i + k`` along every axis (a cube), with ``w = 1 / d**n``.
    Differences: the volume is zero-padded rather than wrapped periodically, and voxels
    with no measured voxel in their cube are not left masked but filled in further
    passes from the voxels filled before. Numerator and denominator are two FFT
    (overlap-add) convolutions of the whole volume.

    Parameters
    ----------
    data : (n_frames, ny, nx) ndarray
        Measured counts; values in the gap are ignored.
    mask : (ny, nx) or (n_frames, ny, nx) ndarray of bool
        True = dead pixel.
    power : float, optional
        Exponent ``n`` of the distance weights.
    radius : int, optional
        Half-width ``k`` of the neighbourhood cube, in voxels (>= 1).

    Returns
    -------
    (n_frames, ny, nx) ndarray of float32
        Zeros in the gap if no voxel is measured.

    Raises
    ------
    InputDataError
        If the shapes do not match, measured values are not finite, or ``radius < 1``.

    """
    if radius < 1:
        raise InputDataError(f"radius must be >= 1 voxel, got {radius}")
    data32, gap = _prepare(data, mask)
    kernel = _idw_kernel(radius, power)
    # FFT round-off makes an empty neighbourhood's weight sum tiny, not zero.
    min_weight = 0.5 * kernel[kernel > 0].min()
    known = ~gap
    values = np.where(known, data32.astype(np.float64), 0.0)
    todo = gap.copy()
    while todo.any() and known.any():
        num = oaconvolve(values, kernel, mode="same")
        den = oaconvolve(known.astype(np.float64), kernel, mode="same")
        fill = todo & (den > min_weight)
        values[fill] = num[fill] / den[fill]
        known = known | fill
        todo &= ~fill
    return _composite(data32, gap, values)
