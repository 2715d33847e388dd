"""Random detector-like gap masks for training patches."""

from __future__ import annotations

import numpy as np

#: Widths seen at beamlines get extra weight: MAXIPIX 6 (and 4), EIGER 12.
COMMON_WIDTHS = (4, 6, 6, 6, 12, 12)


def _stripe(
    n: int, width: int, rng: np.random.Generator, jitter: int, centre: int | None = None
) -> slice:
    first = (n - width) // 2 if centre is None else centre - width // 2
    start = first + int(rng.integers(-jitter, jitter + 1))
    start = int(np.clip(start, 1, n - width - 1))
    return slice(start, start + width)


def random_gap_mask(
    shape: tuple[int, int, int],
    rng: np.random.Generator,
    *,
    max_width: int | None = None,
    through: tuple[int, int] | None = None,
) -> np.ndarray:
    """Draw a gap mask for one canonical patch (rocking, along stripe, across stripe).

    The main stripe is a band of dead columns (last axis) near the middle of the patch,
    3 px up to the widest the patch allows with >= 10 px of context on each side. With
    probability 0.3 a crossing stripe (dead rows, middle axis) is added, with 0.1 a
    second parallel stripe, with 0.1 some isolated dead pixels.

    Parameters
    ----------
    shape : tuple of int
        Patch shape (D, H, W).
    rng : numpy.random.Generator
        Source of randomness.
    max_width : int, optional
        Largest main stripe width; default ``W - 20``.
    through : tuple of int, optional
        (row, column) the stripes run through (within 1 px), e.g. the patch's brightest
        voxel: a gap through the Bragg peak's core. Default: near the middle.

    Returns
    -------
    (D, H, W) bool ndarray
        True = gap.
    """
    d, h, w = shape
    max_width = max_width or w - 20
    if w > 32:  # wide patches exist for wide gaps
        width = int(rng.integers(13, max_width + 1))
    elif rng.random() < 0.6:
        width = int(rng.choice(COMMON_WIDTHS))
    else:
        width = int(rng.integers(3, max_width + 1))
    row, column = (None, None) if through is None else through
    mask2d = np.zeros((h, w), dtype=bool)
    mask2d[:, _stripe(w, width, rng, jitter=4 if through is None else 1, centre=column)] = True
    if rng.random() < 0.1 and width <= 8:
        mask2d[:, _stripe(w, width, rng, jitter=(w - width) // 2 - 2)] = True
    if rng.random() < 0.3:
        cross = int(rng.choice(COMMON_WIDTHS)) if rng.random() < 0.7 else int(rng.integers(3, 13))
        mask2d[_stripe(h, cross, rng, jitter=8 if through is None else 1, centre=row), :] = True
    if rng.random() < 0.1:
        n_dead = int(rng.integers(1, 20))
        mask2d[rng.integers(0, h, n_dead), rng.integers(0, w, n_dead)] = True
    return np.broadcast_to(mask2d, (d, h, w)).copy()
