"""The HDF5 file holding a corrected scan's frames, registered in Tiled by its documents."""

from __future__ import annotations

import errno
import json
import resource
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._errors import StorageFullError
from ._fallback import jsonable

FRAMES_DATASET = "/entry/data/data"
"""Corrected frames ``(n_frames, ny, nx)`` float32, one row per scan position (NaN unset)."""

MASK_DATASET = "/entry/instrument/detector/gap_mask"
"""Dead pixels ``(1, ny, nx)`` uint8 (1 = in a gap), the ``gap_mask`` stream's one frame."""

METADATA_DATASET = "/entry/bcdi_online_metadata"
"""UTF-8 JSON of the run's final metadata (status, provenance, timings), as uint8 bytes;
empty until the run ends. (A dataset, not an attribute: attributes cannot be added to a
file open in SWMR mode.)"""


ROOM_MARGIN = 64 * 1024
"""Bytes kept free beyond each write for HDF5's own metadata (see :func:`check_room`)."""


def check_room(path: Path, nbytes: int) -> None:
    """Raise :class:`StorageFullError` unless ``nbytes`` more (and a margin) fit in ``path``.

    Checked before HDF5 writes: once a write fails for lack of space (a full disk, the
    process's file size limit), libhdf5 keeps the file half-flushed and crashes the
    process when it shuts down (segmentation fault, seen with h5py 3 / HDF5 1.14), so
    the writer refuses the write before HDF5 makes it.

    Raises
    ------
    StorageFullError
        An ``OSError`` with ``EFBIG`` beyond ``RLIMIT_FSIZE``, ``ENOSPC`` beyond the free
        space.
    """
    need = nbytes + ROOM_MARGIN
    size = path.stat().st_size if path.exists() else 0
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size + need > limit:
        raise StorageFullError(
            errno.EFBIG, f"File too large: {size + need} bytes > the limit {limit}"
        )
    free = shutil.disk_usage(path.parent).free
    if need > free:
        raise StorageFullError(
            errno.ENOSPC, f"No space left on device: {need} bytes > {free} free"
        )


class ResultFile:
    """Corrected frames written row by row to an HDF5 file that Tiled can read while it grows.

    The file is opened in SWMR mode once its datasets exist, so Tiled (which reads
    detector files the same way, ``swmr=True``) serves the rows the documents declare
    while the scan runs. Rows may be written again (provisional frames taken back) until
    they are declared; the file is the result's storage, whether or not Tiled is up.

    Parameters
    ----------
    path : Path
        File to create (its directory is created); must not exist.
    gap_mask : (ny, nx) bool ndarray
        Dead pixels.
    """

    def __init__(self, path: Path, gap_mask: np.ndarray) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        shape = gap_mask.shape
        check_room(self.path, gap_mask.size)
        self._file = h5py.File(self.path, "w-", libver="latest")
        try:
            self._frames = self._file.create_dataset(
                FRAMES_DATASET,
                shape=(0, *shape),
                maxshape=(None, *shape),
                chunks=(1, *shape),
                dtype=np.float32,
                fillvalue=np.nan,
            )
            self._file.create_dataset(MASK_DATASET, data=gap_mask[None].astype(np.uint8))
            self._metadata = self._file.create_dataset(
                METADATA_DATASET, shape=(0,), maxshape=(None,), chunks=(4096,), dtype=np.uint8
            )
            self._file.swmr_mode = True
        except BaseException:
            self._file.close()
            self.path.unlink(missing_ok=True)
            raise

    @property
    def n_rows(self) -> int:
        """Rows of the frames dataset."""
        return int(self._frames.shape[0])

    def write(self, frames: np.ndarray, offset: int) -> None:
        """Write ``frames`` ``(k, ny, nx)`` at rows ``[offset, offset + k)`` and flush."""
        end = offset + len(frames)
        check_room(self.path, max(0, end - self.n_rows) * frames[0].nbytes)
        if end > self.n_rows:
            self._frames.resize(end, axis=0)
        self._frames[offset:end] = frames
        self._frames.flush()

    def finish(self, n_frames: int, metadata: dict[str, Any]) -> None:
        """Keep the first ``n_frames`` rows, write the final metadata, close the file."""
        if self._file.id.valid:
            self._frames.resize(n_frames, axis=0)
            text = np.frombuffer(json.dumps(jsonable(metadata)).encode(), np.uint8)
            check_room(self.path, len(text))
            self._metadata.resize(len(text), axis=0)
            self._metadata[:] = text
            self._file.close()

    def close(self) -> None:
        """Close the file as it is (a run that will not finish here)."""
        if self._file.id.valid:
            self._file.close()


def read_result_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read a corrected scan's result file.

    Parameters
    ----------
    path : str or Path
        A file written by :class:`CorrectedRunWriter`.

    Returns
    -------
    corrected : (n_frames, ny, nx) float32 ndarray
    gap_mask : (ny, nx) bool ndarray
    metadata : dict
        The final metadata (``status``, ``raw_uid``, ``result_uid``, ...); empty if the
        run never ended in the process that wrote it.
    """
    with h5py.File(path, "r", swmr=True) as f:
        text = f[METADATA_DATASET][()].tobytes()
        return (
            f[FRAMES_DATASET][()],
            f[MASK_DATASET][0].astype(bool),
            json.loads(text) if text else {},
        )
