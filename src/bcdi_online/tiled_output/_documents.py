"""Bluesky documents of a corrected scan: a run of its own, its frames in a result file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import event_model

from ._fallback import jsonable
from ._result_file import FRAMES_DATASET, MASK_DATASET

FRAMES_STREAM = "primary"
"""Stream of the corrected frames (data key ``corrected``), one event per scan position."""

MASK_STREAM = "gap_mask"
"""Stream of the dead-pixel mask (data key ``gap_mask``), one event."""

EXIT_STATUS: dict[str, Literal["success", "abort"]] = {"complete": "success", "aborted": "abort"}
"""The stop document's ``exit_status`` of a final status (``fail`` for any other)."""


class CorrectedRunDocuments:
    """Compose the documents of one corrected scan with event-model, in order.

    Start (``original_run_uid``, ``scan_id``, ``plan_name`` of the raw run and the
    ``bcdi_online`` provenance block), then per stream a descriptor and a
    ``stream_resource`` pointing at the result file, a ``stream_datum`` per slab of
    frames declared final, and the stop document (``exit_status`` / ``reason``, and the
    final ``bcdi_online`` block with ``status``).

    Parameters
    ----------
    result_uid : str
        Uid of the corrected run.
    raw_uid : str
        Uid of the raw run (``original_run_uid``).
    metadata : dict
        The ``bcdi_online`` block; its ``scan_id`` and ``plan_name`` are also copied
        to the top level (as the raw run has them) when set.
    path : Path or None
        The result file; None for a run that failed before its frame shape was known
        (start and stop only).
    frame_shape : tuple of int or None
        ``(ny, nx)``.
    """

    def __init__(
        self,
        result_uid: str,
        raw_uid: str,
        metadata: dict[str, Any],
        path: Path | None,
        frame_shape: tuple[int, ...] | None,
    ) -> None:
        top = {k: metadata[k] for k in ("scan_id", "plan_name") if metadata.get(k) is not None}
        self._run = event_model.compose_run(
            uid=result_uid,
            metadata={"original_run_uid": raw_uid, **top, "bcdi_online": jsonable(metadata)},
        )
        self.start = self._run.start_doc
        self._frames = self._mask = None
        if path is not None and frame_shape is not None:
            uri = f"file://localhost{Path(path).absolute()}"
            ny, nx = frame_shape
            self._frames = self._stream(
                FRAMES_STREAM, "corrected", "<f4", uri, FRAMES_DATASET, ny, nx
            )
            self._mask = self._stream(MASK_STREAM, "gap_mask", "|u1", uri, MASK_DATASET, ny, nx)
        self.declared = 0
        """Frames declared by stream datums so far."""

    def _stream(
        self, name: str, key: str, dtype: str, uri: str, dataset: str, ny: int, nx: int
    ) -> tuple[Any, Any, Any]:
        data_key = {
            "source": "bcdi_online",
            "dtype": "array",
            "dtype_numpy": dtype,
            "shape": [ny, nx],
            "external": "STREAM:",
        }
        descriptor = self._run.compose_descriptor(name=name, data_keys={key: data_key})
        resource = self._run.compose_stream_resource(  # type: ignore[misc]
            mimetype="application/x-hdf5",
            uri=uri,
            data_key=key,
            parameters={"dataset": dataset, "chunk_shape": [1, ny, nx], "swmr": True},
        )
        return (
            descriptor.descriptor_doc,
            resource.stream_resource_doc,
            resource.compose_stream_datum,
        )

    def opening(self) -> list[tuple[str, dict[str, Any]]]:
        """Start, both descriptors and stream resources, and the mask's one datum."""
        if self._mask is None or self._frames is None:
            return [("start", dict(self.start))]
        mask_descriptor, mask_resource, mask_datum = self._mask
        frames_descriptor, frames_resource, _ = self._frames
        return [
            ("start", dict(self.start)),
            ("descriptor", dict(mask_descriptor)),
            ("stream_resource", dict(mask_resource)),
            ("stream_datum", dict(self._datum(mask_datum, mask_descriptor, 0, 1))),
            ("descriptor", dict(frames_descriptor)),
            ("stream_resource", dict(frames_resource)),
        ]

    @staticmethod
    def _datum(compose: Any, descriptor: dict[str, Any], start: int, stop: int) -> Any:
        return compose(
            indices={"start": start, "stop": stop},
            seq_nums={"start": start + 1, "stop": stop + 1},
            descriptor=descriptor,
        )

    def declare(self, n_frames: int) -> list[tuple[str, dict[str, Any]]]:
        """Return the stream datum declaring frames ``[declared, n_frames)`` final, if any."""
        if n_frames <= self.declared or self._frames is None:
            return []
        descriptor, _, compose = self._frames
        datum = self._datum(compose, descriptor, self.declared, n_frames)
        self.declared = n_frames
        return [("stream_datum", dict(datum))]

    def stop(self, status: str, reason: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Return the stop document of a run ending with ``status`` (one of the final statuses)."""
        stop = dict(
            self._run.compose_stop(exit_status=EXIT_STATUS.get(status, "fail"), reason=reason)
        )
        if self._frames is not None:
            stop["num_events"] = {FRAMES_STREAM: self.declared, MASK_STREAM: 1}
        stop["bcdi_online"] = jsonable({**metadata, "status": status})
        return stop
