"""The worker thread of one run: frames in, incremental inpainting, slabs to the writer."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bcdi_online.inpainting import GapInpainter
from bcdi_online.tiled_output import CorrectedScanWriter

from ._sources import FileSlice, FrameFiles, check_mask

logger = logging.getLogger(__name__)

Item = np.ndarray | FileSlice
"""A queue item: inline frames ``(k, ny, nx)`` or a slice of a detector file."""

EXIT_STATUS = {"success": "complete", "abort": "aborted", "fail": "aborted"}
"""Stop-document ``exit_status`` -> output ``status`` (``failed`` is for our own errors)."""


class InpaintWorker:
    """Inpaint one run's frames in a thread, fed without ever blocking the caller.

    Overflow policy: :meth:`submit` uses ``put_nowait`` on a queue of ``queue_size``
    items. When it is full the run is marked *degraded* and items go, in order, to an
    unbounded overflow list (a file slice is a few bytes; inline frames are kept as
    is). Once the queue is drained the worker takes the whole overflow as one larger
    batch. Nothing is dropped; the RunEngine thread never waits.

    Parameters
    ----------
    inpainter : GapInpainter
        The engine (shared between runs; one stream per run).
    writer : CorrectedScanWriter
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
    """

    def __init__(
        self,
        inpainter: GapInpainter,
        writer: CorrectedScanWriter,
        mask: np.ndarray | None,
        mask_source: str,
        *,
        queue_size: int = 64,
        expected_frames: int | None = None,
    ) -> None:
        self.inpainter, self.writer = inpainter, writer
        self.expected_frames = expected_frames
        self.mask, self.mask_source = mask, mask_source
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=queue_size)
        self._overflow: list[Item] = []
        self._lock = threading.Lock()
        self._exit_status: str | None = None
        self._files = FrameFiles()
        self._stream: Any = None
        self._passthrough = False
        self._received: list[float] = []  # arrival time of each frame
        self._published = 0  # frames handed to the writer (final ones, then provisional)
        self.stats: dict[str, Any] = {
            "frames_received": 0,
            "expected_frames": expected_frames,
            "frames_processed": 0,
            "frames_final": 0,
            "frames_republished": 0,
            "frames_failed": 0,
            "windows": 0,
            "overflow_events": 0,
            "degraded": False,
            "status": "running",
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

    def submit(self, item: Item, n_frames: int) -> None:
        """Hand over ``n_frames`` frames (inline array or file slice), in scan order."""
        with self._lock:
            self.stats["frames_received"] += n_frames
            self._received.extend([time.monotonic()] * n_frames)
            if self._overflow:  # keep the order: once overflowing, append behind
                self._overflow.append(item)
                return
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self._overflow.append(item)
                self.stats["overflow_events"] += 1
                if not self.stats["degraded"]:
                    logger.warning("run %s: queue full, degraded mode", self.writer.raw_uid)
                self.stats["degraded"] = True

    def stop(self, exit_status: str) -> None:
        """End the run: finish the remaining windows, then close the writer."""
        with self._lock:
            self._exit_status = exit_status or "success"

    def fail(self, message: str) -> None:
        """Record an error of the caller side; the run ends with status ``failed``."""
        logger.error("run %s: %s", self.writer.raw_uid, message)
        self.stats["last_error"] = message

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread (and hence the writer); True if it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        """Queue depth, overflow, frame counts, windows, errors, upload state."""
        with self._lock:
            overflow = sum(self._count(i) for i in self._overflow)
            health = dict(self.stats, queue_depth=self._queue.qsize(), overflow_frames=overflow)
        return health | self.writer.state()

    # -- worker thread ----------------------------------------------------------------

    def _next_batch(self) -> list[Item] | None:
        while True:
            with self._lock:  # no submit runs while we look, so the order is kept
                if self._queue.empty():
                    if self._overflow:
                        batch, self._overflow = self._overflow, []
                        return batch
                    if self._exit_status is not None:
                        return None
            try:
                return [self._queue.get(timeout=0.05)]
            except queue.Empty:
                continue

    def _loop(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._guarded(self._process, batch)
            self._guarded(self._finish)
            self._close()
        except Exception:  # a bug here must not kill the thread silently
            logger.exception("run %s: worker failed", self.writer.raw_uid)
        finally:
            self._files.close()

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        if self.stats["status"] == "failed":
            if args:
                self.stats["frames_failed"] += sum(self._count(i) for i in args[0])
            return
        try:
            step(*args)
        except Exception as err:
            logger.exception("run %s: inpainting failed", self.writer.raw_uid)
            self.stats["status"] = "failed"
            self.stats["last_error"] = f"{type(err).__name__}: {err}"
            if args:
                self.stats["frames_failed"] += sum(self._count(i) for i in args[0])

    @staticmethod
    def _count(item: Item) -> int:
        return len(item) if isinstance(item, np.ndarray) else item.stop - item.start

    def _read(self, batch: list[Item]) -> np.ndarray:
        started = time.perf_counter()
        frames = [i if isinstance(i, np.ndarray) else self._files.read(i) for i in batch]
        self.stats["read_s"] += time.perf_counter() - started
        return np.concatenate(frames)

    def _start(self, batch: list[Item], shape: tuple[int, int]) -> None:
        if self.mask is None:
            path = next((i.path for i in batch if isinstance(i, FileSlice)), None)
            self.mask = None if path is None else self._files.pixel_mask(path)
            if self.mask is None:
                raise RuntimeError(f"no gap mask: {self.mask_source}")
            self.mask_source = "pixel_mask of the detector file"
        self.mask = check_mask(self.mask, shape)
        self.writer.set_gap_mask(self.mask)
        self.writer.update_metadata(mask_source=self.mask_source, frame_shape=list(shape))
        self._passthrough = not self.mask.any()  # as GapInpainter.__call__: nothing to fill
        self._stream = (
            None
            if self._passthrough
            else self.inpainter.stream(self.mask, expected_frames=self.expected_frames)
        )

    def _process(self, batch: list[Item]) -> None:
        frames = self._read(batch)
        if self._stream is None and not self._passthrough:
            self._start(batch, frames.shape[1:])
        started = time.perf_counter()
        if self._passthrough:
            first = self.stats["frames_processed"]
            self._publish_final(range(first, first + len(frames)), frames.astype(np.float32))
        else:
            expected = self._stream.expected_frames
            if expected is not None and self._stream.n_frames + len(frames) > expected:
                self._unpublish()  # more frames than announced: provisional ones change
            done = self._stream.add_frames(frames)
            self._publish_final(done)
            self._publish_provisional()
            self.stats["windows"] = self._stream.windows_done
        self.stats["frames_processed"] += len(frames)
        self.stats["inpaint_s"] += time.perf_counter() - started

    def _publish_final(self, done: range, slab: np.ndarray | None = None) -> None:
        """Upload the frames of ``done`` not published yet; mark them final."""
        if not len(done):
            return
        start = max(done.start, self._published)
        if start < done.stop:
            if slab is None:
                slab = self._stream.result(done.stop, start)
            else:
                slab = slab[start - done.start :]
            self.writer.append(slab)
            self._published = done.stop
        self.stats["frames_final"] = done.stop
        latency = time.monotonic() - self._received[done.stop - 1]
        self.stats["max_latency_s"] = max(self.stats["max_latency_s"], latency)

    def _publish_provisional(self) -> None:
        """Upload frames whose values are known if the scan ends at the expected count.

        The scan's last frames then need little or no upload once the stop document
        confirms the count; if it turns out different, :meth:`_unpublish` rewinds.
        """
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
        if self._stream is None or self._stream.n_frames == 0:
            return
        started = time.perf_counter()
        done = self._stream.complete()
        self.stats["inpaint_s"] += time.perf_counter() - started
        self.stats["windows"] = self._stream.windows_done
        self.stats["batch_size"] = self._stream.batch_size  # after any out-of-memory halving
        if self._stream.n_frames != self._stream.expected_frames:
            self._unpublish()  # ended early (or late): another plan for the last frames
        self._publish_final(done)

    def _close(self) -> None:
        if self.stats["status"] != "failed":
            if self.mask is None:
                self.stats["status"], self.stats["last_error"] = "failed", self.mask_source
            elif self.stats["last_error"] is not None:
                self.stats["status"] = "failed"
            else:
                self.stats["status"] = EXIT_STATUS.get(self._exit_status or "", "aborted")
        stats = {k: v for k, v in self.stats.items() if k != "status"}
        self.writer.close(
            self.stats["status"],
            exit_status=self._exit_status,
            error=stats.pop("last_error"),
            processing=stats,
            finished=time.time(),
        )
        logger.info("run %s: %s, %s", self.writer.raw_uid, self.stats["status"], self.health())
