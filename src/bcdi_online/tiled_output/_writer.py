"""Write a corrected scan to Tiled as it is produced; retry, and fall back to a local file."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._errors import ConfigurationError, InputDataError, ServiceError
from .._redact import redact
from ._fallback import default_fallback_dir, jsonable, write_fallback
from ._layout import create_run_container, write_frames, write_product
from ._settings import DEFAULT_GROUP, FINAL_STATUSES, RetryPolicy

logger = logging.getLogger(__name__)

_UPLOAD_LOCK = threading.Lock()
"""One upload at a time per process. Tiled's in-memory catalog (``tiled.catalog.in_memory``,
one shared SQLite connection) corrupts nodes under concurrent writes (seen with tiled
0.2.20; a file-backed ``SimpleTiledServer`` was fine); uploads are short, so serialising
the writers of back-to-back runs costs little."""


class CorrectedScanWriter:
    """Corrected frames of one raw run, uploaded to Tiled slab by slab from a thread.

    Layout: ``<client>/<group>/<raw_uid>`` (default ``<client>/bcdi_online/<raw_uid>``), a
    container with spec ``BcdiCorrectedScan`` holding ``corrected`` ``(n_frames, ny, nx)``
    float32 (grown with ``patch(extend=True)``), ``gap_mask`` ``(ny, nx)`` bool and the
    metadata: ``raw_uid``, ``processing_uid``, ``package_version``, ``status`` (one of
    :data:`STATUSES`), ``frames_in_tiled``, ``local_fallback`` and whatever the caller
    adds (scan id, detector, ROI, model, window plan, timings). If the key is taken by
    another processing of the same run, ``<raw_uid>-<processing_uid[:8]>`` is used.

    :meth:`append` and :meth:`update_metadata` never block on Tiled: a background thread
    writes everything pending in one slab. A failed write is retried with exponential
    back-off (:class:`RetryPolicy`) and nothing is dropped meanwhile. :meth:`close`
    returns once the final result is persisted: in Tiled (the final status is written
    with the last frames), or, if Tiled has not taken it ``fallback_after`` seconds
    after the close, in ``<fallback_dir>/bcdi_online_<raw_uid>.h5`` (see
    :func:`write_fallback`; the path is recorded in ``local_fallback``), or nowhere (both
    errors in :attr:`last_error` and :attr:`save_error`). With ``client=None`` results
    go straight to the file. :meth:`save_now` writes the file at once (shutdown).

    Parameters
    ----------
    client : tiled.client container or None
        Node under which ``group`` lives (e.g. ``tiled.client.from_uri(uri)``).
    raw_uid : str
        Start-document uid of the raw run.
    gap_mask : (ny, nx) bool ndarray or None
        Dead pixels; None when unknown (e.g. a failed run).
    metadata : dict, optional
        Initial metadata (JSON-able after numpy conversion).
    group : str
        Key of the container grouping corrected scans.
    fallback_dir : str or Path, optional
        Where fallback files go; default :func:`default_fallback_dir`.
    retry : RetryPolicy, optional
        Back-off settings.
    """

    def __init__(
        self,
        client: Any,
        raw_uid: str,
        gap_mask: np.ndarray | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        group: str = DEFAULT_GROUP,
        fallback_dir: str | Path | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.client, self.raw_uid, self.group = client, str(raw_uid), group
        self.gap_mask = None if gap_mask is None else np.asarray(gap_mask, bool)
        self.processing_uid = uuid.uuid4().hex
        self.retry = retry or RetryPolicy()
        self.fallback_dir = Path(fallback_dir) if fallback_dir else default_fallback_dir()
        self._metadata: dict[str, Any] = {
            "raw_uid": self.raw_uid,
            "processing_uid": self.processing_uid,
            "package_version": __version__,
            "status": "running",
            "frames_in_tiled": 0,
            "local_fallback": None,
            **jsonable(metadata or {}),
        }
        self._cond = threading.Condition()
        self._slabs: list[np.ndarray] = []
        self._next_slab = 0  # first slab not yet in Tiled
        self._n_appended = self._n_written = 0
        self._dirty, self._closing = True, False
        self._container: Any = None
        self._array: Any = None
        self._mask_written = False
        self.key: str | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.local_fallback: Path | None = None
        self.saved_to: str | None = None
        """Where the final result is: ``"tiled"``, ``"fallback"`` or None (not yet, or nowhere)."""
        self.save_error: str | None = None
        self._settled = threading.Event()  # the final result is persisted, or cannot be
        self._abandoned = False  # the file took the result: the upload thread stops
        self._fallback_lock = threading.Lock()
        self._fallback_path: Path | None = None
        self._fallback_upto: int | None = None  # frames kept by save_now(upto=...)
        self._thread = threading.Thread(
            target=self._loop, name=f"bcdi-tiled-{self.raw_uid[:8]}", daemon=True
        )
        self._thread.start()

    @property
    def status(self) -> str:
        """The ``status`` in the metadata (``running`` until :meth:`close` or :meth:`save_now`)."""
        with self._cond:
            return str(self._metadata["status"])

    @property
    def path(self) -> str | None:
        """Path of the container in Tiled, relative to ``client`` (None until created)."""
        return None if self.key is None else f"{self.group}/{self.key}"

    def append(self, frames: np.ndarray) -> None:
        """Queue the next final frames for upload (never blocks on Tiled).

        Parameters
        ----------
        frames : (k, ny, nx) ndarray
            Corrected frames following those appended before; cast to float32.
        """
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if frames.ndim != 3:
            raise InputDataError(f"frames must be (k, ny, nx), got shape {frames.shape}")
        with self._cond:
            if self._closing:
                raise ServiceError(f"writer of run {self.raw_uid} is closed")
            if self._slabs and frames.shape[1:] != self._slabs[0].shape[1:]:
                raise InputDataError(
                    f"frame shape {frames.shape[1:]} does not match {self._slabs[0].shape[1:]}"
                )
            if len(frames):
                self._slabs.append(frames)
                self._n_appended += len(frames)
                self._dirty = True
                self._cond.notify_all()

    def result(self) -> np.ndarray:
        """Return the frames appended so far, ``(n_frames, ny, nx)`` float32 (a copy)."""
        with self._cond:
            slabs = list(self._slabs)
        if not slabs:
            shape = self.gap_mask.shape if self.gap_mask is not None else (0, 0)
            return np.zeros((0, *shape), np.float32)
        return np.concatenate(slabs)

    def rewind(self, n_frames: int) -> None:
        """Forget the frames appended from ``n_frames`` on; the next appends replace them.

        For frames published before they were final (a live run's provisional tail): the
        frames already in Tiled are overwritten in place by the next upload.

        Parameters
        ----------
        n_frames : int
            Frames to keep, ``0 <= n_frames <=`` frames appended so far.
        """
        with _UPLOAD_LOCK, self._cond:  # not in the middle of an upload of these slabs
            if not 0 <= n_frames <= self._n_appended:
                raise InputDataError(
                    f"cannot rewind to frame {n_frames}: {self._n_appended} frames appended"
                )
            kept, total = [], 0
            for slab in self._slabs:
                if total >= n_frames:
                    break
                kept.append(slab[: n_frames - total])
                total += len(kept[-1])
            if self._n_written > n_frames:  # uploads are whole slabs: all kept ones are in
                self._next_slab, self._n_written = len(kept), n_frames
            self._slabs, self._n_appended = kept, n_frames

    def update_metadata(self, **metadata: Any) -> None:
        """Merge keys into the container's metadata (uploaded with the next write)."""
        with self._cond:
            self._metadata.update(jsonable(metadata))
            self._dirty = True
            self._cond.notify_all()

    def set_gap_mask(self, gap_mask: np.ndarray) -> None:
        """Set the dead-pixel mask when it was not known at construction."""
        with self._cond:
            self.gap_mask = np.asarray(gap_mask, bool)
            self._dirty = True
            self._cond.notify_all()

    def close(self, status: str, **metadata: Any) -> str | None:
        """Set the final status and return once the result is persisted (or cannot be).

        Waits for the upload thread to put everything in Tiled, at most
        ``retry.fallback_after`` seconds, then writes the local fallback file.

        Parameters
        ----------
        status : str
            Final status, one of :data:`FINAL_STATUSES`.
        **metadata
            Last metadata (timings, errors).

        Returns
        -------
        str or None
            ``"tiled"``, ``"fallback"``, or None when it could be saved nowhere
            (:attr:`last_error`, :attr:`save_error`).
        """
        if status not in FINAL_STATUSES:
            raise ConfigurationError(f"status must be one of {FINAL_STATUSES}, got {status!r}")
        with self._cond:
            self._metadata.update(jsonable(metadata), status=status)
            self._dirty, self._closing = True, True
            self._cond.notify_all()
        settled = self.client is not None and self._settled.wait(self.retry.fallback_after)
        if not settled or self.saved_to == "fallback":  # (again: with the final metadata)
            self._write_fallback()
        return self.saved_to

    def save_now(
        self, status: str | None = None, *, upto: int | None = None, **metadata: Any
    ) -> str | None:
        """Write the local fallback file at once, unless Tiled already holds the final result.

        For a service shutting down: the frames appended so far (the first ``upto``
        only, e.g. without provisional ones, now and in any later write of the file),
        with ``status`` (if given, e.g.
        ``"interrupted"`` for a run still in progress) and ``metadata``. The upload
        thread then stops; a :meth:`close` waiting returns.

        Returns
        -------
        str or None
            Where the result is, as :meth:`close` returns it.
        """
        if self.saved_to == "tiled":
            return self.saved_to
        with self._cond:
            self._metadata.update(jsonable(metadata))
            if status is not None:
                self._metadata["status"] = status
        self._write_fallback(upto)
        return self.saved_to

    def publish(
        self,
        key: str,
        arrays: dict[str, tuple[np.ndarray, tuple[str, ...]]] | None,
        *,
        metadata: dict[str, Any],
        summary: dict[str, Any] | None = None,
        spec: str | None = None,
    ) -> str:
        """Write a result derived from the stored corrected scan beside it, in Tiled.

        Only after :meth:`close` put the final result in Tiled (a derived result never
        stands in for a missing corrected scan). One attempt (the Tiled client retries
        requests itself); the run's status is not touched. See :func:`write_product`.

        Parameters
        ----------
        key : str
            Node of the result in the run container.
        arrays : dict of str to (ndarray, dims), optional
            ``{key: ...}`` alone: an array node; otherwise a container of these arrays.
        metadata : dict
            Metadata of the result's node.
        summary : dict, optional
            Added to the run container's metadata under ``key`` (default ``metadata``).
        spec : str, optional
            Spec of a result container.

        Returns
        -------
        str
            Path of the result, relative to the client.

        Raises
        ------
        ServiceError
            If the corrected scan is not in Tiled, or the write fails.
        """
        if self.saved_to != "tiled" or self._container is None:
            raise ServiceError(
                f"run {self.raw_uid}: the corrected scan is not in Tiled "
                f"(saved to {self.saved_to}): {key!r} not published"
            )
        metadata = jsonable(metadata)
        with _UPLOAD_LOCK:
            with self._cond:
                self._metadata[key] = metadata if summary is None else jsonable(summary)
                run_metadata = dict(self._metadata)
            try:
                write_product(self._container, key, arrays, metadata, spec=spec)
                self._container.replace_metadata(metadata=run_metadata, drop_revision=True)
            except Exception as err:
                raise ServiceError(
                    redact(f"run {self.raw_uid}: {key!r} not written: {type(err).__name__}: {err}")
                ) from err
        return f"{self.path}/{key}"

    def state(self) -> dict[str, Any]:
        """Upload state: frames appended / in Tiled, failures, last error, fallback path."""
        with self._cond:
            return {
                "tiled_path": self.path,
                "frames_appended": self._n_appended,
                "frames_in_tiled": self._n_written,
                "write_failures": self.failures,
                "last_write_error": self.last_error,
                "local_fallback": self.local_fallback and str(self.local_fallback),
                "saved_to": self.saved_to,
                "save_error": self.save_error,
                "writer_done": self._settled.is_set(),
            }

    # -- writer thread --------------------------------------------------------------

    def _loop(self) -> None:
        if self.client is None:
            return  # everything goes to the fallback file at close
        try:
            streak, next_try = 0, 0.0
            while True:
                with self._cond:
                    while not self._abandoned and not (
                        self._dirty and time.monotonic() >= next_try
                    ):
                        wait = max(0.0, next_try - time.monotonic()) if self._dirty else None
                        self._cond.wait(wait)
                    if self._abandoned:
                        return
                if self._sync():
                    streak = 0
                    with self._cond:
                        done = self._closing and not self._dirty
                    if done:
                        self._settle("tiled")
                        return
                else:
                    streak += 1
                    next_try = time.monotonic() + self.retry.delay(streak)
        except Exception:  # never let the thread die silently (nothing above should raise)
            logger.exception("Tiled writer of run %s failed", self.raw_uid)

    def _settle(self, where: str | None) -> None:
        """Record where the final result went (the first place wins) and wake :meth:`close`."""
        with self._cond:
            if self.saved_to is None:
                self.saved_to = where
            self._settled.set()
            self._cond.notify_all()

    def _sync(self) -> bool:
        """Write the container, the mask, the pending slab and the metadata; True if all done."""
        with _UPLOAD_LOCK:
            return self._sync_locked()

    def _sync_locked(self) -> bool:
        with self._cond:  # one snapshot: a final status only goes with the frames before it
            slabs = self._slabs[self._next_slab :]
            offset, mask = self._n_written, self.gap_mask
            metadata = dict(self._metadata)
            self._dirty = False
        try:
            started = time.perf_counter()
            node = self._ensure_container()
            if mask is not None and not self._mask_written:
                if "gap_mask" not in node:
                    node.write_array(mask, key="gap_mask", dims=("y", "x"))
                self._mask_written = True
            if slabs:
                self._write_frames(node, np.concatenate(slabs), offset)
            written = offset + sum(len(s) for s in slabs)
            node.replace_metadata(
                metadata={**metadata, "frames_in_tiled": written}, drop_revision=True
            )
            with self._cond:
                self._next_slab += len(slabs)
                self._n_written = written
                self._metadata["frames_in_tiled"] = written
            logger.debug(
                "run %s: %d frames to Tiled in %.3f s",
                self.raw_uid,
                sum(len(s) for s in slabs),
                time.perf_counter() - started,
            )
            return True
        except Exception as err:  # any failure (transport, server, conflict): retry later
            with self._cond:
                self.failures += 1
                self.last_error = redact(f"{type(err).__name__}: {err}")
                self._dirty = True
            logger.warning(
                "run %s: Tiled write failed (%s); will retry", self.raw_uid, self.last_error
            )
            return False

    def _ensure_container(self) -> Any:
        if self._container is None:
            with self._cond:
                metadata = dict(self._metadata)
            self._container, self.key = create_run_container(
                self.client, self.group, self.raw_uid, metadata
            )
            logger.info("run %s: corrected scan in Tiled at %s", self.raw_uid, self.path)
        return self._container

    def _write_frames(self, node: Any, block: np.ndarray, offset: int) -> None:
        self._array = write_frames(node, self._array, block, offset)

    def _write_fallback(self, upto: int | None = None) -> None:
        """Write the result so far (its first ``upto`` frames, also later) to the local file."""
        with self._fallback_lock:
            if upto is not None:
                self._fallback_upto = upto
            upto = self._fallback_upto
            with self._cond:
                slabs, mask = list(self._slabs), self.gap_mask
                metadata = dict(self._metadata)
            shape = slabs[0].shape[1:] if slabs else (mask.shape if mask is not None else (0, 0))
            corrected = np.concatenate(slabs) if slabs else np.zeros((0, *shape), np.float32)
            corrected = corrected[:upto]
            if self._fallback_path is None:
                path = self.fallback_dir / f"bcdi_online_{self.raw_uid}.h5"
                if path.exists():
                    path = path.with_name(
                        f"bcdi_online_{self.raw_uid}-{self.processing_uid[:8]}.h5"
                    )
                self._fallback_path = path
            path = self._fallback_path
            metadata["local_fallback"] = str(path)
            try:
                written = write_fallback(
                    path, corrected, mask if mask is not None else np.zeros(shape, bool), metadata
                )
            except Exception as err:
                self.save_error = redact(f"local fallback {path}: {type(err).__name__}: {err}")
                logger.error("run %s: %s", self.raw_uid, self.save_error)
                self._settle(None)
                return
            with self._cond:
                self.local_fallback = written
                self._metadata["local_fallback"] = str(written)
                self._abandoned = True
            self._settle("fallback")
