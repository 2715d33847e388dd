"""Incremental inpainting: frames arrive in order, windows run as soon as they are complete."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from .._errors import InputDataError, ModelError
from ._batch import BatchSize
from ._checks import check_frames
from ._guard import GuardBounds, OvershootGuard
from ._plan import (
    SpatialWindow,
    WindowPlan,
    min_frame_shape,
    plan_frame,
    rocking_windows,
    schedule_stream,
)

logger = logging.getLogger(__name__)

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def importance(size: int, sigma_scale: float = 0.125) -> np.ndarray:
    """MONAI-style Gaussian importance along one axis, clamped away from zero."""
    centre = (size - 1) / 2
    sigma = max(size * sigma_scale, 1e-3)
    weights = np.exp(-0.5 * ((np.arange(size) - centre) / sigma) ** 2)
    return np.maximum(weights / weights.max(), 1e-3).astype(np.float32)


class GapStream:
    """Inpaint a scan frame by frame; the result equals the offline call on the same frames.

    Accumulators hold one value per (frame, dead pixel), not per voxel, so memory grows
    with the gap, not with the frame.

    Parameters
    ----------
    predictor : callable
        ``(patches (B, D, H, W), masks (B, D, H, W)) -> (B, D, H, W)`` counts.
    mask : (ny, nx) bool ndarray
        Dead pixels of every frame (the planning mask).
    plan : WindowPlan
        Window settings.
    batch_size : int or BatchSize
        Windows per predictor call (halved on GPU out-of-memory); a :class:`BatchSize`
        shares what a halving found with other streams.
    zero_gap : bool
        Zero gap voxels before prediction (False only for tests of the tiler).
    expected_frames : int, optional
        Frames the scan is planned to have (a start document's ``num_points``). Windows
        that belong to the plan for that many frames then run as soon as their frames
        exist, held apart until :meth:`finish` confirms the frame count (and dropped if
        the scan ends with another count), so only the tail window is left at the end.
    guard : OvershootGuard, optional
        Bound the filled voxels by the measured voxels around the gap (see
        :class:`OvershootGuard`); None fills with the predictions as they are. A
        frame's bound reads ``guard.lookahead`` later frames, so frames become final
        no sooner than that many frames after them (the window plan already holds
        them longer with the default settings).
    """

    def __init__(
        self,
        predictor: Predictor,
        mask: np.ndarray,
        plan: WindowPlan,
        batch_size: int | BatchSize,
        *,
        zero_gap: bool = True,
        expected_frames: int | None = None,
        guard: OvershootGuard | None = None,
    ) -> None:
        self._batch = batch_size if isinstance(batch_size, BatchSize) else BatchSize(batch_size)
        self.predictor, self.plan, self.batch_size, self.zero_gap = (
            predictor,
            plan,
            self._batch.value,
            zero_gap,
        )
        self.frame_shape = mask.shape
        min_y, min_x = min_frame_shape(mask, plan)
        self._pad = ((0, max(0, min_y - mask.shape[0])), (0, max(0, min_x - mask.shape[1])))
        self.mask = np.pad(mask, self._pad, mode="symmetric")
        self.windows = plan_frame(self.mask, plan)
        gy, gx = np.nonzero(self.mask)
        self._gap_y, self._gap_x = gy, gx
        index = np.full(self.mask.shape, -1, dtype=np.int64)
        index[gy, gx] = np.arange(len(gy))
        self._local = [self._gap_pixels(w, index) for w in self.windows]
        self._w_rock: dict[int, np.ndarray] = {}
        self.expected_frames = expected_frames
        self._frames = np.zeros((0, *self.mask.shape), np.float32)
        self._frame_masks: np.ndarray | None = None
        self._acc = np.zeros((0, len(gy)), np.float32)
        self._wsum = np.zeros((0, len(gy)), np.float32)
        self.n_frames = 0
        self._next_start = 0
        self._committed: set[tuple[int, int]] = set()
        self._pending: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._final = 0
        self.windows_done = 0
        self.predict_seconds = 0.0
        self._finished = False
        self.guard = guard
        self._bounds = GuardBounds(guard, self.mask) if guard and len(gy) else None
        self._peak_value = np.zeros(0, np.float32)
        self._peak_edge = np.zeros(0, np.float32)

    def _gap_pixels(self, window: SpatialWindow, index: np.ndarray):
        local = index[window.slices]
        ly, lx = np.nonzero(local >= 0)
        along = lx if window.transposed else ly
        w_along = importance(window.width if window.transposed else window.height)[along]
        return ly, lx, local[ly, lx], w_along

    def _grow(self, needed: int) -> None:
        capacity = len(self._frames)
        if needed <= capacity:
            return
        new = max(needed, 2 * capacity, 64)
        grow = new - capacity
        self._frames = np.concatenate(
            [self._frames, np.zeros((grow, *self.mask.shape), np.float32)]
        )
        self._acc = np.concatenate([self._acc, np.zeros((grow, self._acc.shape[1]), np.float32)])
        self._wsum = np.concatenate([self._wsum, np.zeros((grow, self._acc.shape[1]), np.float32)])
        if self._frame_masks is not None:
            extra = np.broadcast_to(self.mask, (grow, *self.mask.shape)).copy()
            self._frame_masks = np.concatenate([self._frame_masks, extra])
        self._peak_value = np.concatenate([self._peak_value, np.zeros(grow, np.float32)])
        self._peak_edge = np.concatenate([self._peak_edge, np.zeros(grow, np.float32)])

    def add_frames(self, frames: np.ndarray, masks: np.ndarray | None = None) -> range:
        """Append frames, run every window now complete, return the frames that became final.

        Parameters
        ----------
        frames : (k, ny, nx) ndarray
            Next frames of the scan, any real dtype.
        masks : (k, ny, nx) bool ndarray, optional
            Per-frame dead pixels (subsets of the planning mask); default the planning mask.

        Returns
        -------
        range
            Indices of frames no later window will change (see :meth:`result`).
        """
        if self._finished:
            raise InputDataError(f"the stream was finished after {self.n_frames} frames")
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.shape[1:] != self.frame_shape:
            raise InputDataError(
                f"frame shape {frames.shape[1:]} does not match {self.frame_shape}"
            )
        ny, nx = self.frame_shape
        check_frames(frames, masks if masks is not None else self.mask[:ny, :nx], self.n_frames)
        k, start = len(frames), self.n_frames
        self._grow(start + k)
        padded = np.pad(frames.astype(np.float32, copy=False), ((0, 0), *self._pad), "symmetric")
        self._frames[start : start + k] = padded
        if self._bounds is not None:
            peaks = self._bounds.frame_peaks(padded)
            self._peak_value[start : start + k], self._peak_edge[start : start + k] = peaks
        if masks is not None:
            if self._frame_masks is None:
                self._frame_masks = np.broadcast_to(self.mask, self._frames.shape).copy()
            self._frame_masks[start : start + k] = np.pad(masks, ((0, 0), *self._pad), "symmetric")
        self.n_frames += k
        plan = schedule_stream(
            self.n_frames,
            self._next_start,
            self.plan,
            expected_frames=self.expected_frames,
            done=self._committed | self._pending.keys(),
        )
        self._next_start = plan.next_start
        self._settle(plan.settle)
        self._run(self._frames, plan.speculate, hold=True)
        final = max(plan.final, self._final)
        if self._bounds is not None:  # a bound reads later frames
            final = max(min(final, self.n_frames - self._bounds.guard.lookahead), self._final)
        done, self._final = range(self._final, final), final
        return done

    def _settle(self, windows: list[tuple[int, int]]) -> None:
        """Accumulate these rocking windows for good: commit held results, run the rest."""
        held = [key for key in windows if key in self._pending]
        self._run(
            self._frames,
            [key for key in windows if key not in self._committed and key not in self._pending],
        )
        for s, d in held:
            acc, wsum = self._pending.pop((s, d))
            self._acc[s : s + d] += acc
            self._wsum[s : s + d] += wsum
        self._committed.update(windows)

    def _rocking_weights(self, depth: int) -> np.ndarray:
        if depth not in self._w_rock:
            self._w_rock[depth] = importance(depth)
        return self._w_rock[depth]

    def _window_masks(
        self, source_masks: np.ndarray | None, t0: int, depth: int, window: SpatialWindow
    ):
        if source_masks is None:
            return np.broadcast_to(self.mask[window.slices], (depth, window.height, window.width))
        return source_masks[t0 : t0 + depth][(slice(None), *window.slices)]

    def _run(
        self,
        frames: np.ndarray,
        rocking: list[tuple[int, int]],
        *,
        masks: np.ndarray | None = None,
        keep: int | None = None,
        hold: bool = False,
    ) -> None:
        """Predict every window at the given rocking (start, depth) and accumulate.

        With ``hold``, each rocking window's contributions go to its own held buffers
        (:meth:`_speculate`) instead of the accumulators.
        """
        masks = self._frame_masks if masks is None else masks
        if hold:
            n_gap = self._acc.shape[1]
            for s, d in rocking:
                self._pending[(s, d)] = (
                    np.zeros((d, n_gap), np.float32),
                    np.zeros((d, n_gap), np.float32),
                )
        by_shape: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
        for t0, d in rocking:
            for i, w in enumerate(self.windows):
                by_shape.setdefault((d, w.height, w.width), []).append((t0, d, i))
        for group in by_shape.values():
            position = 0
            while position < len(group):
                self.batch_size = min(self.batch_size, self._batch.value)  # shared halvings
                batch = group[position : position + self.batch_size]
                try:
                    self._predict(frames, masks, batch, keep, hold)
                except torch.OutOfMemoryError:
                    if self.batch_size == 1:
                        raise
                    self.batch_size = self._batch.halve(self.batch_size)
                    logger.warning("out of memory: batch size halved to %d", self.batch_size)
                    continue
                position += len(batch)

    def _predict(self, frames, masks, batch, keep, hold) -> None:
        patches, gaps = [], []
        for t0, d, i in batch:
            w = self.windows[i]
            patch = frames[t0 : t0 + d][(slice(None), *w.slices)]
            gap = self._window_masks(masks, t0, d, w)
            if self.zero_gap:
                patch = np.where(gap, np.float32(0), patch)
            if w.transposed:
                patch, gap = patch.transpose(0, 2, 1), gap.transpose(0, 2, 1)
            patches.append(patch)
            gaps.append(gap)
        patch_batch, gap_batch = np.stack(patches), np.stack(gaps)
        started = time.perf_counter()
        out = self.predictor(torch.from_numpy(patch_batch), torch.from_numpy(gap_batch))
        pred = torch.as_tensor(out).detach().to("cpu", torch.float32).numpy()
        self.predict_seconds += time.perf_counter() - started
        if pred.shape != patch_batch.shape:
            raise ModelError(
                f"predictor returned shape {pred.shape} for patches of shape {patch_batch.shape}"
            )
        bad = ~np.isfinite(pred) & gap_batch
        if bad.any():
            raise ModelError(f"predictor returned {int(bad.sum())} NaN or inf values in the gap")
        self.windows_done += len(batch)
        for (t0, d, i), p in zip(batch, pred, strict=True):
            w = self.windows[i]
            ly, lx, k, w_along = self._local[i]
            values = p.transpose(0, 2, 1)[:, ly, lx] if w.transposed else p[:, ly, lx]
            weights = self._rocking_weights(d)[:, None] * w_along[None, :]
            rows = d if keep is None else min(d, keep - t0)
            if hold:
                acc, wsum = self._pending[(t0, d)]
                acc[:rows, k] += values[:rows] * weights[:rows]
                wsum[:rows, k] += weights[:rows]
            else:
                self._acc[t0 : t0 + rows, k] += values[:rows] * weights[:rows]
                self._wsum[t0 : t0 + rows, k] += weights[:rows]

    def result(self, upto: int | None = None, start: int = 0) -> np.ndarray:
        """Corrected frames ``[start, upto)`` as they stand (final up to the last returned range).

        Parameters
        ----------
        upto : int, optional
            End frame (exclusive); default every frame added so far.
        start : int
            First frame; a live consumer passes the range :meth:`add_frames` returned.

        Returns
        -------
        (upto - start, ny, nx) float32 ndarray
            Measured voxels bit-exact (after the float32 cast); gap voxels filled where a
            window has run, else still as measured.
        """
        n = self.n_frames if upto is None else min(upto, self.n_frames)
        start = min(start, n)
        return self._compose(start, n, self._acc[start:n], self._wsum[start:n])

    def _compose(self, start: int, n: int, acc: np.ndarray, wsum: np.ndarray) -> np.ndarray:
        """Frames ``[start, n)`` with the gap filled from accumulators of those frames."""
        ny, nx = self.frame_shape
        out = self._frames[start:n].copy()
        filled = np.maximum(np.divide(acc, wsum, out=np.zeros_like(acc), where=wsum > 0), 0)
        if self._bounds is not None and n > start:  # the guard reads the frames around
            a = self.n_frames
            guarded = self._bounds.guarded(start, n, self._peak_value[:a], self._peak_edge[:a])
            filled = np.minimum(filled, self._bounds.bounds(self._frames[:a], start, n, guarded))
        gy, gx = self._gap_y, self._gap_x
        write = wsum > 0
        if self._frame_masks is not None:
            write &= self._frame_masks[start:n][:, gy, gx]
        out[:, gy, gx] = np.where(write, filled, out[:, gy, gx])
        return out[:, :ny, :nx]

    def provisional(self, start: int = 0) -> tuple[range, np.ndarray] | None:
        """Return frames not yet final as :meth:`finish` will if the expected count holds.

        With ``expected_frames`` set and not exceeded, frames that every window of the
        expected plan touching them has reached (held or for good) already have their
        final values if the scan ends with that count: a live consumer can publish
        them before the end is confirmed, and publish again from the first non-final
        frame if the count turns out different. Nothing is committed.

        Parameters
        ----------
        start : int
            First frame wanted (the frames before it were published already); frames
            below the final mark are never returned.

        Returns
        -------
        (range, (len(range), ny, nx) float32 ndarray) or None
            The frames and their values, or None when there are none.
        """
        n, expected = self.n_frames, self.expected_frames
        if self._finished or expected is None or not self.plan.depth <= n <= expected:
            return None
        plan = rocking_windows(expected, self.plan)
        reached = self._committed | self._pending.keys()
        missing = [s for s, d in plan if (s, d) not in reached]
        lo, hi = max(start, self._final), min([n, *missing])
        if self._bounds is not None and n < expected:  # a bound reads later frames
            hi = min(hi, n - self._bounds.guard.lookahead)
        if hi <= lo:
            return None
        acc, wsum = self._acc[lo:hi].copy(), self._wsum[lo:hi].copy()
        for s, d in plan:  # the order _settle commits them in
            if (s, d) in self._pending and s < hi and s + d > lo:
                part_acc, part_wsum = self._pending[(s, d)]
                a, b = max(s, lo), min(s + d, hi)
                acc[a - lo : b - lo] += part_acc[a - s : b - s]
                wsum[a - lo : b - lo] += part_wsum[a - s : b - s]
        return range(lo, hi), self._compose(lo, hi, acc, wsum)

    def complete(self) -> range:
        """Run the remaining windows of :func:`rocking_windows` (a short scan padded).

        Frames added afterwards are rejected; calling it again does nothing.

        Returns
        -------
        range
            The frames that became final (empty when called again).
        """
        n, d = self.n_frames, self.plan.depth
        if self._finished:
            return range(n, n)
        if n == 0:
            raise InputDataError("no frames were added: nothing to inpaint")
        if n < d:  # short scan: reflect the frames up to one window, keep the first n
            frames = np.pad(self._frames[:n], ((0, d - n), (0, 0), (0, 0)), mode="symmetric")
            masks = None
            if self._frame_masks is not None:
                masks = np.pad(self._frame_masks[:n], ((0, d - n), (0, 0), (0, 0)), "symmetric")
            self._run(frames, [(0, d)], masks=masks, keep=n)
        else:
            self._settle(rocking_windows(n, self.plan))
        self._pending.clear()  # held for another frame count than the scan ended with
        done, self._final = range(self._final, n), n
        self._finished = True
        return done

    def finish(self) -> np.ndarray:
        """:meth:`complete` the scan and return it whole.

        Returns
        -------
        (n_frames, ny, nx) float32 ndarray
        """
        self.complete()
        return self.result()
