"""A corrected scan as a Bluesky run: frames to a result file, documents to TiledWriter."""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._errors import ConfigurationError, InputDataError, ServiceError
from .._redact import redact
from ._documents import CorrectedRunDocuments
from ._fallback import default_fallback_dir, jsonable
from ._products import write_product
from ._result_file import ResultFile
from ._settings import FINAL_STATUSES

logger = logging.getLogger(__name__)

Document = tuple[str, dict[str, Any]]


class CorrectedRunWriter:
    """The corrected scan of one raw run, stored as a Bluesky run of its own.

    Frames go, as they are appended, to a result file ``<results_dir>/bcdi_online_<raw
    uid>-<result uid[:8]>.h5`` (:class:`ResultFile`: rows by scan position, SWMR, so
    Tiled serves them while the scan runs; the file is the result's storage). The run's
    documents (:class:`CorrectedRunDocuments`: start with ``original_run_uid``, the
    ``gap_mask`` and ``primary`` streams as stream resources of that file, a stream
    datum per slab of frames declared final, the stop with the final status) go from a
    thread to bluesky-tiled-plugins' ``TiledWriter(batch_size=1, backup_directory=
    results_dir)``, which registers them: the result is then a ``BlueskyRun`` under
    ``client`` (key = :attr:`result_uid`), found with :func:`find_corrected`.

    Frames may be appended before they are final (:meth:`commit` declares them,
    :meth:`rewind` takes back undeclared ones). :meth:`close` returns once the result is
    persisted: in Tiled (the stop document read back from the server), else, if Tiled
    has not taken it ``fallback_after`` seconds after the close, in the result file
    alone (its final metadata written into it; :attr:`local_fallback`). When Tiled fails
    mid-run, TiledWriter routes the run's documents to its JSON-lines backup; after the
    stop document the whole run is written again (the partial node deleted) as soon as
    Tiled answers, within that bound. With ``client=None`` the result goes to the file
    only.

    Parameters
    ----------
    client : tiled.client container or None
        Catalog of Bluesky runs (``tiled.client.from_uri(uri)``).
    raw_uid : str
        Start-document uid of the raw run.
    gap_mask : (ny, nx) bool ndarray or None
        Dead pixels; None until known (:meth:`set_gap_mask`) or when unknown.
    metadata : dict, optional
        Provenance (model, window plan, detector, ROI, service, ``scan_id``,
        ``plan_name``): the start document's ``bcdi_online`` block.
    results_dir : str or Path, optional
        Where result files (and TiledWriter's backups) go; default
        :func:`default_fallback_dir`. The Tiled server must be able to read it
        (``readable_storage``), as it reads the detector's files.
    fallback_after : float
        Seconds after :meth:`close` before the result file alone stands for the result.
    """

    def __init__(
        self,
        client: Any,
        raw_uid: str,
        gap_mask: np.ndarray | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        results_dir: str | Path | None = None,
        fallback_after: float = 60.0,
    ) -> None:
        if fallback_after < 0:
            raise ConfigurationError(f"fallback_after must be >= 0, got {fallback_after}")
        self.client, self.raw_uid = client, str(raw_uid)
        self.result_uid = str(uuid.uuid4())
        self.results_dir = Path(results_dir) if results_dir else default_fallback_dir()
        self.fallback_after = fallback_after
        self.file_path = self.results_dir / f"bcdi_online_{self.raw_uid}-{self.result_uid[:8]}.h5"
        self._metadata: dict[str, Any] = {
            "raw_uid": self.raw_uid,
            "result_uid": self.result_uid,
            "package_version": __version__,
            "status": "running",
            "result_file": str(self.file_path),
            "local_fallback": None,
            **jsonable(metadata or {}),
        }
        self.gap_mask: np.ndarray | None = None
        self._cond = threading.Condition()
        self._file_lock = threading.Lock()
        self._file: ResultFile | None = None
        self._documents: CorrectedRunDocuments | None = None
        self._docs: list[Document] = []
        self._sent = 0
        self._frames_declared_by: dict[str, int] = {}  # stream datum uid -> frames declared
        self._in_tiled = 0
        self._unreadable = False  # Tiled took the documents but cannot read the file
        self._readable_checked: bool | None = None  # (after the first frames, or the stop)
        self._slabs: list[np.ndarray] = []
        self._n_appended = self._n_written = self._n_committed = 0
        self._stopped = self._abandoned = self._saved_now = False
        self._backup: dict[str, list[dict[str, Any]]] = {}  # TiledWriter's: set if Tiled failed
        self.failures = 0
        self.last_error: str | None = None
        self.local_fallback: Path | None = None
        self.saved_to: str | None = None
        """Where the final result is: ``"tiled"``, ``"fallback"`` (the result file) or None."""
        self.save_error: str | None = None
        self._settled = threading.Event()
        if gap_mask is not None:
            self.set_gap_mask(gap_mask)
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
    def path(self) -> str:
        """Key of the corrected run in the catalog (its uid)."""
        return self.result_uid

    def set_gap_mask(self, gap_mask: np.ndarray) -> None:
        """Set the dead pixels: creates the result file and opens the run's documents."""
        mask = np.asarray(gap_mask, bool)
        with self._file_lock:
            if self._documents is not None:
                return
            self.gap_mask = mask
            try:
                self._file = ResultFile(self.file_path, mask)
            except Exception as err:
                self._lose_file(err)
            self._write_file()  # frames appended before the mask was known
            self._open(mask.shape)

    def _open(self, frame_shape: tuple[int, ...] | None) -> None:
        with self._cond:
            self._documents = CorrectedRunDocuments(
                self.result_uid,
                self.raw_uid,
                dict(self._metadata),
                self.file_path if frame_shape is not None else None,
                frame_shape,
            )
            self._docs.extend(self._documents.opening())
            self._cond.notify_all()

    def append(self, frames: np.ndarray) -> None:
        """Write the next frames to the result file (not declared final until :meth:`commit`).

        Parameters
        ----------
        frames : (k, ny, nx) ndarray
            Corrected frames following those appended before; cast to float32.
        """
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if frames.ndim != 3:
            raise InputDataError(f"frames must be (k, ny, nx), got shape {frames.shape}")
        with self._file_lock:
            if self._saved_now:
                return  # ended at once by save_now (shutdown): what follows is not kept
            if self._stopped:
                raise ServiceError(f"writer of run {self.raw_uid} is closed")
            if self.gap_mask is not None and frames.shape[1:] != self.gap_mask.shape:
                raise InputDataError(
                    f"frame shape {frames.shape[1:]} does not match {self.gap_mask.shape}"
                )
            if not len(frames):
                return
            self._slabs.append(frames)
            self._n_appended += len(frames)
            self._write_file()

    def _write_file(self) -> None:
        """Write the appended rows not in the file yet (with ``_file_lock`` held)."""
        if self._file is None or self._n_written >= self._n_appended:
            return
        pending, total = [], 0
        for slab in self._slabs:
            end = total + len(slab)
            if end > self._n_written:
                pending.append(slab[max(0, self._n_written - total) :])
            total = end
        try:
            self._file.write(np.concatenate(pending), self._n_written)
            self._n_written = self._n_appended
        except Exception as err:
            self._lose_file(err)

    def _lose_file(self, err: Exception) -> None:
        """Record that the result file cannot be written (a full disk); leave no half of it."""
        self.save_error = redact(f"result file {self.file_path}: {type(err).__name__}: {err}")
        logger.error("run %s: %s", self.raw_uid, self.save_error)
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # (the same full disk)
                logger.debug("run %s: result file not closed cleanly", self.raw_uid)
            self._file = None
        self.file_path.unlink(missing_ok=True)

    def commit(self, n_frames: int) -> None:
        """Declare the first ``n_frames`` appended frames final (a stream datum to Tiled)."""
        with self._file_lock:
            self._commit(min(n_frames, self._n_appended))

    def _commit(self, n_frames: int) -> None:
        with self._cond:
            if self._documents is None or n_frames <= self._n_committed:
                return
            self._n_committed = n_frames
            for name, doc in self._documents.declare(n_frames):
                self._frames_declared_by[doc["uid"]] = n_frames
                self._docs.append((name, doc))
            self._cond.notify_all()

    def result(self) -> np.ndarray:
        """Return the frames appended so far, ``(n_frames, ny, nx)`` float32 (a copy)."""
        with self._file_lock:
            slabs = list(self._slabs)
        if not slabs:
            shape = self.gap_mask.shape if self.gap_mask is not None else (0, 0)
            return np.zeros((0, *shape), np.float32)
        return np.concatenate(slabs)

    def rewind(self, n_frames: int) -> None:
        """Take back the frames appended from ``n_frames`` on (not declared yet).

        Parameters
        ----------
        n_frames : int
            Frames to keep, from those declared final to those appended.
        """
        with self._file_lock:
            if not self._n_committed <= n_frames <= self._n_appended:
                raise InputDataError(
                    f"cannot rewind to frame {n_frames}: {self._n_committed} declared, "
                    f"{self._n_appended} appended"
                )
            kept, total = [], 0
            for slab in self._slabs:
                if total >= n_frames:
                    break
                kept.append(slab[: n_frames - total])
                total += len(kept[-1])
            self._slabs, self._n_appended = kept, n_frames
            self._n_written = min(self._n_written, n_frames)  # rows rewritten by what follows

    def update_metadata(self, **metadata: Any) -> None:
        """Merge keys into the metadata (the stop document's ``bcdi_online`` block)."""
        with self._cond:
            self._metadata.update(jsonable(metadata))

    def close(self, status: str, **metadata: Any) -> str | None:
        """Declare every appended frame, stop the run; return once the result is persisted.

        Parameters
        ----------
        status : str
            Final status, one of :data:`FINAL_STATUSES`.
        **metadata
            Last metadata (``error``, timings, processing statistics).

        Returns
        -------
        str or None
            ``"tiled"``, ``"fallback"`` (the result file), or None when it could be saved
            nowhere (:attr:`last_error`, :attr:`save_error`).
        """
        if status not in FINAL_STATUSES:
            raise ConfigurationError(f"status must be one of {FINAL_STATUSES}, got {status!r}")
        with self._cond:
            self._metadata.update(jsonable(metadata), status=status)
        self._finish()
        settled = self.client is not None and self._settled.wait(self.fallback_after)
        if not settled:
            self._fall_back()
        return self.saved_to

    def _finish(self, upto: int | None = None) -> None:
        """Declare the frames (the first ``upto``), finish the file, queue the stop document."""
        with self._file_lock:
            if self._stopped:
                return
            self._stopped = True
            if self._documents is None:
                self._open(None)  # a run that failed before its frame shape was known
            n_frames = self._n_appended if upto is None else min(upto, self._n_appended)
            self._commit(n_frames)
            with self._cond:
                metadata = {**self._metadata, "frames_in_tiled": n_frames}
            if self._file is not None:
                try:
                    self._file.finish(n_frames, metadata)
                except Exception as err:
                    self._lose_file(err)
            with self._cond:
                if self._documents is not None:
                    error = metadata.get("error")
                    stop = self._documents.stop(metadata["status"], str(error or ""), metadata)
                    self._docs.append(("stop", stop))
                self._cond.notify_all()

    def save_now(
        self, status: str | None = None, *, upto: int | None = None, **metadata: Any
    ) -> str | None:
        """End the run in its result file at once, unless Tiled already holds its result.

        For a service shutting down: the first ``upto`` frames (e.g. without provisional
        ones), with ``status`` (e.g. ``"interrupted"``) and ``metadata``; the documents
        stop going to Tiled (a restarted service ends the run there from the file, see
        :func:`end_orphaned_runs`). A :meth:`close` waiting returns.

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
            self._abandoned = self._saved_now = True
            self._cond.notify_all()
        self._finish(upto)
        self._fall_back()
        return self.saved_to

    def _fall_back(self) -> None:
        """Let the result file stand for the result (if it was finished)."""
        finished = self._file is not None or self.file_path.is_file()
        if finished and self.save_error is None:
            self.local_fallback = self.file_path
            with self._cond:
                self._metadata["local_fallback"] = str(self.file_path)
            self._settle("fallback")
        else:
            self.save_error = self.save_error or "no result file (the frame shape was never known)"
            self._settle(None)
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()

    def publish(
        self,
        key: str,
        arrays: dict[str, tuple[np.ndarray, tuple[str, ...]]] | None,
        *,
        metadata: dict[str, Any],
        summary: dict[str, Any] | None = None,
        spec: str | None = None,
    ) -> str:
        """Write a result derived from the stored corrected scan, linked from its run.

        Only after :meth:`close` put the final result in Tiled (a derived result never
        stands in for a missing corrected scan). See :func:`write_product`; the run's
        metadata gets ``bcdi_online_products[key]`` (``path`` and ``summary``).

        Returns
        -------
        str
            Path of the result, relative to the client.

        Raises
        ------
        ServiceError
            If the corrected scan is not in Tiled, or the write fails.
        """
        if self.saved_to != "tiled":
            raise ServiceError(
                f"run {self.raw_uid}: the corrected scan is not in Tiled "
                f"(saved to {self.saved_to}): {key!r} not published"
            )
        metadata = jsonable(metadata)
        try:
            path = write_product(self.client, self.result_uid, key, arrays, metadata, spec=spec)
            run = self.client[self.result_uid]
            products = dict(run.metadata.get("bcdi_online_products") or {})
            products[key] = {"path": path, **jsonable(summary or metadata)}
            run.update_metadata(metadata={"bcdi_online_products": products}, drop_revision=True)
        except Exception as err:
            raise ServiceError(
                redact(f"run {self.raw_uid}: {key!r} not written: {type(err).__name__}: {err}")
            ) from err
        return path

    def state(self) -> dict[str, Any]:
        """Upload state: frames appended / declared in Tiled, failures, where it is."""
        with self._cond:
            return {
                "corrected_run_uid": self.result_uid,
                "tiled_path": self.path,
                "frames_appended": self._n_appended,
                "frames_in_tiled": self._in_tiled,
                "write_failures": self.failures,
                "last_write_error": self.last_error,
                "local_fallback": self.local_fallback and str(self.local_fallback),
                "saved_to": self.saved_to,
                "save_error": self.save_error,
                "writer_done": self._settled.is_set(),
            }

    # -- documents to Tiled ----------------------------------------------------------

    def _loop(self) -> None:
        if self.client is None:
            return  # the result file is the result
        from bluesky_tiled_plugins import TiledWriter

        tiled: Any = None
        failed = False  # Tiled failed this run: it is written again after the stop
        try:
            while True:
                with self._cond:
                    while not self._abandoned and self._sent == len(self._docs):
                        self._cond.wait()
                    if self._abandoned:
                        return
                    name, doc = self._docs[self._sent]
                if name == "stop" and not failed and self._ended_by_another():
                    return
                if not failed:
                    try:
                        if tiled is None:
                            tiled = TiledWriter(
                                self.client,
                                batch_size=1,
                                backup_directory=str(self.results_dir),
                                backup_dictionary=self._backup,
                            )
                        tiled(name, copy.deepcopy(doc))  # (TiledWriter edits documents)
                    except Exception as err:  # (TiledWriter itself could not be made)
                        failed = True
                        self._note_failure(redact(f"{type(err).__name__}: {err}"))
                    if self._backup:  # TiledWriter's own: Tiled failed, documents backed up
                        failed = True
                        self._note_failure("Tiled failed; the run's documents went to the backup")
                with self._cond:
                    self._sent += 1
                    if not failed:
                        self._in_tiled = self._frames_declared_by.get(doc["uid"], self._in_tiled)
                if self._in_tiled and self._readable_checked is None:  # once, early
                    self._readable_checked = self._readable()
                if name == "stop":
                    break
            delay = 0.5
            while not self._stored(failed):  # again until Tiled is back, or the bound
                if self._unreadable:  # Tiled holds the run but cannot serve its frames
                    self._fall_back()
                    return
                with self._cond:
                    self._cond.wait(delay)
                    if self._abandoned:
                        return
                delay = min(2 * delay, 5.0)
            with self._cond:
                self._in_tiled = self._n_committed
            self._settle("tiled")
        except Exception:  # never let the thread die silently (nothing above should raise)
            logger.exception("Tiled writer of run %s failed", self.raw_uid)

    def _ended_by_another(self) -> bool:
        """Whether another processor ended this run in Tiled (it took the raw run over).

        Checked before the stop document goes: a processor silent longer than the
        takeover bound must not overwrite the taker's ``interrupted`` with its own
        result (the window left is this read and the write that follows it).
        """
        try:
            if not self._stop_in_tiled():
                return False
        except Exception:  # Tiled down: the stop goes to the backup as any document
            return False
        with self._cond:
            self.save_error = "the corrected run was ended by another processor (taken over)"
        logger.warning("run %s: %s", self.raw_uid, self.save_error)
        self._settle(None)
        return True

    def _note_failure(self, error: str) -> None:
        with self._cond:
            if self.last_error is None:
                self.failures += 1
                self.last_error = error
                logger.warning("run %s: %s", self.raw_uid, error)

    def _stored(self, failed: bool) -> bool:
        """Whether Tiled holds the whole run, written again from the start if it failed."""
        try:
            stored = (not failed and self._stop_in_tiled()) or (
                self._write_again() and self._stop_in_tiled()
            )
            if stored and (self._readable_checked is None or failed):
                self._readable_checked = self._readable()
            return stored and not self._unreadable
        except Exception as err:
            with self._cond:
                self.failures += 1
                self.last_error = redact(f"{type(err).__name__}: {err}")
            logger.warning("run %s: not in Tiled: %s", self.raw_uid, self.last_error)
            return False

    def _readable(self) -> bool:
        """Whether Tiled serves the run's frames (it reads the result file in place).

        Checked once, after the first frames are declared (off the end-of-scan path), or
        at the stop (a run declared at once, a run written again after an outage).
        """
        if self._in_tiled == 0 and self._n_committed == 0:
            return True
        row = max(self._in_tiled, 1) - 1
        try:  # (one lookup by path, one read of one voxel)
            self.client[f"{self.result_uid}/primary/corrected"].read(slice=(row, 0, 0))
        except Exception as err:
            self._unreadable = True
            with self._cond:
                self.failures += 1
                self.last_error = redact(
                    f"Tiled cannot read the result file {self.file_path} "
                    f"({type(err).__name__}: {err}); is {self.results_dir} in the "
                    "server's readable_storage?"
                )
            logger.error("run %s: %s", self.raw_uid, self.last_error)
            return False
        return True

    def _stop_in_tiled(self) -> bool:
        try:
            return self.client[self.result_uid].metadata.get("stop") is not None
        except KeyError:
            return False

    def _write_again(self) -> bool:
        """Delete the partial run in Tiled and send every document again (Tiled back)."""
        from bluesky_tiled_plugins import TiledWriter

        if self.result_uid in self.client:
            self.client[self.result_uid].delete(recursive=True, external_only=False)
        tiled = TiledWriter(self.client, batch_size=1)
        with self._cond:
            docs = list(self._docs)
        for name, doc in docs:
            with self._cond:
                if self._abandoned:
                    return False
            tiled(name, copy.deepcopy(doc))
        logger.info("run %s: written to Tiled again after a failure", self.raw_uid)
        backup = self.results_dir / f"{self.result_uid.split('-')[0]}.jsonl"
        backup.unlink(missing_ok=True)  # the backup of a run Tiled now holds
        return True

    def _settle(self, where: str | None) -> None:
        """Record where the final result went (the first place wins) and wake :meth:`close`."""
        with self._cond:
            if self.saved_to is None:
                self.saved_to = where
            self._settled.set()
            self._cond.notify_all()
