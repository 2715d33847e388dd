"""Where a run's frames and gap mask come from: descriptor, start document, HDF5 files."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import h5py
import numpy as np

from bcdi_online import GapMaskError
from bcdi_online.detectors import gap_mask

logger = logging.getLogger(__name__)

PIXEL_MASK_PATH = "/entry/instrument/detector/pixel_mask"
"""NeXus ``NXdetector/pixel_mask`` of a detector file (non-zero = bad pixel)."""


@dataclass(frozen=True)
class FileSlice:
    """Frames ``[start, stop)`` of an HDF5 dataset, announced by a ``stream_datum``."""

    path: str
    dataset: str
    start: int
    stop: int


def frame_shape(data_key: dict[str, Any]) -> tuple[int, int] | None:
    """``(ny, nx)`` of a 2D data key (shape ``[ny, nx]`` or ``[1, ny, nx]``), else None."""
    shape = list(data_key.get("shape") or [])
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 2 and all(int(n) > 1 for n in shape):
        return int(shape[0]), int(shape[1])
    return None


def frames_per_event(data_key: Mapping[str, Any]) -> int:
    """Frames in one event of a detector data key: ``k`` for shape ``[k, ny, nx]``, else 1."""
    shape = list(data_key.get("shape") or [])
    return int(shape[0]) if len(shape) == 3 and int(shape[0]) > 0 else 1


def pick_field(descriptor: Mapping[str, Any], field: str | None) -> tuple[str | None, str]:
    """Choose the detector field of a descriptor.

    Parameters
    ----------
    descriptor : dict
        Event descriptor.
    field : str, optional
        Requested data key; default the single 2D data key.

    Returns
    -------
    field : str or None
        The data key, or None when the run has to be ignored.
    reason : str
        Why it was chosen, or why none was.
    """
    data_keys = descriptor.get("data_keys", {})
    if field is not None:
        if field not in data_keys:
            return None, f"field {field!r} not in stream {descriptor.get('name')!r}"
        if frame_shape(data_keys[field]) is None:
            return None, f"field {field!r} has shape {data_keys[field].get('shape')}, not 2D"
        return field, "requested"
    images = sorted(k for k, v in data_keys.items() if frame_shape(v) is not None)
    if len(images) == 1:
        return images[0], "the only 2D data key"
    if not images:
        return None, "no 2D detector data key"
    return None, f"several 2D data keys {images}: pass field="


def _config_value(config: dict[str, Any], suffix: str) -> Any:
    """Value of the configuration key ending with ``_<suffix>`` or ``-<suffix>``."""
    for key, value in config.items():
        if key.endswith((f"_{suffix}", f"-{suffix}")):
            return value
    return None


def detector_info(
    start: Mapping[str, Any], descriptor: Mapping[str, Any], field: str
) -> dict[str, Any]:
    """Detector registry name, ROI and MAXIPIX gap, from the start document or the device.

    Start-document keys ``bcdi_detector``, ``bcdi_roi``, ``bcdi_maxipix_gap`` win;
    otherwise the configuration of the device owning ``field`` (signals named
    ``detector_name``, ``roi``, ``maxipix_gap``, as :mod:`bcdi_online.sim_devices` has).

    Returns
    -------
    dict
        ``detector`` (str or None), ``roi`` (list of 4 int or None), ``maxipix_gap``
        (int) and ``source`` (where they came from, or None).
    """
    if start.get("bcdi_detector"):
        roi = start.get("bcdi_roi")
        return {
            "detector": str(start["bcdi_detector"]),
            "roi": None if roi is None else [int(v) for v in roi],
            "maxipix_gap": int(start.get("bcdi_maxipix_gap", 6)),
            "source": "start document",
        }
    device = descriptor["data_keys"][field].get("object_name", field)
    config = descriptor.get("configuration", {}).get(device, {}).get("data", {})
    name = _config_value(config, "detector_name")
    if name:
        roi = _config_value(config, "roi")
        gap = _config_value(config, "maxipix_gap")
        return {
            "detector": str(name),
            "roi": None if roi is None else [int(v) for v in np.ravel(roi)],
            "maxipix_gap": 6 if gap is None else int(gap),
            "source": f"configuration of {device!r}",
        }
    return {"detector": None, "roi": None, "maxipix_gap": 6, "source": None}


def mask_from_info(info: dict[str, Any]) -> np.ndarray | None:
    """Gap mask of :func:`detector_info`'s result, or None when it names no detector."""
    if not info.get("detector"):
        return None
    return gap_mask(info["detector"], info["roi"], maxipix_gap=info["maxipix_gap"])


def check_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Return ``mask`` as bool after checking it against the frame ``shape``."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise GapMaskError(f"mask dtype must be bool (True = dead pixel), got {mask.dtype}")
    if mask.shape != tuple(shape):
        raise GapMaskError(f"mask shape {mask.shape} does not match frame shape {tuple(shape)}")
    return mask


def path_from_uri(uri: str) -> str:
    """Local path of a ``file://localhost/...`` URI."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise ValueError(f"cannot read frames from {uri!r}: not a file URI")
    return unquote(parsed.path)


class FramesUnreadableError(OSError):
    """Announced frames cannot be read from their file; :attr:`why` says why, in general."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


def _stored_until(f: h5py.File, ds: h5py.Dataset, start: int, stop: int) -> str | None:
    """Why frames ``[start, stop)`` of ``ds`` cannot be read yet, or None when they can.

    A reader in SWMR mode skips HDF5's end-of-file check: frames whose chunks were never
    written, or lie past the end of a truncated file, read as zeros. Their storage is
    checked instead: every chunk allocated and inside the file.
    """
    if ds.is_virtual or ds.external:
        return None  # stored elsewhere: HDF5 checks (and the data's own file) apply
    try:
        size = os.fstat(f.id.get_vfd_handle()).st_size  # the open file, even if unlinked
    except (OSError, TypeError, ValueError):
        size = os.path.getsize(f.filename)
    if ds.chunks is None:
        offset = ds.id.get_offset()
        if offset is None:
            return "the dataset was never written"
        end = offset + ds.id.get_storage_size()
        return None if end <= size else f"the data ends at byte {end}, the file at {size}"
    rows, *tiles = ds.chunks
    grid = list(
        itertools.product(*(range(0, n, k) for n, k in zip(ds.shape[1:], tiles, strict=True)))
    )
    for first in range(start - start % rows, stop, rows):
        for corner in grid:
            info = ds.id.get_chunk_info_by_coord((first, *corner))
            if info.byte_offset is None:
                return f"frame {first} was never written (chunk not allocated)"
            if info.byte_offset + info.size > size:
                return (
                    f"frame {first} lies past the end of the file (byte "
                    f"{info.byte_offset + info.size} of {size}): truncated"
                )
    return None


class FrameFiles:
    """Open detector HDF5 files (SWMR readers) and read frame slices as they are written.

    Parameters
    ----------
    timeout : float
        Seconds to wait for announced frames to appear in a file while its run is open.
    """

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._files: dict[str, h5py.File] = {}

    def _open(self, path: str) -> h5py.File:
        if path not in self._files:
            try:
                self._files[path] = h5py.File(path, "r", swmr=True)
            except FileNotFoundError:
                raise
            except OSError:  # not written in SWMR mode: a plain read of a closed file
                self._files[path] = h5py.File(path, "r")
        return self._files[path]

    def read(self, piece: FileSlice, *, wait: bool = True) -> np.ndarray:
        """Frames of ``piece``, waiting up to :attr:`timeout` for them to be written.

        Parameters
        ----------
        piece : FileSlice
            The frames.
        wait : bool
            Wait for frames not written yet (False once the run has ended: the file
            is complete, what is missing will never come).

        Returns
        -------
        (stop - start, ny, nx) ndarray

        Raises
        ------
        OSError
            If the file or the frames cannot be read: missing file, too few frames,
            truncated file, chunks never written (they would read as zeros).
        KeyError
            If the dataset does not exist.
        """
        f = self._open(piece.path)
        ds = f[piece.dataset]
        deadline = time.monotonic() + (self.timeout if wait else 0.0)
        while True:
            ds.refresh()
            problem = (
                f"it has {ds.shape[0]} frames"
                if ds.shape[0] < piece.stop
                else _stored_until(f, ds, piece.start, piece.stop)
            )
            if problem is None or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if problem is not None:
            why = "truncated" if "truncated" in problem else problem.split(":")[0]
            raise FramesUnreadableError(
                f"frames [{piece.start}, {piece.stop}) of {piece.path}:{piece.dataset} "
                f"cannot be read: {problem}",
                f"{piece.path}: {why if ds.shape[0] >= piece.stop else 'frames never written'}",
            )
        frames = ds[piece.start : piece.stop]
        return frames.reshape(-1, *frames.shape[-2:])

    def pixel_mask(self, path: str) -> np.ndarray | None:
        """``(ny, nx)`` bool NeXus pixel mask of a file (True = bad pixel), or None."""
        f = self._open(path)
        if PIXEL_MASK_PATH not in f:
            return None
        return np.asarray(f[PIXEL_MASK_PATH][()]) != 0

    def close(self) -> None:
        """Close every open file."""
        for f in self._files.values():
            try:
                f.close()
            except Exception:  # already closed or invalid: nothing to release
                logger.debug("closing %s failed", f, exc_info=True)
        self._files.clear()
