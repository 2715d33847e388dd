"""Straight dead stripes (whole dead rows or columns) of a frame mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import GapMaskError


@dataclass(frozen=True)
class Stripe:
    """A run of whole dead rows or columns of a frame mask.

    Raises :class:`GapMaskError` if ``axis`` is not 0 or 1 or the run is empty.
    """

    axis: int
    """0: dead rows ``[start, stop)`` spanning the frame width; 1: dead columns."""
    start: int
    """First dead row (or column)."""
    stop: int
    """One past the last dead row (or column)."""

    def __post_init__(self) -> None:
        if self.axis not in (0, 1) or not 0 <= self.start < self.stop:
            raise GapMaskError(
                f"a stripe needs axis 0 or 1 and 0 <= start < stop, "
                f"got axis={self.axis}, start={self.start}, stop={self.stop}"
            )

    @property
    def width(self) -> int:
        """Number of dead rows (or columns)."""
        return self.stop - self.start


def _runs(mask: np.ndarray, axis: int) -> list[tuple[int, int]]:
    """Half-open ``(start, stop)`` of the runs of whole dead rows (0) or columns (1)."""
    dead = np.asarray(mask.all(axis=1 - axis), dtype=np.int8)
    edges = np.flatnonzero(np.diff(dead, prepend=0, append=0))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def stripes(mask: np.ndarray) -> list[Stripe]:
    """Find the straight dead stripes of a frame mask.

    A stripe is a run of consecutive rows (or columns) that are dead over the whole
    width (or height) of ``mask``; isolated dead pixels and partial lines are not
    stripes. A cross gives one row stripe and one column stripe.

    Parameters
    ----------
    mask : (ny, nx) ndarray of bool
        True = dead pixel, e.g. from :func:`gap_mask`.

    Returns
    -------
    list of Stripe
        Row stripes (``axis=0``) by increasing ``start``, then column stripes
        (``axis=1``) by increasing ``start``.

    Raises
    ------
    GapMaskError
        If ``mask`` is not a 2D bool array.

    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.bool_:
        raise GapMaskError(
            f"mask must be a (ny, nx) bool array, got shape {mask.shape} dtype {mask.dtype}"
        )
    return [Stripe(axis, start, stop) for axis in (0, 1) for start, stop in _runs(mask, axis)]
