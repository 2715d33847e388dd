"""Window planning: where, across the detector frame, the gap mask needs predictions.

Windows are planned in the frame (y, x) once; the rocking axis is tiled separately by
:func:`rocking_windows`, a pure function of the number of frames, so a live stream and an
offline call process exactly the same windows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .._errors import ConfigurationError, GapMaskError
from ..detectors import stripes


@dataclass(frozen=True)
class WindowPlan:
    """Plan settings (the window parameters written to provenance metadata).

    Attributes
    ----------
    depth : int
        Window size along the rocking axis.
    length : int
        Window size along a stripe.
    context : int
        Measured pixels wanted on each side of a gap, across it.
    size_multiple : int
        Window sizes are rounded up to a multiple of this (the model's requirement).
    overlap : float
        Fractional overlap of neighbouring windows along the rocking and stripe axes.
    tail_depth : int
        Depth of the last window along the rocking axis, which alone covers the last
        ``tail_depth // 2`` frames; shallower than ``depth``, it is the only work left when
        a live scan ends (see :func:`rocking_windows`). ``depth`` (or 0) turns it off.
    end_margin : int
        With a tail, the last full window starts at least this many frames after the
        last regularly spaced one, so that the two never both wait for the scan's last
        few frames (capped at ``depth - stride + 1``, which keeps the frames covered).
    """

    depth: int = 32
    length: int = 32
    context: int = 13
    size_multiple: int = 4
    overlap: float = 0.25
    tail_depth: int = 12
    end_margin: int = 8

    def __post_init__(self) -> None:
        if not 0 <= self.tail_depth <= self.depth or self.tail_depth % self.size_multiple:
            raise ConfigurationError(
                f"tail_depth {self.tail_depth} must be a multiple of size_multiple "
                f"{self.size_multiple} in [0, depth {self.depth}]"
            )
        if self.end_margin < 0:
            raise ConfigurationError(f"end_margin {self.end_margin} must be >= 0")

    @property
    def tail_reserve(self) -> int:
        """Frames at the end of a scan that only the tail window covers (0: no tail)."""
        return self.tail_depth // 2 if 0 < self.tail_depth < self.depth else 0

    @property
    def margin(self) -> int:
        """``end_margin`` capped so that regular and pulled-back windows leave no gap."""
        return min(self.end_margin, self.depth - self.stride + 1)

    @property
    def settle_frames(self) -> int:
        """Frames needed after a regular window's end before every longer scan plans it."""
        return self.tail_reserve + self.margin if self.tail_reserve else 0

    @property
    def stride(self) -> int:
        """Step between window starts along the rocking axis."""
        return max(1, round(self.depth * (1 - self.overlap)))

    @property
    def along_stride(self) -> int:
        """Step between window starts along a stripe (or a dead region's longer side)."""
        return max(1, round(self.length * (1 - self.overlap)))

    def across(self, width: int) -> int:
        """Window size across a gap of ``width`` pixels."""
        size = max(self.length, width + 2 * self.context)
        return -(-size // self.size_multiple) * self.size_multiple


@dataclass(frozen=True)
class SpatialWindow:
    """A window in the frame; ``transposed`` when its stripe runs along x (dead rows).

    Attributes
    ----------
    y0, x0 : int
        Top-left corner in (padded) frame pixels.
    height, width : int
        Extent along y and x in the frame.
    transposed : bool
        Predict on the (rocking, x, y) orientation, so the gap always runs along the
        window's middle axis and the model sees it across its last axis.
    """

    y0: int
    x0: int
    height: int
    width: int
    transposed: bool

    @property
    def slices(self) -> tuple[slice, slice]:
        """(y, x) slices of the window in the frame."""
        return slice(self.y0, self.y0 + self.height), slice(self.x0, self.x0 + self.width)


def dense_starts(size: int, window: int, stride: int) -> list[int]:
    """Window starts covering ``[0, size)``, the last one pulled back to end at the edge."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def rocking_windows(n_frames: int, plan: WindowPlan) -> list[tuple[int, int]]:
    """Windows (start, depth) along the rocking axis for a scan of ``n_frames`` frames.

    Full-depth windows at regular starts (every ``plan.stride`` frames, ending at least
    ``plan.settle_frames`` before the end) and one pulled back to end ``reserve =
    plan.tail_reserve`` frames before it cover ``[0, n_frames - reserve)``; a
    ``plan.tail_depth`` window covers the last frames, overlapping the full ones by
    ``reserve``. So a live scan can run every full window before its last ``reserve``
    frames arrive, the last two full windows are ``plan.margin`` frames or more apart
    (unless the scan is too short), and the work left at the end is
    ``tail_depth / depth`` of a rocking position. Scans too short for a tail get full
    windows only; shorter than ``plan.depth``, a single window (the caller pads the
    frames).

    Parameters
    ----------
    n_frames : int
        Number of frames of the scan.
    plan : WindowPlan
        Settings.

    Returns
    -------
    list of (int, int)
        (first frame, depth) of each window, in increasing start order.
    """
    reserve = plan.tail_reserve
    if not reserve or n_frames - reserve < plan.depth:
        return [(s, plan.depth) for s in dense_starts(n_frames, plan.depth, plan.stride)]
    last_full = n_frames - reserve - plan.depth
    regular = range(0, max(0, last_full - plan.margin) + 1, plan.stride)
    starts = [s for s in regular if s != last_full] + [last_full]
    return [(s, plan.depth) for s in starts] + [(n_frames - plan.tail_depth, plan.tail_depth)]


Window = tuple[int, int]
"""A rocking window: (first frame, depth)."""


@dataclass(frozen=True)
class StreamSchedule:
    """What a stream of frames may run once it holds ``n_frames`` (:func:`schedule_stream`).

    Attributes
    ----------
    settle : list of (int, int)
        Regular windows that belong to the plan of every longer scan: accumulate them
        for good (in start order).
    speculate : list of (int, int)
        Windows of the expected scan's plan whose frames exist, neither settled nor
        held: run them now and hold their results until the scan's length is known.
    next_start : int
        First frame of the next regular window.
    final : int
        Frames ``[0, final)`` that no later window will change.
    """

    settle: list[Window]
    speculate: list[Window]
    next_start: int
    final: int


def schedule_stream(
    n_frames: int,
    next_start: int,
    plan: WindowPlan,
    *,
    expected_frames: int | None = None,
    done: Collection[Window] = (),
) -> StreamSchedule:
    """Decide which rocking windows a live stream may run now: a pure function.

    A full window at a regular start belongs to :func:`rocking_windows` of every scan
    that has ``plan.settle_frames`` frames after it, so it can run for good as soon as
    those frames exist. With an expected scan length, the other windows of that plan
    whose frames exist can run early; their results are held, since the scan may end
    with another length.

    Parameters
    ----------
    n_frames : int
        Frames received so far.
    next_start : int
        First frame of the next regular window not yet settled (0 at the start).
    plan : WindowPlan
    expected_frames : int, optional
        The scan's announced length (``num_points`` of its start document).
    done : collection of (int, int)
        Windows already settled or held.

    Returns
    -------
    StreamSchedule
    """
    depth = plan.depth
    settle = []
    while next_start + depth + plan.settle_frames <= n_frames:
        settle.append((next_start, depth))
        next_start += plan.stride
    speculate: list[Window] = []
    if expected_frames is not None and depth <= n_frames <= expected_frames:
        taken = set(done) | set(settle)
        speculate = [
            (s, d)
            for s, d in rocking_windows(expected_frames, plan)
            if s + d <= n_frames and (s, d) not in taken
        ]
    final = max(0, min(next_start, n_frames - depth - plan.tail_reserve))
    return StreamSchedule(settle, speculate, next_start, final)


def _centred(centre: float, size: int, extent: int) -> int:
    return int(np.clip(round(centre - size / 2), 0, extent - size))


def _region_windows(
    box: tuple[slice, slice], shape: tuple[int, int], plan: WindowPlan
) -> list[SpatialWindow]:
    """Windows along the longer side of a dead region's bounding box, centred across it."""
    ys, xs = box
    transposed = xs.stop - xs.start > ys.stop - ys.start  # wider than tall: along x
    along, across = (xs, ys) if transposed else (ys, xs)
    along_extent, across_extent = shape[::-1] if transposed else shape
    size = plan.across(across.stop - across.start)
    if size > across_extent:
        raise GapMaskError(f"dead region {box} is too large for a frame of shape {shape}")
    c0 = _centred((across.start + across.stop) / 2, size, across_extent)
    lo = max(0, along.start - plan.context)
    hi = min(along_extent, along.stop + plan.context)
    starts = [
        int(np.clip(lo + start, 0, along_extent - plan.length))
        for start in dense_starts(hi - lo, plan.length, plan.along_stride)
    ]
    if transposed:
        return [SpatialWindow(c0, a0, size, plan.length, True) for a0 in starts]
    return [SpatialWindow(a0, c0, plan.length, size, False) for a0 in starts]


def min_frame_shape(mask: np.ndarray, plan: WindowPlan) -> tuple[int, int]:
    """Smallest frame (ny, nx) that holds every window the mask needs (pad to it)."""
    widths = [s.width for s in stripes(mask)] or [0]
    size = plan.across(max(widths))
    return max(size, plan.length), max(size, plan.length)


def plan_frame(mask: np.ndarray, plan: WindowPlan) -> list[SpatialWindow]:
    """Plan windows over every dead pixel of a frame mask.

    Straight stripes get windows along their length, centred across them, wide enough
    for the gap plus ``plan.context`` pixels each side; remaining dead pixels (short
    segments, single pixels) get windows around each connected component.

    Parameters
    ----------
    mask : (ny, nx) bool ndarray
        Dead pixels; the frame must be at least :func:`min_frame_shape`.
    plan : WindowPlan
        Settings.

    Returns
    -------
    list of SpatialWindow
    """
    ny, nx = mask.shape
    windows: list[SpatialWindow] = []
    covered = np.zeros_like(mask)
    for stripe in stripes(mask):
        size = plan.across(stripe.width)
        centre = (stripe.start + stripe.stop) / 2
        if stripe.axis == 1:  # dead columns: along y, across x
            x0 = _centred(centre, size, nx)
            for y0 in dense_starts(ny, plan.length, plan.along_stride):
                windows.append(SpatialWindow(y0, x0, plan.length, size, False))
            covered[:, stripe.start : stripe.stop] = True
        else:  # dead rows: along x, across y
            y0 = _centred(centre, size, ny)
            for x0 in dense_starts(nx, plan.length, plan.along_stride):
                windows.append(SpatialWindow(y0, x0, size, plan.length, True))
            covered[stripe.start : stripe.stop, :] = True
    labels, _ = ndimage.label(mask & ~covered)
    for box in ndimage.find_objects(labels):
        windows += _region_windows(box, mask.shape, plan)
    coverage = np.zeros_like(mask)
    for window in windows:
        coverage[window.slices] = True
    if (mask & ~coverage).any():
        missed = np.argwhere(mask & ~coverage)[:3].tolist()
        raise GapMaskError(f"window plan leaves dead pixels uncovered, e.g. {missed}")
    return windows
