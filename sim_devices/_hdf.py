"""An HDF5 frame file written the way area detectors write theirs (SWMR, one chunk a frame)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from bcdi_online.detectors import FRAMES_PATH, PIXEL_MASK_PATH

DATA_PATH = FRAMES_PATH
"""Dataset of the frames, ``(n, ny, nx)``, as areaDetector's and Dectris' NeXus files."""

MASK_PATH = PIXEL_MASK_PATH
"""Dead-pixel map ``(ny, nx)`` uint32, non-zero (1) = no signal, as a NeXus ``NXdetector``."""


class FrameFile:
    """An open HDF5 file that frames are appended to, readable while it grows.

    The frame dataset has shape ``(0, ny, nx)`` when opened, unlimited first axis and
    one chunk per frame. The file is switched to SWMR mode once its datasets exist, so
    readers can follow it with ``h5py.File(path, "r", swmr=True)`` and
    ``dataset.refresh()``. Each frame is flushed once written.

    Parameters
    ----------
    path : path-like
        File to create (overwritten if it exists).
    mask : (ny, nx) bool ndarray
        Dead pixels, stored in :data:`MASK_PATH`.
    dtype : numpy dtype
        Frame dtype.
    attrs : dict, optional
        Attributes of the ``/entry/instrument/detector`` group (detector name, ROI).
    """

    def __init__(
        self,
        path: str | Path,
        mask: np.ndarray,
        dtype: np.dtype | type = np.uint32,
        attrs: dict[str, object] | None = None,
    ) -> None:
        ny, nx = mask.shape
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self._file = h5py.File(self.path, "w", libver="latest")
        try:
            self._data = self._file.create_dataset(
                DATA_PATH,
                shape=(0, ny, nx),
                maxshape=(None, ny, nx),
                chunks=(1, ny, nx),
                dtype=self.dtype,
            )
            self._file.create_dataset(MASK_PATH, data=mask.astype(np.uint32))
            for key, value in (attrs or {}).items():
                self._file[MASK_PATH].parent.attrs[key] = value
            self._file.swmr_mode = True  # only once every dataset exists
        except BaseException:
            self._file.close()
            raise
        self.frames_written = 0

    def append(self, frame: np.ndarray) -> int:
        """Append one frame and flush it.

        Parameters
        ----------
        frame : (ny, nx) ndarray
            Counts, cast to the file's dtype.

        Returns
        -------
        int
            Number of frames in the file.
        """
        if frame.shape != self._data.shape[1:]:
            raise ValueError(
                f"frame shape {frame.shape} does not match file frames {self._data.shape[1:]}"
            )
        self._data.resize(self.frames_written + 1, axis=0)
        self._data[self.frames_written] = frame.astype(self.dtype, copy=False)
        self._data.flush()
        self.frames_written += 1
        return self.frames_written

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file.id.valid:
            self._file.close()
