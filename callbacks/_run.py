"""The per-run callback: documents of one run in, frames handed to its worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bluesky_tiled_plugins.writing.tiled_writer import RunNormalizer
from event_model import DocumentRouter
from event_model.documents import (
    Datum,
    DatumPage,
    EventDescriptor,
    EventPage,
    Resource,
    RunStop,
    StreamDatum,
    StreamResource,
)

from bcdi_online.inpainting import GapInpainter
from bcdi_online.tiled_output import CorrectedRunWriter

from ._frames import FileFrames, FrameReader, FrameSlice, TiledFrames
from ._health import RunHealth
from ._sources import (
    detector_info,
    frames_per_event,
    mask_from_info,
    pick_field,
)
from ._worker import InpaintWorker

logger = logging.getLogger(__name__)

WriterFactory = Callable[..., CorrectedRunWriter]
"""``(raw_uid, gap_mask, metadata=...) -> CorrectedRunWriter``."""


class LiveGapInpainter(DocumentRouter):
    """Inpaint the detector gaps of one run while it is measured.

    Created by :class:`LiveInpainting` (a ``RunRouter`` factory) for each start
    document. At the first descriptor of ``stream_name`` it picks the detector field
    (``field``, else the single 2D data key; a run without one is ignored), finds the
    gap mask (``mask``, else start-document keys ``bcdi_detector`` / ``bcdi_roi`` /
    ``bcdi_maxipix_gap``, else the detector's ``detector_name`` / ``roi`` /
    ``maxipix_gap`` configuration, else the NeXus ``pixel_mask`` of its HDF5 file;
    never guessed from zero pixels: with none the output says ``failed`` and why),
    opens the Tiled output and starts an :class:`InpaintWorker`. A detector name or ROI
    the registry refuses makes the run ``failed`` at once, with a Tiled record. Frames
    come inline from ``event_page`` (ophyd v1) or from ``stream_resource`` /
    ``stream_datum`` (ophyd-async; legacy ``resource`` / ``datum`` of ophyd v1 are
    converted to those by bluesky-tiled-plugins' ``RunNormalizer``), read from the
    detector's files (:class:`FileFrames`) or from the raw run in Tiled
    (:class:`TiledFrames`, ``frames_from="tiled"``), each with its position in
    the scan: ``seq_num - 1`` of its event (``seq_nums`` of a stream datum; its
    ``indices`` when those are unset) times the frames per event. The ``stop`` document
    ends the run and says how many events the stream had (``num_events``), so lost
    trailing frames are found; a run whose frames came without their descriptor ends
    ``failed``, one without the stream ``ignored``.

    No exception leaves a document method: errors are logged, counted in
    :meth:`health` and end the run with status ``failed`` (bluesky's
    ``make_callback_safe`` rule for non-critical callbacks).

    Parameters
    ----------
    start : dict
        The run's start document.
    inpainter : GapInpainter
        Engine, shared by runs.
    writer_factory : callable
        Makes the run's :class:`~bcdi_online.tiled_output.CorrectedRunWriter`.
    field : str, optional
        Detector data key.
    mask : (ny, nx) bool ndarray, optional
        Gap mask of every run.
    stream_name : str
        Event stream holding the frames.
    queue_size : int
        Worker queue length before the overflow policy applies.
    metadata : dict, optional
        Extra output metadata (model, window plan).
    frames_from : {"files", "tiled"}
        Where stream-datum frames are read: the detector's files, or the raw run's
        array in ``raw_catalog`` (a processor without the detector's file system).
    raw_catalog : tiled.client container, optional
        Where TiledWriter saves the raw runs (needed for ``frames_from="tiled"``).
    **worker_options
        Passed to :class:`InpaintWorker` (``max_bad_fraction``, ``run_timeout``,
        ``file_timeout``).
    """

    def __init__(
        self,
        start: dict[str, Any],
        *,
        inpainter: GapInpainter,
        writer_factory: WriterFactory,
        field: str | None = None,
        mask: np.ndarray | None = None,
        stream_name: str = "primary",
        queue_size: int = 64,
        metadata: dict[str, Any] | None = None,
        frames_from: str = "files",
        raw_catalog: Any = None,
        **worker_options: Any,
    ) -> None:
        super().__init__()
        self.frames_from, self.raw_catalog = frames_from, raw_catalog
        self.reader: FrameReader | None = None
        self._stream_descriptors: dict[str, EventDescriptor] = {}
        self._read_resources: set[str] = set()
        self._normalizer: RunNormalizer | None = None
        self.worker_options = worker_options
        self._per_event = 1
        self.start_doc, self.uid = start, str(start["uid"])
        self.inpainter, self.writer_factory = inpainter, writer_factory
        self.field, self.mask, self.stream_name = field, mask, stream_name
        self.queue_size, self.extra_metadata = queue_size, dict(metadata or {})
        self.worker: InpaintWorker | None = None
        self.ignored: str | None = None
        self.errors = 0
        self.late = 0  # documents after the run ended (a run_timeout)
        self.last_error: str | None = None
        self._descriptors: set[str] = set()
        self._resources: dict[str, StreamResource] = {}

    def __call__(self, name: str, doc: dict, validate: bool = False) -> tuple[str, dict]:
        """Route a document; never raises (errors are contained and reported)."""
        if self.worker is not None:
            if self.worker.done and name in ("event_page", "event", "stream_datum"):
                if not self.late:
                    logger.warning(
                        "run %s already ended (%s): later documents ignored, replay the run",
                        self.uid,
                        self.worker.stats["status"],
                    )
                self.late += 1
                return name, doc
            self.worker.touch()
        try:
            return super().__call__(name, doc, validate)
        except Exception as err:
            self._contain(f"{name} document: {type(err).__name__}: {err}")
            return name, doc

    def _contain(self, message: str) -> None:
        logger.exception("run %s: %s", self.uid, message)
        self.errors += 1
        self.last_error = message
        if self.worker is not None:
            self.worker.fail(message)

    def descriptor(self, doc: EventDescriptor) -> None:
        """Pick the field and the mask at the first descriptor of ``stream_name``."""
        if doc.get("name") != self.stream_name or self.ignored:
            return
        self._stream_descriptors[doc["uid"]] = doc
        if self._normalizer is not None:
            self._normalizer.descriptor(doc)
        if self.worker is not None:  # a new descriptor of the same stream (config change)
            if self.field in doc.get("data_keys", {}):
                self._descriptors.add(doc["uid"])
            return
        field, reason = pick_field(doc, self.field)
        if field is None:
            self.ignored = reason
            logger.info("run %s ignored by live inpainting: %s", self.uid, reason)
            return
        self.field = field
        self._descriptors.add(doc["uid"])
        self._per_event = frames_per_event(doc["data_keys"][field])
        info = detector_info(self.start_doc, doc, field)
        mask, source, mask_error = self.mask, "mask argument", None
        if mask is None:
            try:
                mask = mask_from_info(info)
            except Exception as err:  # unknown detector, ROI outside it: the run fails
                mask_error = f"no gap mask for {info['source']}: {type(err).__name__}: {err}"
            source = str(info["source"])
        if mask is None and mask_error is None:
            source = (
                "no gap mask: pass mask=, or put bcdi_detector (and bcdi_roi) in the start "
                "document, or give the detector detector_name/roi configuration or a NeXus "
                "pixel_mask (zeros in the frames are not a reliable mask)"
            )
        self._start_worker(
            mask,
            source,
            mask_error,
            field=field,
            field_reason=reason,
            detector=info["detector"],
            roi=info["roi"],
            maxipix_gap=info["maxipix_gap"],
        )
        logger.info("run %s: live inpainting of %r (mask: %s)", self.uid, field, source)

    def _start_worker(
        self, mask: np.ndarray | None, source: str, mask_error: str | None, **metadata: Any
    ) -> InpaintWorker:
        metadata = {
            "scan_id": self.start_doc.get("scan_id"),
            "plan_name": self.start_doc.get("plan_name"),
            "raw_stream": self.stream_name,
            "started": time.time(),
            **metadata,
            **self.extra_metadata,
        }
        writer = self.writer_factory(self.uid, mask, metadata=metadata)
        self.reader = self._make_reader()
        points = self.start_doc.get("num_points")
        self.worker = InpaintWorker(
            self.inpainter,
            writer,
            mask,
            source,
            queue_size=self.queue_size,
            expected_frames=points * self._per_event
            if isinstance(points, int) and points > 0
            else None,
            mask_error=mask_error,
            reader=self.reader,
            **self.worker_options,
        )
        return self.worker

    def _make_reader(self) -> FrameReader:
        timeout = float(self.worker_options.get("file_timeout", 10.0))
        if self.frames_from == "tiled":
            field = str(self.field)
            return TiledFrames(self.raw_catalog, self.uid, self.stream_name, field, timeout)
        return FileFrames(timeout)

    def event_page(self, doc: EventPage) -> EventPage:
        """Inline frames (ophyd v1), placed by their event's ``seq_num``.

        ``data[field]`` holds one ``(ny, nx)`` frame an event (or ``(k, ny, nx)``).
        """
        if self.worker is None or doc["descriptor"] not in self._descriptors:
            return doc
        if self.field is None or self.field not in doc["data"]:
            return doc
        filled = doc.get("filled", {}).get(self.field)
        if filled is not None and not np.all(filled):  # datum ids: legacy resource/datum
            self._legacy().event_page(doc)  # -> stream_resource / stream_datum
            return doc
        k = self._per_event
        for seq_num, value in zip(doc["seq_num"], doc["data"][self.field], strict=True):
            frames = np.asarray(value)
            frames = frames.reshape(-1, *frames.shape[-2:])
            if len(frames) != k:
                raise ValueError(f"event {seq_num} holds {len(frames)} frames, expected {k}")
            self.worker.submit(frames, (int(seq_num) - 1) * k, k)
        return doc

    def _legacy(self) -> RunNormalizer:
        """bluesky-tiled-plugins' normaliser of this run's legacy documents (made once)."""
        if self._normalizer is None:
            self._normalizer = RunNormalizer()
            self._normalizer.subscribe(self._normalized)
            for descriptor in self._stream_descriptors.values():
                self._normalizer.descriptor(descriptor)
        return self._normalizer

    def _normalized(self, name: str, doc: dict[str, Any]) -> None:
        """Take the normaliser's output: only its stream documents are new here."""
        if name == "stream_resource":
            self.stream_resource(doc)  # type: ignore[arg-type]
        elif name == "stream_datum":
            self.stream_datum(doc)  # type: ignore[arg-type]

    def resource(self, doc: Resource) -> Resource:
        """Keep a legacy detector file (ophyd v1) in the normaliser until its datums."""
        self._legacy().resource(doc)
        return doc

    def datum(self, doc: Datum) -> Datum:
        """Keep a legacy datum: it becomes a ``stream_datum`` when its event arrives."""
        self._legacy().datum(doc)
        return doc

    def datum_page(self, doc: DatumPage) -> DatumPage:
        """Keep legacy datums, paged."""
        self._legacy().datum_page(doc)
        return doc

    def stream_resource(self, doc: StreamResource) -> None:
        """Remember a detector resource (ophyd-async, or a normalised legacy one)."""
        self._resources[doc["uid"]] = doc

    def stream_datum(self, doc: StreamDatum) -> None:
        """Frames ``indices[start:stop]`` of a remembered resource, read by the worker."""
        resource = self._resources.get(doc["stream_resource"])
        if self.worker is None or resource is None or resource["data_key"] != self.field:
            return
        if doc.get("descriptor") not in self._descriptors or self.reader is None:
            return
        if resource["uid"] not in self._read_resources:
            self.reader.add_resource(resource, self._stream_descriptors[doc["descriptor"]])
            self._read_resources.add(resource["uid"])
        start, stop = int(doc["indices"]["start"]), int(doc["indices"]["stop"])
        seq = doc.get("seq_nums") or {}
        first_event = int(seq.get("start", 0))
        row = first_event - 1 if first_event >= 1 else start
        piece = FrameSlice(resource["uid"], start, stop, row)
        self.worker.submit(piece, row * self._per_event, stop - start)

    def stop(self, doc: RunStop) -> None:
        """End of the run: let the worker finish (or say why the run was not followed)."""
        events = (doc.get("num_events") or {}).get(self.stream_name)
        announced = int(events) * self._per_event if isinstance(events, int) else None
        if self.worker is None and not self.ignored:
            if announced:  # frames came, but we never saw their descriptor
                reason = (
                    f"the stop document reports {events} {self.stream_name!r} events but "
                    "their descriptor never arrived (lost document?): replay the run"
                )
                self._start_worker(None, reason, reason)
            else:
                self.ignored = f"no {self.stream_name!r} stream in the run"
        if self._normalizer is not None:  # datums that came after their events
            try:
                self._normalizer.stop(doc)
            except RuntimeError as err:  # a lost datum: its frames are missing
                logger.warning("run %s: %s", self.uid, err)
        if self.worker is not None:
            self.worker.stop(str(doc.get("exit_status", "success")), announced)

    def interrupt(self, reason: str) -> None:
        """End the run ``interrupted`` without further processing (the service stops)."""
        if self.worker is not None:
            self.worker.interrupt(reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run's processing and upload to end; True if done (or ignored)."""
        return self.worker is None or self.worker.wait(timeout)

    def health(self) -> RunHealth:
        """Health of the run: worker and upload state, or why it is ignored."""
        base: RunHealth = {"run_uid": self.uid, "field": self.field}
        if self.worker is None:
            base["status"] = "ignored" if self.ignored else "waiting"
            base["reason"] = self.ignored
        else:
            base.update(self.worker.health())
        if self.errors:
            base["callback_errors"] = self.errors
            base["last_callback_error"] = self.last_error
        return base
