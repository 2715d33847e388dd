"""The worker thread of one run: frames in by position, incremental inpainting, slabs out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from bcdi_online.detectors import checked_mask
from bcdi_online.inpainting import MAX_BAD_FRACTION, GapInpainter, MaskedStream
from bcdi_online.tiled_output import CorrectedRunWriter

from ._assembly import FrameAssembly, as_ranges
from ._frames import FileFrames, FrameReader, FrameSlice
from ._health import RunHealth
from ._intake import Entry, Intake, Item, count
from ._scan_end import ScanEndSettings, publish_scan_end

logger = logging.getLogger(__name__)

MAX_JUMP = 100_000
"""Frames a position (or the stop document's count) may lie beyond every frame seen and
the planned count; further is a corrupt document, not a hole to fill with NaN frames."""

EXIT_STATUS = {"success": "complete", "abort": "aborted", "fail": "aborted"}
"""Stop-document ``exit_status`` -> output ``status`` when every frame is there."""


class InpaintWorker:
    """Inpaint one run's frames in a thread, fed without ever blocking the caller.

    Frames are placed by their position in the scan (event ``seq_num``, stream datum
    ``seq_nums`` / ``indices``), not by arrival order (:class:`FrameAssembly`): late
    frames wait for the earlier ones, a frame received twice with the same values is
    ignored, with other values it fails the run naming the frames, and positions that
    never arrive (or cannot be read from their file) make the run ``incomplete``; the
    corrected volume then has NaN frames there, and the frames after a hole are
    inpainted as their own scan. Bad voxels (NaN, inf, negative counts) are dead for
    their frame and filled (:class:`~bcdi_online.inpainting.MaskedStream`).

    Overflow policy (:class:`Intake`): :meth:`submit` uses ``put_nowait`` on a queue of
    ``queue_size`` items. When it is full the run is marked *degraded* and items go, in
    order, to an unbounded overflow list (a file slice is a few bytes; inline frames are
    kept as is); the worker then takes the overflow in slabs of up to
    ``max(queue_size, 32)`` frames. Nothing is dropped; the RunEngine thread never waits.
    Frames waiting (queue, overflow, or behind a hole) are reported as ``backlog_bytes``
    (``peak_backlog_bytes``).

    The status stays ``running`` until the result is persisted (Tiled or the local
    result file alone, see :meth:`CorrectedRunWriter.close`); a result saved nowhere makes
    the run ``failed`` with both errors.

    Parameters
    ----------
    inpainter : GapInpainter
        The engine (shared between runs; one stream per run).
    writer : CorrectedRunWriter
        Where final frames go.
    mask : (ny, nx) bool ndarray or None
        Gap mask; None to read the NeXus pixel mask of the first detector file.
    mask_source : str
        Where ``mask`` came from (metadata), or why it is missing.
    queue_size : int
        Items the queue holds before overflow.
    expected_frames : int, optional
        Planned frame count (the start document's ``num_points``): lets the engine run
        the last full windows before the scan ends. A wrong count costs only wasted work.
    mask_error : str, optional
        Why no gap mask can exist (unknown detector, ROI outside it): the run fails.
    max_bad_fraction : float
        Bad voxels allowed per frame (fraction of its measured pixels).
    run_timeout : float, optional
        Seconds without a document after which a run that never got its stop document
        ends ``interrupted`` (None: wait for ever).
    file_timeout : float
        Seconds to wait, while the run is open, for announced frames to be written.
    scan_end : ScanEndSettings, optional
        Then, the result in Tiled, publish the fill uncertainty and the crystal beside it
        (phase ``scan_end``, :func:`publish_scan_end`); the final status never changes.
    reader : FrameReader, optional
        Where stream-datum frames are read (default :class:`FileFrames` of ``file_timeout``).
    """

    def __init__(
        self,
        inpainter: GapInpainter,
        writer: CorrectedRunWriter,
        mask: np.ndarray | None,
        mask_source: str,
        *,
        queue_size: int = 64,
        expected_frames: int | None = None,
        mask_error: str | None = None,
        max_bad_fraction: float = MAX_BAD_FRACTION,
        run_timeout: float | None = None,
        file_timeout: float = 10.0,
        scan_end: ScanEndSettings | None = None,
        reader: FrameReader | None = None,
    ) -> None:
        self.inpainter, self.writer, self.scan_end = inpainter, writer, scan_end
        self.expected_frames = expected_frames
        self.mask, self.mask_source, self.mask_error = mask, mask_source, mask_error
        self.max_bad_fraction, self.run_timeout = max_bad_fraction, run_timeout
        self._intake = Intake(queue_size, max(queue_size, 32))
        self._lock = threading.Lock()
        self._exit_status: str | None = None
        self._announced: int | None = None  # frames the stop document reports
        self._interrupt: str | None = None
        self._skip_finish = False  # interrupted at shutdown: no time for the last windows
        self._last_document = time.monotonic()
        self._files = reader if reader is not None else FileFrames(file_timeout)
        self._first_piece: FrameSlice | None = None
        self._assembly = FrameAssembly()
        self._conflicts: list[int] = []  # positions received twice with other values
        self._stream: MaskedStream | None = None
        self._arrival: dict[int, float] = {}  # arrival time of each frame position
        self._published = 0  # frames handed to the writer (final ones, then provisional)
        self._held_bytes = 0  # frames waiting behind a hole (worker thread)
        self.stats: RunHealth = {
            "frames_received": 0,
            "expected_frames": expected_frames,
            "frames_processed": 0,
            "frames_final": 0,
            "frames_republished": 0,
            "frames_failed": 0,
            "frames_missing": 0,
            "missing_frames": [],
            "duplicates_ignored": 0,
            "bad_pixels": 0,
            "bad_frames": [],
            "windows": 0,
            "overflow_events": 0,
            "degraded": False,
            "backlog_bytes": 0,
            "peak_backlog_bytes": 0,
            "status": "running",
            "phase": "receiving",
            "last_error": None,
            "read_s": 0.0,
            "inpaint_s": 0.0,
            "max_latency_s": 0.0,
        }
        self._thread = threading.Thread(
            target=self._loop, name=f"bcdi-inpaint-{writer.raw_uid[:8]}", daemon=True
        )
        self._thread.start()

    # -- caller side (RunEngine thread): never blocks --------------------------------

    def submit(self, item: Item, first: int, n_frames: int) -> None:
        """Hand over ``n_frames`` frames at scan positions ``first, first + 1, ...``."""
        now = time.monotonic()
        with self._lock:
            self._last_document = now
            self.stats["frames_received"] += n_frames
            for position in range(first, first + n_frames):
                self._arrival.setdefault(position, now)
            if self._intake.put((first, item)):
                self.stats["overflow_events"] += 1
                if not self.stats["degraded"]:
                    logger.warning("run %s: queue full, degraded mode", self.writer.raw_uid)
                self.stats["degraded"] = True
            self._note_backlog()

    @property
    def done(self) -> bool:
        """Whether the run has ended (its thread finished)."""
        return not self._thread.is_alive()

    def touch(self) -> None:
        """Note that a document of the run arrived (``run_timeout`` starts again)."""
        self._last_document = time.monotonic()

    def stop(self, exit_status: str, announced_frames: int | None = None) -> None:
        """End the run: finish the remaining windows, then close the writer.

        ``announced_frames``: frames the stop document says the scan has (its
        ``num_events``), so that lost trailing frames are found too.
        """
        with self._lock:
            self._exit_status = exit_status or "success"
            self._announced = announced_frames

    def interrupt(self, reason: str) -> None:
        """Stop processing at the next batch; the run ends ``interrupted`` with ``reason``.

        For a service shutting down: the frames already final are saved, no more windows
        run.
        """
        with self._lock:
            self._interrupt, self._skip_finish = reason, True

    def fail(self, message: str) -> None:
        """Record an error of the caller side; the run ends with status ``failed``."""
        logger.error("run %s: %s", self.writer.raw_uid, message)
        self.stats["last_error"] = message

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread (and hence the writer); True if it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def health(self) -> RunHealth:
        """Queue depth, overflow, frame counts, holes, windows, errors, upload state."""
        with self._lock:
            intake = self._intake
            health: RunHealth = {
                **self.stats,
                "queue_depth": intake.depth,
                "overflow_frames": intake.overflow_frames,
            }
        return cast(RunHealth, {**health, **self.writer.state()})

    # -- worker thread ----------------------------------------------------------------

    def _note_backlog(self) -> None:
        backlog = self._intake.bytes + self._held_bytes
        self.stats["backlog_bytes"] = backlog
        self.stats["peak_backlog_bytes"] = max(self.stats["peak_backlog_bytes"], backlog)

    def _next_batch(self) -> list[Entry] | None:
        while True:
            with self._lock:  # no submit runs while we look, so the order is kept
                if self._interrupt is not None:
                    return None
                slab = self._intake.take_overflow()
                if slab is not None:
                    for _, item in slab:
                        self._intake.taken(item)
                    return slab
                if self._intake.empty():
                    if self._exit_status is not None:
                        return None
                    idle = time.monotonic() - self._last_document
                    if self.run_timeout is not None and idle > self.run_timeout:
                        self._interrupt = (
                            f"no document for {self.run_timeout:g} s and no stop document "
                            "(lost message?): processed the frames received"
                        )
                        return None
            entry = self._intake.get(timeout=0.05)
            if entry is not None:
                with self._lock:
                    self._intake.taken(entry[1])
                return [entry]

    def _loop(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._guarded(self._process, batch)
            with self._lock:
                self._note_backlog()
            self.stats["phase"] = "finishing"
            if not self._skip_finish:
                self._guarded(self._finish)
            self._close()
            self._publish_scan_end()
        except Exception:  # a bug here must not kill the thread silently
            logger.exception("run %s: worker failed", self.writer.raw_uid)
            self.stats["status"] = "failed"
        finally:
            self._files.close()

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        if self.stats["status"] == "failed":
            if args:
                self.stats["frames_failed"] += sum(count(i) for _, i in args[0])
            return
        try:
            step(*args)
        except Exception as err:
            logger.exception("run %s: inpainting failed", self.writer.raw_uid)
            self.stats["status"] = "failed"
            self.stats["last_error"] = f"{type(err).__name__}: {err}"
            if args:
                self.stats["frames_failed"] += sum(count(i) for _, i in args[0])

    def _process(self, batch: list[Entry]) -> None:
        started = time.perf_counter()
        for first, item in batch:
            self._check_position(first)
            if isinstance(item, np.ndarray):
                frames = item
            else:
                self._first_piece = self._first_piece or item
                try:
                    frames = self._files.read(item, wait=self._exit_status is None)
                except (OSError, KeyError, ValueError) as err:  # broken, missing, truncated
                    logger.error("run %s: %s: %s", self.writer.raw_uid, type(err).__name__, err)
                    reason = getattr(err, "why", None) or f"{type(err).__name__}: {err}"
                    self._assembly.unreadable(range(first, first + count(item)), reason)
                    continue
            self._conflicts += self._assembly.add(first, frames)
        self.stats["read_s"] += time.perf_counter() - started
        self.stats["duplicates_ignored"] = self._assembly.duplicates
        if self._conflicts:  # the run fails: no more results, but every conflict is named
            return
        ready = self._assembly.pop_ready()
        self._held_bytes = self._assembly.held_bytes
        with self._lock:
            self._note_backlog()
        if ready is not None:
            self._feed(ready)

    def _check_position(self, position: int, what: str = "a frame position") -> None:
        """Refuse positions no scan has: negative, or far past every frame seen (corrupt)."""
        limit = max(self._assembly.end, self.expected_frames or 0) + MAX_JUMP
        if not 0 <= position <= limit:
            raise ValueError(
                f"{what} of {position} is impossible here (frames so far: "
                f"{self._assembly.end}, planned: {self.expected_frames}): corrupt document?"
            )

    def _start(self, shape: tuple[int, int]) -> MaskedStream:
        if self.mask_error is not None:
            raise RuntimeError(self.mask_error)
        if self.mask is None:
            piece = self._first_piece
            self.mask = None if piece is None else self._files.pixel_mask(piece)
            if self.mask is None:
                raise RuntimeError(f"no gap mask: {self.mask_source}")
            self.mask_source = "pixel_mask of the detector file"
        self.mask = checked_mask(self.mask, shape)
        self.writer.set_gap_mask(self.mask)
        self.writer.update_metadata(mask_source=self.mask_source, frame_shape=list(shape))
        return self._masked_stream(self.expected_frames)

    def _masked_stream(self, expected_frames: int | None) -> MaskedStream:
        return MaskedStream(
            self.inpainter,
            self.mask,  # type: ignore[arg-type]
            expected_frames=expected_frames,
            max_bad_fraction=self.max_bad_fraction,
        )

    def _feed(self, frames: np.ndarray) -> None:
        """Frames in scan order: into the stream, final ones to the writer."""
        started = time.perf_counter()
        if self._stream is None:
            self._stream = self._start(frames.shape[1:])
        stream = self._stream
        expected = stream.expected_frames
        if expected is not None and stream.n_frames + len(frames) > expected:
            self._unpublish()  # more frames than announced: provisional ones change
        done = stream.add_frames(frames)
        self._publish_final(done)
        self._publish_provisional()
        self._count_stream(stream)
        self.stats["frames_processed"] += len(frames)
        self.stats["inpaint_s"] += time.perf_counter() - started

    def _count_stream(self, stream: MaskedStream, windows: int = 0) -> None:
        self.stats["windows"] = stream.windows_done + windows
        self.stats["bad_pixels"] = stream.bad_pixels
        self.stats["bad_frames"] = as_ranges(stream.bad_frames)

    def _publish_final(self, done: range) -> None:
        """Upload the frames of ``done`` not published yet; mark them final."""
        if not len(done) or self._stream is None:
            return
        start = max(done.start, self._published)
        if start < done.stop:
            self.writer.append(self._stream.result(done.stop, start))
            self._published = done.stop
        self.writer.commit(done.stop)
        self.stats["frames_final"] = done.stop
        self._note_latency(done.stop - 1)

    def _note_latency(self, position: int) -> None:
        arrived = self._arrival.get(position)
        if arrived is not None:
            latency = time.monotonic() - arrived
            self.stats["max_latency_s"] = max(self.stats["max_latency_s"], latency)

    def _publish_provisional(self) -> None:
        """Write frames whose values are known if the scan ends at the expected count.

        They go to the result file, not declared final: once the stop document confirms
        the count they need no computing and no writing, only their declaration; if it
        turns out different, :meth:`_unpublish` rewinds.
        """
        if self._stream is None:
            return
        ready = self._stream.provisional(self._published)
        if ready is not None:
            frames, slab = ready
            self.writer.append(slab)
            self._published = frames.stop

    def _unpublish(self) -> None:
        """Take back the provisional frames (the writer replaces them with what follows)."""
        final = self.stats["frames_final"]
        if self._published > final:
            self.writer.rewind(final)
            self.stats["frames_republished"] += self._published - final
            self._published = final

    def _finish(self) -> None:
        """End of the run: last windows, then the frames behind holes, NaN in the holes."""
        if self._conflicts:
            return
        started = time.perf_counter()
        segments = self._assembly.segments()
        self._held_bytes = 0
        if self._stream is None and segments:  # the first frames never came
            self._stream = self._start(segments[0][1].shape[1:])
        stream, windows = self._stream, 0
        bad = list(stream.bad_frames) if stream is not None else []
        if stream is not None and stream.n_frames:
            done = stream.complete()
            if stream.n_frames != stream.expected_frames:
                self._unpublish()  # ended early (or late): another plan for the last frames
            self._publish_final(done)
            windows = stream.windows_done
        for first, frames in segments:  # inpainted as scans of their own
            self._append_holes(first)
            piece = self._masked_stream(None)
            piece.add_frames(frames)
            self.writer.append(piece.finish())
            self._published += len(frames)
            windows += piece.windows_done
            self.stats["bad_pixels"] += piece.bad_pixels
            bad += [first + t for t in piece.bad_frames]
            self.stats["frames_processed"] += len(frames)
        if self._announced is not None:
            self._check_position(self._announced, "a frame count")
        count = max(self._assembly.end, self._announced or 0)
        missing = self._assembly.missing(count)
        self.stats.update(
            {
                "windows": windows,
                "bad_frames": as_ranges(bad),
                "frames_missing": len(missing),
                "missing_frames": as_ranges(missing),
            }
        )
        if stream is not None:  # the batch size used, after any out-of-memory halving
            self.stats["batch_size"] = stream.inner.batch_size
        if missing:
            why = self.stats["missing_reason"] = self._assembly.why_missing(missing)
            if len(missing) == count:
                self.stats["last_error"] = f"no frame of the {count}: {why}"
        if self._published or segments:
            self._append_holes(count)
        self.stats["frames_final"] = self._published
        self.stats["inpaint_s"] += time.perf_counter() - started
        if segments or missing:
            self._note_latency(count - 1)

    def _append_holes(self, upto: int) -> None:
        """NaN frames for the missing positions from the last published one to ``upto``."""
        if upto > self._published and self.mask is not None:
            self.writer.append(np.full((upto - self._published, *self.mask.shape), np.nan))
            self._published = upto

    def _final_status(self) -> str:
        if self._conflicts:
            self.stats["last_error"] = (
                f"frames {as_ranges(self._conflicts)} (half-open position ranges) received "
                "twice with different values: which ones belong to the scan is unknown"
            )
            self.stats["frames_conflicting"] = as_ranges(self._conflicts)
        if self.stats["status"] == "failed":
            return "failed"
        if self.mask is None:
            self.stats["last_error"] = self.mask_error or self.mask_source
            return "failed"
        if self.stats["last_error"] is not None:
            return "failed"
        if self._interrupt is not None:
            self.stats["last_error"] = self._interrupt
            return "interrupted"
        if self.stats["frames_missing"]:
            return "incomplete"
        return EXIT_STATUS.get(self._exit_status or "", "aborted")

    def _publish_scan_end(self) -> None:
        if self.scan_end is not None and self.mask is not None:
            self.stats["phase"], status = "scan_end", self.stats["status"]
            last = max(self._arrival.values(), default=None)
            report = publish_scan_end(self.writer, self.mask, self.scan_end, status, last)
            self.stats.update({"scan_end": report, "phase": "done"})

    def _close(self) -> None:
        status = self._final_status()
        self.stats["phase"] = "saving"
        stats = {k: v for k, v in self.stats.items() if k not in ("status", "phase")}
        error = stats.pop("last_error")
        if status == "incomplete":
            error = stats.get("missing_reason")
        where = self.writer.close(
            status,
            exit_status=self._exit_status,
            error=error,
            processing=stats,
            finished=time.time(),
        )
        status = self.writer.status  # (an interrupted shutdown may have set it)
        if where is None:
            status = "failed"
            self.stats["last_error"] = (
                f"result saved nowhere: Tiled: {self.writer.last_error}; {self.writer.save_error}"
            )
        self.stats["phase"] = "done"
        self.stats["status"] = status
        logger.info("run %s: %s, %s", self.writer.raw_uid, status, self.health())
