"""The health record of a live run: one typed dictionary for every reader.

The worker, the upload and the run fill it; the Tango device, the CLI, the service and
the benchmarks read it by key. Every key is listed here with its type, so a reader
asking for a key that does not exist fails the type check instead of reading None.
"""

from __future__ import annotations

from typing import Any, TypedDict


class RunHealth(TypedDict, total=False):
    """What :meth:`LiveInpainting.health` reports about one run (keys appear as known)."""

    # the run
    run_uid: str
    field: str | None
    status: str  # waiting, ignored, running, then a final status (EXIT_STATUS)
    reason: str | None  # why a run is ignored
    phase: str  # receiving, finishing, saving, scan_end, done
    callback_errors: int
    last_callback_error: str | None
    last_error: str | None
    # frames
    expected_frames: int | None
    frames_received: int
    frames_processed: int
    frames_final: int
    frames_republished: int
    frames_failed: int
    frames_missing: int
    missing_frames: list[list[int]]  # half-open [start, stop) runs of positions
    missing_reason: str
    frames_conflicting: list[list[int]]
    duplicates_ignored: int
    bad_pixels: int
    bad_frames: list[list[int]]
    # work and load
    windows: int
    batch_size: int
    queue_depth: int
    overflow_frames: int
    overflow_events: int
    degraded: bool
    backlog_bytes: int
    peak_backlog_bytes: int
    read_s: float
    inpaint_s: float
    max_latency_s: float
    # upload (CorrectedRunWriter.state)
    corrected_run_uid: str
    tiled_path: str | None
    frames_appended: int
    frames_in_tiled: int
    write_failures: int
    last_write_error: str | None
    local_fallback: str | None
    saved_to: str | None
    save_error: str | None
    writer_done: bool
    # after the run (fill uncertainty, crystal)
    scan_end: dict[str, Any]
