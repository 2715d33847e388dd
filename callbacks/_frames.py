"""Detector frames announced by ``stream_datum`` documents, read the way Tiled reads them.

:class:`FileFrames` reads them from the detector's files through bluesky-tiled-plugins'
consolidators and Tiled's adapters (HDF5, multi-file HDF5 templates, ``multiplier``,
``chunk_shape``, TIFF sequences); :class:`TiledFrames` reads them from the raw run's array
in Tiled, for a processor without the detector's file system.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import h5py
import numpy as np
from bluesky_tiled_plugins.writing.consolidators import (
    ConsolidatorBase,
    MultipartRelatedConsolidator,
    consolidator_factory,
)
from tiled.adapters.utils import ShapeMismatchError
from tiled.ndslice import NDSlice

from bcdi_online.detectors import PIXEL_MASK_PATH

logger = logging.getLogger(__name__)


HDF5 = "application/x-hdf5"

PREFETCH_ROWS = 32
"""Rows :class:`TiledFrames` fetches at most in one request (the asked ones and the
ones after them already in Tiled)."""


@dataclass(frozen=True)
class FrameSlice:
    """Frames announced by one ``stream_datum``.

    Attributes
    ----------
    resource : str
        Uid of the datum's ``stream_resource``.
    start, stop : int
        The datum's ``indices`` in that resource.
    row : int
        Row of ``start`` in the stream's array as TiledWriter stores it (the event
        index, ``seq_nums.start - 1``).
    """

    resource: str
    start: int
    stop: int
    row: int


class FramesUnreadableError(OSError):
    """Announced frames cannot be read; :attr:`why` says why, in general (for grouping)."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


class FrameReader(Protocol):
    """What a run needs of a frame source."""

    def add_resource(
        self, stream_resource: Mapping[str, Any], descriptor: Mapping[str, Any]
    ) -> None:
        """Take a ``stream_resource`` (with its stream's descriptor)."""

    def read(self, piece: FrameSlice, *, wait: bool = True) -> np.ndarray:
        """``(k, ny, nx)`` frames of ``piece``."""

    def pixel_mask(self, piece: FrameSlice) -> np.ndarray | None:
        """``(ny, nx)`` bool NeXus pixel mask of the detector, or None."""

    def close(self) -> None:
        """Release what is open."""


def path_from_uri(uri: str) -> str:
    """Local path of a ``file://localhost/...`` URI."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise ValueError(f"cannot read frames from {uri!r}: not a file URI")
    return unquote(parsed.path)


def _stored_until(f: h5py.File, ds: h5py.Dataset, start: int, stop: int) -> str | None:
    """Why frames ``[start, stop)`` of ``ds`` cannot be read yet, or None when they can.

    A reader in SWMR mode skips HDF5's end-of-file check: frames whose chunks were never
    written, or lie past the end of a truncated file, read as zeros. Their storage is
    checked instead: every chunk allocated and inside the file.
    """
    if ds.shape[0] < stop:
        return f"it has {ds.shape[0]} frames"
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


class _Files:
    """Detector HDF5 files kept open (SWMR readers) for the storage checks.

    Opened once, at the first check: a SWMR reader opening a file truncated since then
    would retry its metadata reads for minutes instead of failing; the open handle keeps
    the metadata read while the file was whole.
    """

    def __init__(self) -> None:
        self._files: dict[str, h5py.File] = {}

    def dataset(self, path: str, name: str) -> tuple[h5py.File, h5py.Dataset]:
        """Return the open file and its dataset ``name``, refreshed (SWMR)."""
        if path not in self._files:
            try:
                self._files[path] = h5py.File(path, "r", swmr=True)
            except FileNotFoundError:
                raise
            except OSError:  # not written in SWMR mode: a plain read of a closed file
                self._files[path] = h5py.File(path, "r")
        f = self._files[path]
        ds = f[name]
        ds.refresh()
        return f, ds

    def close(self) -> None:
        """Close every open file."""
        for f in self._files.values():
            try:
                f.close()
            except Exception:  # already closed or invalid: nothing to release
                logger.debug("closing %s failed", f, exc_info=True)
        self._files.clear()


class _Resource:
    """One ``stream_resource``: its consolidator, grown by position, never by arrival.

    The consolidator is fed datums covering rows ``[0, n)`` in order (whatever order,
    repetition or loss the real datums had), so its assets and shape follow the
    positions, as after a replay merges a run's datums into one.
    """

    def __init__(
        self, stream_resource: Mapping[str, Any], descriptor: Mapping[str, Any], files: _Files
    ) -> None:
        self.files = files
        self.uri = stream_resource["uri"]
        self.dataset = stream_resource.get("parameters", {}).get("dataset")
        self.consolidator: ConsolidatorBase = consolidator_factory(
            dict(stream_resource, parameters=dict(stream_resource.get("parameters", {}))),
            dict(descriptor),
        )
        shape = self.consolidator.datum_shape
        self.frames_per_row = math.prod(shape[:-2]) if len(shape) > 2 else 1
        self.multipart = isinstance(self.consolidator, MultipartRelatedConsolidator)

    @property
    def rows(self) -> int:
        return int(self.consolidator.shape[0])

    def grow(self, rows: int) -> None:
        """Let the consolidator cover rows ``[0, rows)``."""
        if rows > self.rows:
            first = self.rows
            self.consolidator.consume_stream_datum(
                {  # type: ignore[typeddict-item]
                    "indices": {"start": first, "stop": rows},
                    "seq_nums": {"start": first + 1, "stop": rows + 1},
                }
            )

    def paths(self, start: int, stop: int) -> list[str]:
        """Files holding rows ``[start, stop)`` (grown to ``stop`` first)."""
        if not self.multipart:
            return [path_from_uri(self.uri)]
        self.grow(stop)
        per_row = self.consolidator.files_per_datum  # type: ignore[attr-defined]
        assets = self.consolidator.assets[start * per_row : stop * per_row]
        return [path_from_uri(asset.data_uri) for asset in assets]

    def unstored(self, start: int, stop: int) -> str | None:
        """Say why rows ``[start, stop)`` cannot be read yet (None: they can).

        The consolidator grows to what the storage holds.
        """
        paths = self.paths(start, stop)
        if self.consolidator.mimetype != HDF5:
            absent = [p for p in paths if not os.path.exists(p)]
            return f"{absent[0]} does not exist" if absent else None
        if self.multipart:
            for path in paths:
                f, ds = self.files.dataset(path, self.dataset)
                problem = _stored_until(f, ds, 0, ds.shape[0])
                if problem is not None:
                    return f"{path}: {problem}"
            return None
        f, ds = self.files.dataset(paths[0], self.dataset)
        k = self.frames_per_row
        self.grow(ds.shape[0] // k)  # the structure must match the file (Tiled reshapes)
        return _stored_until(f, ds, start * k, stop * k)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` through the consolidator's Tiled adapter."""
        adapter = self.consolidator.init_adapter()
        return np.asarray(adapter.read(NDSlice(slice(start, stop))))


class FileFrames:
    """Frames from the detector's files, through the consolidator of each stream resource.

    Parameters
    ----------
    timeout : float
        Seconds to wait for announced frames to be stored while the run is open.
    """

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._resources: dict[str, _Resource] = {}
        self._files = _Files()

    def add_resource(
        self, stream_resource: Mapping[str, Any], descriptor: Mapping[str, Any]
    ) -> None:
        """Take a ``stream_resource`` (with its stream's descriptor)."""
        resource = _Resource(stream_resource, descriptor, self._files)
        self._resources[stream_resource["uid"]] = resource

    def read(self, piece: FrameSlice, *, wait: bool = True) -> np.ndarray:
        """Frames of ``piece``, waiting up to :attr:`timeout` for them to be stored.

        Parameters
        ----------
        piece : FrameSlice
            The frames.
        wait : bool
            Wait for frames not stored yet (False once the run has ended).

        Returns
        -------
        (k, ny, nx) ndarray

        Raises
        ------
        FramesUnreadableError
            If the frames are not (all) stored: too few frames, truncated file, chunks
            never written (they would read as zeros), missing file of a sequence.
        OSError, KeyError
            If a file cannot be opened (missing, not HDF5) or lacks the dataset.
        """
        resource = self._resources[piece.resource]
        deadline = time.monotonic() + (self.timeout if wait else 0.0)
        while True:
            try:
                problem = resource.unstored(piece.start, piece.stop)
                if problem is None:
                    frames = resource.read(piece.start, piece.stop)
                    return frames.reshape(-1, *frames.shape[-2:])
            except ShapeMismatchError as err:  # the file grew or shrank since the check
                problem = f"{type(err).__name__}: {err}"
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        never = "it has" in problem or "does not exist" in problem
        why = "truncated" if "truncated" in problem else problem.split(":")[0]
        raise FramesUnreadableError(
            f"frames [{piece.start}, {piece.stop}) of {resource.uri}"
            f"{':' + resource.dataset if resource.dataset else ''} cannot be read: {problem}",
            f"{resource.uri}: {'frames never written' if never else why}",
        )

    def pixel_mask(self, piece: FrameSlice) -> np.ndarray | None:
        """``(ny, nx)`` bool NeXus pixel mask of the first file of ``piece`` (True = bad)."""
        resource = self._resources[piece.resource]
        if resource.consolidator.mimetype != HDF5:
            return None
        path = resource.paths(piece.start, piece.stop)[0]
        f, _ = self._files.dataset(path, str(resource.dataset))
        if PIXEL_MASK_PATH not in f:
            return None
        return np.asarray(f[PIXEL_MASK_PATH][()]) != 0

    def close(self) -> None:
        """Close the files kept for the checks and forget the resources."""
        self._files.close()
        self._resources.clear()


class TiledFrames:
    """Frames from the raw run's array in Tiled (written there by ``TiledWriter``).

    For a processor on a host without the detector's file system: the frames of a
    datum are rows ``[row, row + stop - start)`` of ``<catalog>/<uid>/<stream>/<field>``,
    read once the array has them.

    Parameters
    ----------
    catalog : tiled.client container
        Where TiledWriter saves the raw runs.
    uid : str
        The raw run.
    stream, field : str
        Stream and data key of the frames.
    timeout : float
        Seconds to wait for announced frames to reach Tiled. Always waited, even after
        the run ended: TiledWriter may register the last frames after the stop document.
    """

    def __init__(
        self, catalog: Any, uid: str, stream: str, field: str, timeout: float = 10.0
    ) -> None:
        self.catalog, self.uid, self.stream, self.field = catalog, uid, stream, field
        self.timeout = timeout
        self._node: Any = None  # the array client, once it exists
        self._rows = 0  # rows it had when last looked at
        self._cached: np.ndarray = np.empty((0,))  # rows fetched ahead, from _cached_from
        self._cached_from = 0

    def add_resource(
        self, stream_resource: Mapping[str, Any], descriptor: Mapping[str, Any]
    ) -> None:
        """Nothing to do: Tiled knows the resources."""

    def read(self, piece: FrameSlice, *, wait: bool = True) -> np.ndarray:
        """Rows of ``piece`` from Tiled, waiting up to :attr:`timeout` for them.

        Returns
        -------
        (k, ny, nx) ndarray

        Raises
        ------
        FramesUnreadableError
            If the rows are not in Tiled in time, or Tiled cannot serve them.
        """
        where = f"{self.uid}/{self.stream}/{self.field}"
        stop = piece.row + piece.stop - piece.start
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if self._rows < stop:  # look again (the structure grows as TiledWriter adds)
                    if self._node is None:
                        self._node = self.catalog[self.uid][self.stream][self.field]
                    else:
                        self._node.refresh()
                    self._rows = int(self._node.shape[0])
                if self._rows >= stop:
                    return self._fetch(piece.row, stop)
                problem = f"the array has {self._rows} rows"
            except KeyError:
                problem = "not in Tiled"
            except Exception as err:  # noqa: BLE001 - Tiled answers errors in many types
                problem = f"{type(err).__name__}: {err}"
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise FramesUnreadableError(
            f"frames [{piece.row}, {stop}) of {where} cannot be read from Tiled: {problem}",
            f"Tiled {where}: {'frames never written' if 'rows' in problem else problem}",
        )

    def _fetch(self, start: int, stop: int) -> np.ndarray:
        """Return rows ``[start, stop)`` as ``(k, ny, nx)`` frames.

        One request also fetches the rows already in Tiled after them (up to
        :data:`PREFETCH_ROWS` in all), for the next datums.
        """
        first = self._cached_from
        if not (first <= start and stop <= first + len(self._cached)):
            end = max(stop, min(self._rows, start + PREFETCH_ROWS))
            self._cached, self._cached_from = np.asarray(self._node[start:end]), start
            first = start
        frames = self._cached[start - first : stop - first]
        return frames.reshape(-1, *frames.shape[-2:])

    def pixel_mask(self, piece: FrameSlice) -> np.ndarray | None:
        """None: the detector's NeXus file is not at hand (give the mask otherwise)."""
        return None

    def close(self) -> None:
        """Nothing is held open."""
