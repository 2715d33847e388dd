"""Bad measured pixels (NaN, inf, negative counts): dead for their frame, filled, counted.

A live scan must not die because one frame holds one NaN. :class:`MaskedStream` wraps
a :class:`~bcdi_online.inpainting.GapStream`: each frame's bad voxels outside the gap
mask are zeroed and added to that frame's mask (the gap windows see them as dead, as
they see the gap), and they are filled by windows of their own, centred on them along
the rocking axis, which write only those voxels. The gap's values and the frames'
finality are those of the inner stream; a frame with bad voxels becomes final once its
own windows have run (``depth // 2`` frames after it, or at the end).
:func:`inpaint_with_bad_pixels` is the offline equivalent: the same windows on the same
frames, so a live result equals it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from .._errors import InputDataError
from ._plan import SpatialWindow, min_frame_shape, plan_frame

logger = logging.getLogger(__name__)

MAX_BAD_FRACTION = 0.01
"""Default limit: a frame with more than this fraction of its measured (non-gap) pixels
bad fails the run (a broken read-out, not a few bad pixels)."""


def find_bad_pixels(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Measured voxels that cannot be counts: NaN, inf or negative, outside ``mask``.

    Parameters
    ----------
    frames : (k, ny, nx) ndarray
        Measured frames, any real dtype.
    mask : (ny, nx) bool ndarray
        Gap mask (its voxels are dead anyway and never bad).

    Returns
    -------
    (k, ny, nx) bool ndarray
        True at bad voxels.
    """
    frames = np.asarray(frames)
    if not np.issubdtype(frames.dtype, np.number) or np.iscomplexobj(frames):
        raise InputDataError(f"data dtype {frames.dtype} is not a real number type")
    if np.issubdtype(frames.dtype, np.unsignedinteger):
        return np.zeros(frames.shape, bool)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(frames) & (frames >= 0))
    return bad & ~mask


def check_bad_fraction(
    bad: np.ndarray, mask: np.ndarray, first_index: int, max_fraction: float
) -> None:
    """Raise :class:`InputDataError` naming the frames with too many bad voxels.

    Parameters
    ----------
    bad : (k, ny, nx) bool ndarray
        Bad voxels (:func:`find_bad_pixels`).
    mask : (ny, nx) bool ndarray
        Gap mask.
    first_index : int
        Frame number of ``bad[0]`` in the scan, for the message.
    max_fraction : float
        Largest allowed fraction of a frame's measured pixels.
    """
    measured = max(1, int(mask.size - mask.sum()))
    counts = bad.reshape(len(bad), -1).sum(axis=1)
    over = np.flatnonzero(counts > max_fraction * measured)
    if len(over):
        worst = int(over[np.argmax(counts[over])])
        raise InputDataError(
            f"frames {[first_index + int(i) for i in over[:10]]} have more than "
            f"{max_fraction:.2%} of their {measured} measured pixels NaN, inf or negative "
            f"(frame {first_index + worst}: {int(counts[worst])}); max_bad_fraction "
            f"{max_fraction}"
        )


class MaskedStream:
    """A :class:`GapStream` that also takes frames with bad voxels (see the module doc).

    Parameters
    ----------
    inpainter : GapInpainter
        Engine (predictor, window plan, batch size).
    mask : (ny, nx) bool ndarray
        Gap mask of every frame.
    expected_frames : int, optional
        Planned frame count (see :class:`GapStream`).
    max_bad_fraction : float
        Largest fraction of a frame's measured pixels that may be bad; above it
        :meth:`add_frames` raises :class:`InputDataError`.

    Attributes
    ----------
    bad_pixels : int
        Bad voxels found so far.
    bad_frames : list of int
        Frames that had bad voxels.
    """

    def __init__(
        self,
        inpainter: Any,
        mask: np.ndarray,
        *,
        expected_frames: int | None = None,
        max_bad_fraction: float = MAX_BAD_FRACTION,
    ) -> None:
        self.mask = np.asarray(mask, bool)
        self.inner = inpainter.stream(self.mask, expected_frames=expected_frames)
        self.predictor, self.plan = inpainter.predictor, inpainter.plan
        self.batch_size, self.zero_gap = inpainter.batch_size, inpainter.zero_gap
        self.max_bad_fraction = max_bad_fraction
        self.depth = self.plan.depth
        ny, nx = self.mask.shape
        # the last ``depth`` frames (zeroed where bad) and their bad voxels
        self._frames = np.zeros((self.depth, ny, nx), np.float32)
        self._bad = np.zeros((self.depth, ny, nx), bool)
        self._pending: list[int] = []  # frames with bad voxels not filled yet
        self._fills: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._inner_final = 0
        self._final = 0
        self.n_frames = 0
        self.bad_pixels = 0
        self.bad_frames: list[int] = []
        self.own_windows = 0

    @property
    def expected_frames(self) -> int | None:
        """Planned frame count of the inner stream."""
        return self.inner.expected_frames

    @property
    def windows_done(self) -> int:
        """Model windows run: the gap's and the bad voxels'."""
        return int(self.inner.windows_done) + self.own_windows

    def add_frames(self, frames: np.ndarray) -> range:
        """Append frames (never modified), return the frames that became final.

        Parameters
        ----------
        frames : (k, ny, nx) ndarray
            Next frames, any real dtype; bad voxels allowed up to ``max_bad_fraction``.

        Returns
        -------
        range
            Frames whose values no later frame changes (see :meth:`result`).
        """
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.shape[1:] != self.mask.shape:
            raise InputDataError(
                f"frame shape {frames.shape[1:]} does not match {self.mask.shape}"
            )
        bad = find_bad_pixels(frames, self.mask)
        start = self.n_frames
        if bad.any():
            check_bad_fraction(bad, self.mask, start, self.max_bad_fraction)
            frames = np.where(bad, np.float32(0), frames.astype(np.float32))
            done = self.inner.add_frames(frames, bad | self.mask)
            hit = [start + int(i) for i in np.flatnonzero(bad.any(axis=(1, 2)))]
            self._pending += hit
            self.bad_frames += hit
            self.bad_pixels += int(bad.sum())
        else:
            done = self.inner.add_frames(frames)
        if len(done):
            self._inner_final = max(self._inner_final, done.stop)
        for i, frame in enumerate(frames):  # frame by frame: the ring holds each window
            slot = (start + i) % self.depth
            self._frames[slot], self._bad[slot] = frame, bad[i]
            self.n_frames += 1
            self._fill_ready(final=False)
        return self._advance()

    def _advance(self) -> range:
        limit = min([self._inner_final, *self._pending])
        done = range(self._final, max(self._final, limit))
        self._final = max(self._final, limit)
        return done

    def _window_start(self, t: int) -> int:
        return max(0, t - self.depth // 2)

    def _fill_ready(self, *, final: bool) -> None:
        """Run the windows of every pending frame whose frames are all in (or the scan ended)."""
        ready = [
            t
            for t in self._pending
            if final or self._window_start(t) + self.depth <= self.n_frames
        ]
        if not ready:
            return
        for t in ready:
            self._fill(t)
        self._pending = [t for t in self._pending if t not in ready]

    def _window_frames(self, t: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Frames, masks and start of frame ``t``'s rocking window (reflected past the end)."""
        s, d = self._window_start(t), self.depth
        stop = min(s + d, self.n_frames)
        if stop - s < d and self.n_frames > d:  # the tail: pull the window back
            s = self.n_frames - d
            stop = self.n_frames
        index = [i % d for i in range(s, stop)]
        frames, bad = self._frames[index], self._bad[index]
        if len(index) < d:  # a scan shorter than a window: reflect it, as GapStream does
            pad = ((0, d - len(index)), (0, 0), (0, 0))
            frames, bad = np.pad(frames, pad, "symmetric"), np.pad(bad, pad, "symmetric")
        return frames, bad | self.mask, s

    def _fill(self, t: int) -> None:
        """Predict frame ``t``'s bad voxels from windows around each bad region."""
        frames, masks, s = self._window_frames(t)
        target = self._bad[t % self.depth]
        min_y, min_x = min_frame_shape(target, self.plan)
        ny, nx = target.shape
        pad = ((0, max(0, min_y - ny)), (0, max(0, min_x - nx)))
        padded_target = np.pad(target, pad, "symmetric")
        frames = np.pad(frames, ((0, 0), *pad), "symmetric")
        masks = np.pad(masks, ((0, 0), *pad), "symmetric")
        windows = plan_frame(padded_target, self.plan)
        real = np.zeros(padded_target.shape, bool)  # bad voxels of the frame, not of the padding
        real[:ny, :nx] = target
        acc = np.zeros(real.shape, np.float64)
        count = np.zeros(real.shape, np.int64)
        for first in range(0, len(windows), self.batch_size):
            batch = windows[first : first + self.batch_size]
            for window, pred in zip(batch, self._predict(frames, masks, batch), strict=True):
                ly, lx = np.nonzero(real[window.slices])
                acc[ly + window.y0, lx + window.x0] += pred[t - s][ly, lx]
                count[ly + window.y0, lx + window.x0] += 1
        ys, xs = np.nonzero(target)
        values = (acc[ys, xs] / np.maximum(count[ys, xs], 1)).astype(np.float32)
        self._fills[t] = (ys, xs, np.maximum(values, 0))

    def _predict(
        self, frames: np.ndarray, masks: np.ndarray, windows: list[SpatialWindow]
    ) -> list[np.ndarray]:
        """Predictions ``(depth, height, width)`` of each window, in frame orientation."""
        patches, gaps = [], []
        for w in windows:
            patch, gap = frames[(slice(None), *w.slices)], masks[(slice(None), *w.slices)]
            if self.zero_gap:
                patch = np.where(gap, np.float32(0), patch)
            if w.transposed:
                patch, gap = patch.transpose(0, 2, 1), gap.transpose(0, 2, 1)
            patches.append(patch)
            gaps.append(gap)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, patch in enumerate(patches):
            by_shape.setdefault(patch.shape, []).append(i)
        out: list[np.ndarray] = [np.empty(0)] * len(windows)
        for members in by_shape.values():
            x = torch.from_numpy(np.ascontiguousarray(np.stack([patches[i] for i in members])))
            m = torch.from_numpy(np.ascontiguousarray(np.stack([gaps[i] for i in members])))
            pred = torch.as_tensor(self.predictor(x, m)).detach().to("cpu", torch.float32)
            for i, p in zip(members, pred.numpy(), strict=True):
                out[i] = p.transpose(0, 2, 1) if windows[i].transposed else p
        self.own_windows += len(windows)
        return out

    def _overlay(self, start: int, frames: np.ndarray) -> np.ndarray:
        for i in range(len(frames)):
            fill = self._fills.get(start + i)
            if fill is not None:
                ys, xs, values = fill
                frames[i, ys, xs] = values
        return frames

    def result(self, upto: int | None = None, start: int = 0) -> np.ndarray:
        """Corrected frames ``[start, upto)`` (see :meth:`GapStream.result`), bad voxels filled.

        Returns
        -------
        (upto - start, ny, nx) float32 ndarray
        """
        return self._overlay(start, self.inner.result(upto, start))

    def provisional(self, start: int = 0) -> tuple[range, np.ndarray] | None:
        """As :meth:`GapStream.provisional`, up to the first frame whose bad voxels wait."""
        ready = self.inner.provisional(start)
        if ready is None:
            return None
        frames, values = ready
        if frames.start != max(start, self._final):  # not contiguous with what is final
            return None
        stop = min([frames.stop, *(t for t in self._pending if t >= frames.start)])
        if stop <= frames.start:
            return None
        kept = range(frames.start, stop)
        return kept, self._overlay(kept.start, values[: len(kept)])

    def complete(self) -> range:
        """Finish the gap and the bad voxels left; return the frames that became final."""
        self.inner.complete()
        self._inner_final = self.n_frames
        self._fill_ready(final=True)
        return self._advance()

    def finish(self) -> np.ndarray:
        """:meth:`complete` and return the whole scan, ``(n_frames, ny, nx)`` float32."""
        self.complete()
        return self.result()


def inpaint_with_bad_pixels(
    inpainter: Any,
    data: np.ndarray,
    mask: np.ndarray,
    *,
    max_bad_fraction: float = MAX_BAD_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """Offline inpainting of a scan whose frames may hold bad voxels (as live runs do).

    Parameters
    ----------
    inpainter : GapInpainter
        Engine.
    data : (n_frames, ny, nx) ndarray
        Counts, any real dtype; never modified.
    mask : (ny, nx) bool ndarray
        Gap mask.
    max_bad_fraction : float
        See :class:`MaskedStream`.

    Returns
    -------
    filled : (n_frames, ny, nx) float32 ndarray
        Gap and bad voxels filled, the rest as measured.
    bad : (n_frames, ny, nx) bool ndarray
        The bad voxels found.
    """
    stream = MaskedStream(inpainter, mask, max_bad_fraction=max_bad_fraction)
    stream.add_frames(data)
    return stream.finish(), find_bad_pixels(data, np.asarray(mask, bool))
