"""Documents of runs no processor has taken yet: which run each belongs to, kept bounded."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DOCUMENT_OVERHEAD = 1024
"""Bytes counted per buffered document besides its arrays (keys, small values)."""


def document_bytes(doc: dict[str, Any]) -> int:
    """Rough size of a document: its numpy arrays (inline frames) plus a fixed overhead."""
    data = doc.get("data")
    arrays = data.values() if isinstance(data, dict) else ()
    return DOCUMENT_OVERHEAD + sum(int(a.nbytes) for a in arrays if isinstance(a, np.ndarray))


class RunIndex:
    """Which run a document belongs to, as ``event_model.RunRouter`` finds it.

    Start and stop documents name it; descriptors and (stream) resources carry
    ``run_start``; events, event pages and stream datums name their descriptor; datums
    their resource. What a run registered is forgotten at its stop document.
    """

    def __init__(self) -> None:
        self._run_of: dict[str, str] = {}
        self._keys: dict[str, list[str]] = {}

    def run_of(self, name: str, doc: dict[str, Any]) -> str | None:
        """Return the run uid of ``doc`` (None if it cannot be told: an unknown descriptor)."""
        if name == "start":
            return str(doc["uid"])
        if name == "stop":
            return str(doc["run_start"])
        if name in ("descriptor", "resource", "stream_resource"):
            run = doc.get("run_start")
            if run is not None:
                self._run_of[str(doc["uid"])] = str(run)
                self._keys.setdefault(str(run), []).append(str(doc["uid"]))
            return None if run is None else str(run)
        if name in ("event", "event_page", "stream_datum"):
            return self._run_of.get(str(doc.get("descriptor")))
        if name in ("datum", "datum_page"):
            return self._run_of.get(str(doc.get("resource")))
        return None

    def forget(self, run: str) -> None:
        """Forget the descriptors and resources of ``run`` (after its stop document)."""
        for key in self._keys.pop(run, []):
            self._run_of.pop(key, None)


@dataclass
class _Held:
    documents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    nbytes: int = 0
    stopped_at: float | None = None


class RunBuffers:
    """The documents of runs not yet decided, in arrival order, within ``max_bytes``.

    A run is buffered only from its start document: a run first seen in the middle (a
    processor started during it) is not followable live, nor is one whose buffer was
    dropped to stay within ``max_bytes`` (the largest goes first) or kept longer than
    ``keep_after_stop`` seconds after its stop document. Those runs are remembered in
    :attr:`not_live` (the last ``remember`` of them): if this processor takes one, it
    processes it from Tiled.

    Parameters
    ----------
    max_bytes : int
        Bound on the buffered documents (:func:`document_bytes`), all runs together.
    keep_after_stop : float
        Seconds an undecided run is kept after its stop document.
    remember : int
        Runs kept in :attr:`not_live`.
    """

    def __init__(self, max_bytes: int, keep_after_stop: float, remember: int = 10_000) -> None:
        self.max_bytes, self.keep_after_stop, self.remember = max_bytes, keep_after_stop, remember
        self._held: dict[str, _Held] = {}
        self.not_live: OrderedDict[str, str] = OrderedDict()
        """Runs that cannot be followed live here, with why."""
        self.nbytes = 0
        self.dropped_runs = 0

    def __contains__(self, run: str) -> bool:
        return run in self._held

    def add(self, run: str, name: str, doc: dict[str, Any]) -> None:
        """Keep a document of an undecided run (or note that the run is not followable)."""
        if run in self.not_live:
            return
        held = self._held.get(run)
        if held is None:
            if name != "start":
                self.give_up(run, "its first documents came before this processor listened")
                return
            held = self._held[run] = _Held()
        size = document_bytes(doc)
        held.documents.append((name, doc))
        held.nbytes += size
        self.nbytes += size
        if name == "stop":
            held.stopped_at = time.monotonic()
        while self.nbytes > self.max_bytes and self._held:
            largest = max(self._held, key=lambda r: self._held[r].nbytes)
            self.give_up(largest, f"its documents overflowed the {self.max_bytes} B buffer")

    def take(self, run: str) -> list[tuple[str, dict[str, Any]]] | None:
        """Remove and return ``run``'s documents since its start (None: not followable)."""
        held = self._held.pop(run, None)
        if held is None:
            return None
        self.nbytes -= held.nbytes
        return held.documents

    def drop(self, run: str) -> None:
        """Forget ``run`` (another processor owns it)."""
        held = self._held.pop(run, None)
        if held is not None:
            self.nbytes -= held.nbytes

    def give_up(self, run: str, why: str) -> None:
        """Drop ``run`` and remember it as not followable live (``why``)."""
        if run in self._held:
            self.dropped_runs += 1
        self.drop(run)
        self.not_live[run] = why
        while len(self.not_live) > self.remember:
            self.not_live.popitem(last=False)

    def expire(self) -> None:
        """Give up the runs whose stop came more than ``keep_after_stop`` seconds ago."""
        now = time.monotonic()
        for run, held in list(self._held.items()):
            if held.stopped_at is not None and now - held.stopped_at > self.keep_after_stop:
                self.give_up(run, f"no processor took it within {self.keep_after_stop:g} s")

    @property
    def runs(self) -> int:
        """Runs buffered now."""
        return len(self._held)
