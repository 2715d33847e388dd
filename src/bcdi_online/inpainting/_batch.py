"""Windows per predictor call, shared by an inpainter and its streams."""

from __future__ import annotations

import threading

from .._errors import ConfigurationError


class BatchSize:
    """The batch size an inpainter's streams use, halved for good on out-of-memory.

    Streams of one :class:`~bcdi_online.inpainting.GapInpainter` (one per live run,
    possibly in several threads) share one instance, so a batch too large for the
    device is found once, not again in every run.

    Parameters
    ----------
    requested : int
        The batch size asked for (or chosen from free GPU memory).

    Attributes
    ----------
    requested : int
        As given.
    value : int
        The largest batch size not known to fail: ``requested`` until an
        out-of-memory error, then halved.
    halvings : int
        Out-of-memory errors seen so far.
    """

    def __init__(self, requested: int) -> None:
        if requested < 1:
            raise ConfigurationError(f"batch size {requested} must be >= 1")
        self.requested = self.value = requested
        self.halvings = 0
        self._lock = threading.Lock()

    def halve(self, failed: int) -> int:
        """Record that a batch of ``failed`` windows ran out of memory; the new size."""
        with self._lock:
            self.value = max(1, min(self.value, failed // 2))
            self.halvings += 1
            return self.value
