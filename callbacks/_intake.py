"""The overflow policy: frames handed over in scan order, the giver never waits."""

from __future__ import annotations

import queue

import numpy as np

from ._frames import FrameSlice

Item = np.ndarray | FrameSlice
"""A queue item: inline frames ``(k, ny, nx)`` or the frames of a stream datum."""

Entry = tuple[int, Item]
"""An item and the scan position of its first frame."""


def count(item: Item) -> int:
    """Frames in an item."""
    return len(item) if isinstance(item, np.ndarray) else item.stop - item.start


def size(item: Item) -> int:
    """Bytes an item holds in memory (a frame slice holds none of its frames)."""
    return item.nbytes if isinstance(item, np.ndarray) else 0


class Intake:
    """A bounded queue, then an unbounded overflow list, in order; never blocks.

    :meth:`put` uses ``put_nowait``; when the queue is full (or items already wait in
    the overflow list) the entry goes, in order, to the overflow list. The consumer
    takes queue entries one by one and the overflow in slabs of up to ``chunk`` frames,
    so a long backlog never becomes one huge batch. Not thread-safe by itself: the
    caller holds its lock around :meth:`put` and :meth:`take_overflow`.

    Parameters
    ----------
    queue_size : int
        Entries the queue holds before overflow.
    chunk : int
        Frames the consumer takes at most from the overflow at once.
    """

    def __init__(self, queue_size: int, chunk: int) -> None:
        self._queue: queue.Queue[Entry] = queue.Queue(maxsize=queue_size)
        self._overflow: list[Entry] = []
        self.chunk = chunk
        self.bytes = 0  # inline frames waiting, queue and overflow

    def put(self, entry: Entry) -> bool:
        """Hand over an entry; True when the queue was full (a new overflow event)."""
        self.bytes += size(entry[1])
        if self._overflow:  # keep the order: once overflowing, append behind
            self._overflow.append(entry)
            return False
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._overflow.append(entry)
            return True
        return False

    def take_overflow(self) -> list[Entry] | None:
        """Take the next slab of the overflow when the queue is empty (else None)."""
        if not self._queue.empty() or not self._overflow:
            return None
        taken, frames = 0, 0
        while taken < len(self._overflow) and frames < self.chunk:
            frames += count(self._overflow[taken][1])
            taken += 1
        batch, self._overflow = self._overflow[:taken], self._overflow[taken:]
        return batch

    def empty(self) -> bool:
        """Whether nothing waits."""
        return self._queue.empty() and not self._overflow

    def get(self, timeout: float) -> Entry | None:
        """Take the next queue entry, waiting up to ``timeout`` seconds (else None)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def taken(self, item: Item) -> None:
        """Note that an item left the intake (for the byte count)."""
        self.bytes -= size(item)

    @property
    def depth(self) -> int:
        """Entries in the queue."""
        return self._queue.qsize()

    @property
    def overflow_frames(self) -> int:
        """Frames in the overflow list."""
        return sum(count(item) for _, item in self._overflow)
