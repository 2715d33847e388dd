"""Frames put in scan order by position: duplicates recognised, holes found, never guessed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


def frame_digest(frame: np.ndarray) -> bytes:
    """Return a 16-byte fingerprint of a frame's dtype, shape and values."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{frame.dtype.str}{frame.shape}".encode())
    digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.digest()


def as_ranges(positions: list[int]) -> list[list[int]]:
    """Return positions as sorted half-open runs: ``[3, 4, 7] -> [[3, 5], [7, 8]]``."""
    runs: list[list[int]] = []
    for p in sorted(positions):
        if runs and runs[-1][1] == p:
            runs[-1][1] = p + 1
        else:
            runs.append([p, p + 1])
    return runs


@dataclass
class FrameAssembly:
    """Frames of one run, placed by their position in the scan (from 0).

    Frames handed in at any position wait until every earlier one is there, then come
    out in order (:meth:`pop_ready`). A position seen twice with the same values is a
    duplicate (ignored, counted); with other values it is a conflict (reported: the
    caller fails the run). Positions that never arrive, or whose frames could not be
    read, are the holes :meth:`missing` lists.

    Attributes
    ----------
    next_position : int
        First position not handed out yet.
    duplicates : int
        Frames received again with the same values.
    """

    next_position: int = 0
    duplicates: int = 0
    frame_shape: tuple[int, ...] | None = None
    _held: dict[int, np.ndarray] = field(default_factory=dict)
    _digests: dict[int, bytes] = field(default_factory=dict)
    _unreadable: dict[int, str] = field(default_factory=dict)

    def add(self, first: int, frames: np.ndarray) -> list[int]:
        """Take frames at positions ``first, first + 1, ...``; return conflicting positions.

        Parameters
        ----------
        first : int
            Position of ``frames[0]``.
        frames : (k, ny, nx) ndarray
            The frames (kept as given, not copied; never modified).

        Returns
        -------
        list of int
            Positions already received with different values (nothing of them is kept).
        """
        if self.frame_shape is None and len(frames):
            self.frame_shape = tuple(frames.shape[1:])
        if len(frames) and tuple(frames.shape[1:]) != self.frame_shape:
            raise ValueError(
                f"frames at position {first} have shape {frames.shape[1:]}, "
                f"the run's frames {self.frame_shape}"
            )
        conflicts = []
        for i, frame in enumerate(frames):
            position = first + i
            digest = frame_digest(frame)
            if position in self._digests:
                if self._digests[position] == digest:
                    self.duplicates += 1
                else:
                    conflicts.append(position)
                continue
            self._digests[position] = digest
            self._unreadable.pop(position, None)
            if position >= self.next_position:
                self._held[position] = frame
        return conflicts

    def unreadable(self, positions: range, reason: str) -> None:
        """Record positions whose frames could not be read (unless read before)."""
        for position in positions:
            if position not in self._digests:
                self._unreadable[position] = reason

    def pop_ready(self) -> np.ndarray | None:
        """Take the frames from :attr:`next_position` on with no hole before them, in order.

        Returns
        -------
        (k, ny, nx) ndarray or None
        """
        ready = []
        while self.next_position in self._held:
            ready.append(self._held.pop(self.next_position))
            self.next_position += 1
        return np.stack(ready) if ready else None

    @property
    def end(self) -> int:
        """One past the highest position received or reported unreadable."""
        return max([self.next_position - 1, *self._held, *self._unreadable]) + 1

    @property
    def held_bytes(self) -> int:
        """Bytes of the frames waiting behind a hole."""
        return sum(frame.nbytes for frame in self._held.values())

    def missing(self, count: int) -> list[int]:
        """Positions below ``count`` without a frame (never arrived, or unreadable)."""
        return [p for p in range(count) if p not in self._digests]

    def unreadable_reasons(self) -> dict[str, list[int]]:
        """Positions still unreadable, by reason."""
        by_reason: dict[str, list[int]] = {}
        for position, reason in sorted(self._unreadable.items()):
            by_reason.setdefault(reason, []).append(position)
        return by_reason

    def why_missing(self, missing: list[int]) -> str:
        """Say which of the ``missing`` positions were unreadable (why), which never came."""
        parts, unread = [], set()
        for reason, positions in self.unreadable_reasons().items():
            parts.append(f"frames {as_ranges(positions)} unreadable ({reason})")
            unread.update(positions)
        lost = [p for p in missing if p not in unread]
        if lost:
            parts.append(f"frames {as_ranges(lost)} never arrived (lost documents?)")
        return "; ".join(parts)

    def segments(self) -> list[tuple[int, np.ndarray]]:
        """Take the frames held behind holes, as ``(first position, frames)`` runs."""
        runs: list[tuple[int, list[np.ndarray]]] = []
        for position in sorted(self._held):
            if runs and runs[-1][0] + len(runs[-1][1]) == position:
                runs[-1][1].append(self._held[position])
            else:
                runs.append((position, [self._held[position]]))
        self._held.clear()
        return [(first, np.stack(frames)) for first, frames in runs]
