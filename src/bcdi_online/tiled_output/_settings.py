"""Settings of the Tiled output: layout names, statuses and the retry policy."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .._errors import ConfigurationError

DEFAULT_GROUP = "bcdi_online"
"""Container, under the client node given to the writer, holding one container per raw run."""

SPEC = "BcdiCorrectedScan"
"""Tiled spec of a corrected-scan container."""

STATUSES = ("running", "complete", "incomplete", "aborted", "failed", "interrupted")
"""Values of the ``status`` metadata key; every one but ``running`` is final:

- ``complete``: every frame of the scan, in order, corrected and persisted;
- ``incomplete``: frames are missing (lost documents, unreadable detector files); the
  corrected volume has NaN frames there and ``processing.missing_frames`` lists them;
- ``aborted``: the scan itself stopped early (stop document ``abort`` / ``fail``);
- ``failed``: this processing failed (reason in ``error``); do not use the volume;
- ``interrupted``: the service stopped or restarted before the run ended (replay it).
"""

FINAL_STATUSES = STATUSES[1:]
"""The statuses a run ends with."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry Tiled uploads, and when to give up on Tiled and write the local file.

    Each upload attempt already includes the Tiled client's own retries (stamina, set by
    ``TILED_RETRY_ATTEMPTS`` / ``TILED_RETRY_TIMEOUT`` in the environment before
    ``tiled`` is imported); the back-off below only spaces whole attempts while a scan
    runs. ``fallback_after`` is a hard bound: that many seconds after a run ends, its
    result is written to the local fallback file even if an upload is still hanging.

    Attributes
    ----------
    first_delay : float
        Seconds before the next attempt after a failed one.
    factor : float
        Delay multiplier after each further failure.
    max_delay : float
        Upper bound of a delay, in seconds.
    fallback_after : float
        Seconds after the end of a run before its result goes to the local file when
        Tiled has not taken it.
    """

    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    fallback_after: float = 60.0

    def __post_init__(self) -> None:
        if self.fallback_after < 0 or self.first_delay < 0 or self.max_delay < 0:
            raise ConfigurationError(f"retry delays must be >= 0, got {self}")

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1)."""
        return min(self.max_delay, self.first_delay * self.factor ** max(0, failures - 1))


def bound_client_retries(fallback_after: float) -> None:
    """Bound the Tiled client's own retries, unless the environment already sets them.

    The client (stamina) reads ``TILED_RETRY_ATTEMPTS`` / ``TILED_RETRY_TIMEOUT`` once,
    when ``tiled`` is imported; its defaults (10 attempts within 45 s per request) would
    keep an upload thread hanging long after a run fell back to its local file. A
    service calls this before importing ``tiled``: 5 attempts within
    ``fallback_after / 3`` seconds (at least 1 s).
    """
    os.environ.setdefault("TILED_RETRY_ATTEMPTS", "5")
    os.environ.setdefault("TILED_RETRY_TIMEOUT", f"{max(1.0, fallback_after / 3):g}")
