"""Settings of the Tiled output: layout names, statuses, the Tiled client's retries."""

from __future__ import annotations

import os

DEFAULT_GROUP = "bcdi_online"
"""Container, beside the corrected runs, holding their products (``<group>/<result uid>/``)."""

STATUSES = ("running", "complete", "incomplete", "aborted", "failed", "interrupted")
"""Statuses of a corrected run (its stop document's ``bcdi_online.status``; ``running``
while it has no stop document); every one but ``running`` is final:

- ``complete``: every frame of the scan, in order, corrected and persisted;
- ``incomplete``: frames are missing (lost documents, unreadable detector files); the
  corrected volume has NaN frames there and ``processing.missing_frames`` lists them;
- ``aborted``: the scan itself stopped early (stop document ``abort`` / ``fail``);
- ``failed``: this processing failed (reason in ``error``); do not use the volume;
- ``interrupted``: the service stopped or restarted before the run ended (replay it).
"""

FINAL_STATUSES = STATUSES[1:]
"""The statuses a run ends with."""


def bound_client_retries(fallback_after: float) -> None:
    """Bound the Tiled client's own retries, unless the environment already sets them.

    The client (stamina) reads ``TILED_RETRY_ATTEMPTS`` / ``TILED_RETRY_TIMEOUT`` once,
    when ``tiled`` is imported; its defaults (10 attempts within 45 s per request) would
    keep an upload thread hanging long after a run fell back to its result file. A
    service calls this before importing ``tiled``: 5 attempts within
    ``fallback_after / 3`` seconds (at least 1 s).
    """
    os.environ.setdefault("TILED_RETRY_ATTEMPTS", "5")
    os.environ.setdefault("TILED_RETRY_TIMEOUT", f"{max(1.0, fallback_after / 3):g}")
