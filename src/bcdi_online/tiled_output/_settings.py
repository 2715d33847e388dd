"""Settings of the Tiled output: layout names and the retry policy."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_GROUP = "bcdi_online"
"""Container, under the client node given to the writer, holding one container per raw run."""

SPEC = "BcdiCorrectedScan"
"""Tiled spec of a corrected-scan container."""

STATUSES = ("running", "complete", "aborted", "failed")
"""Values of the ``status`` metadata key."""


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off of Tiled writes (on top of the Tiled client's own retries).

    Attributes
    ----------
    first_delay : float
        Seconds before the first retry after a failed write.
    factor : float
        Delay multiplier after each further failure.
    max_delay : float
        Upper bound of a delay, in seconds.
    final_attempts : int
        Attempts after the scan ended before the result goes to the local fallback file.
    """

    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    final_attempts: int = 5

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1)."""
        return min(self.max_delay, self.first_delay * self.factor ** max(0, failures - 1))
