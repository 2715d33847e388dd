"""Input checks at the engine's boundary."""

from __future__ import annotations

import numpy as np

from .._errors import GapMaskError, InputDataError
from ..detectors import checked_mask


def check_frames(frames: np.ndarray, mask: np.ndarray, first_index: int = 0) -> None:
    """Reject frames with NaN, inf or negative counts outside the mask.

    Parameters
    ----------
    frames : (k, ny, nx) ndarray
        Measured counts.
    mask : (ny, nx) or (k, ny, nx) bool ndarray
        Dead pixels, ignored by the check.
    first_index : int
        Index of ``frames[0]`` in the scan, for the message.
    """
    if not np.issubdtype(frames.dtype, np.number) or np.iscomplexobj(frames):
        raise InputDataError(f"data dtype {frames.dtype} is not a real number type")
    if np.issubdtype(frames.dtype, np.unsignedinteger):
        return
    bad = ~(np.isfinite(frames) & (frames >= 0)) & ~mask
    if bad.any():
        t, y, x = np.argwhere(bad)[0]
        raise InputDataError(
            f"{int(bad.sum())} measured voxels are NaN, inf or negative, first at frame "
            f"{first_index + t}, pixel ({y}, {x}): value {frames[t, y, x]}"
        )


def check_volume(data: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate a volume and its mask; return the frame mask and the per-frame mask.

    Parameters
    ----------
    data : (n_frames, ny, nx) ndarray
        Counts, any real dtype.
    mask : (ny, nx) or (n_frames, ny, nx) bool ndarray
        Dead pixels.

    Returns
    -------
    frame_mask : (ny, nx) bool ndarray
        ``mask`` or, for a 3D mask, its union over frames (used to plan windows).
    volume_mask : (n_frames, ny, nx) bool ndarray or None
        The 3D mask when one was given.
    """
    data = np.asarray(data)
    mask = np.asarray(mask)
    if data.ndim != 3:
        raise InputDataError(f"data must be (n_frames, ny, nx), got shape {data.shape}")
    checked_mask(mask, data.shape)
    if mask.all():
        raise GapMaskError(f"mask of shape {mask.shape} covers every pixel: nothing to fill from")
    check_frames(data, mask)
    if mask.ndim == 3:
        return np.asarray(mask.any(axis=0)), mask
    return mask, None
