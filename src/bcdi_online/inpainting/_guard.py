"""The overshoot guard: a bound on filled voxels from the measured voxels around the gap.

Why a bound, and which. A crystal's diffraction has one brightest feature, the Bragg
peak, and an envelope that decays away from it. Where the peak was measured, nothing
in a gap is much brighter than the gap's measured edges: the intensity entering the
gap on one side and leaving it on the other brackets it, up to fringe maxima between
edge minima and oblique streaks. Across a straight stripe the log-intensity of a
power-law envelope is convex, so it lies under the chord between the two edges; the
bound generalises that chord to any gap shape as the harmonic interpolation, in log
space, of the edges' brightness. Where the peak is in the gap, the gap may hold
10^2-10^4 times its edges (on simulated crystals the centre of a 38 px gap through the
peak holds up to 2 x 10^4 times the edge envelope): no bound from the edges is safe
there, and the guard leaves the fill alone. The peak shows on the edges of a gap that
hides it: its flanks are then the brightest measured counts (on 96 simulated crystals
the gap's brightest edge count was 0.64-1 of the brightest measured count when the peak
was in the gap, and 0.005-0.6 when it was measured).

The rule, per frame ``t`` and dead pixel ``p``:

1. The frame is *guarded* when, over frames ``[t - peak_frames, t + peak_frames]``, the
   Poisson upper limit of the brightest count next to the gap is below ``peak_ratio``
   times the brightest measured count: the peak was measured.
2. The edge brightness of a measured pixel next to the gap is the brightest count of
   the gap's edge pixels within ``edge_reach`` pixels of it and ``edge_frames`` frames
   (fringes cross the edge; their maxima span the minima between them), raised to its
   Poisson upper limit at ``noise_sigmas`` (``n + z^2/2 + z sqrt(n + z^2/4)``, ``z^2``
   for a count of 0).
3. ``bound(p) = factor * exp(h(p))``, ``h`` harmonic on the dead pixels of the frame and
   equal to the log edge brightness on their measured neighbours (no flux through the
   frame's border). By the maximum principle the bound never exceeds ``factor`` times
   the brightest edge of that dead region.

The bound of frame ``t`` reads frames ``[t - lookahead, t + lookahead]`` only, so a
stream that holds a frame back until ``lookahead`` later frames exist gives it the value
the offline call gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
from scipy import ndimage
from scipy.sparse.linalg import splu

from .._errors import ConfigurationError

#: Frames per step when taking the brightest edge pixels (bounds the memory used).
_CHUNK = 16


def _poisson_upper(counts: np.ndarray, z: float) -> np.ndarray:
    """Upper limit of a Poisson rate at ``z`` standard deviations, given counts (>= 0)."""
    return counts + z * z / 2 + z * np.sqrt(counts + z * z / 4)


def _edge_neighbours(
    ey: np.ndarray, ex: np.ndarray, edge_index: np.ndarray, reach: int
) -> np.ndarray:
    """Return the edge pixels within ``reach`` (chessboard) of each edge pixel.

    Returns
    -------
    (n_edge, n_near) int ndarray
        Padded with ``n_edge``, the index of an extra zero column.
    """
    ny, nx = edge_index.shape
    n_edge = len(ey)
    near = np.full((n_edge, (2 * reach + 1) ** 2), n_edge, dtype=np.int64)
    column = 0
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            y, x = ey + dy, ex + dx
            inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
            found = np.full(n_edge, -1, dtype=np.int64)
            found[inside] = edge_index[y[inside], x[inside]]
            near[found >= 0, column] = found[found >= 0]
            column += 1
    near.sort(axis=1)
    return near[:, : int((near < n_edge).sum(axis=1).max())]


@dataclass(frozen=True)
class OvershootGuard:
    """Settings of the bound on filled voxels (see the module's description).

    The defaults were chosen on 96 simulated crystals (``benchmarks/guard_effect.py``):
    bounding the noise-free truth itself with them changes its gap amplitudes by at
    most 0.035 (relative RMS), less than Poisson noise does, while the shipped model's
    over-filling of 38 px crossed gaps off the peak falls from 5.6x to 2.9x the true
    photons (median of 4 crystals).

    Attributes
    ----------
    factor : float
        How far a filled voxel may exceed the interpolated edge brightness (>= 1).
    edge_reach : int
        Pixels along the gap's edge over which the brightest edge count is taken.
    edge_frames : int
        Frames on each side over which the brightest edge count is taken.
    noise_sigmas : float
        Poisson upper limit of an edge count, in standard deviations (> 0).
    peak_ratio : float
        The peak counts as measured when the gap's edges stay below this fraction of
        the brightest measured count (in (0, 1]).
    peak_frames : int
        Frames on each side over which the brightest counts are compared.
    """

    factor: float = 4.0
    edge_reach: int = 6
    edge_frames: int = 2
    noise_sigmas: float = 2.0
    peak_ratio: float = 0.5
    peak_frames: int = 8

    def __post_init__(self) -> None:
        if not self.factor >= 1:
            raise ConfigurationError(f"guard factor {self.factor} must be >= 1")
        if not self.noise_sigmas > 0:
            raise ConfigurationError(f"guard noise_sigmas {self.noise_sigmas} must be > 0")
        for name in ("edge_reach", "edge_frames", "peak_frames"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"guard {name} {getattr(self, name)} must be >= 0")
        if not 0 < self.peak_ratio <= 1:
            raise ConfigurationError(f"guard peak_ratio {self.peak_ratio} must be in (0, 1]")

    @property
    def lookahead(self) -> int:
        """Frames after a frame that its bound reads."""
        return max(self.edge_frames, self.peak_frames)


class GuardBounds:
    """The guard's geometry for one gap mask, and the bounds of frames on it.

    Parameters
    ----------
    guard : OvershootGuard
        Settings.
    mask : (ny, nx) bool ndarray
        Dead pixels; the bounds follow the order of ``np.nonzero(mask)``.
    """

    def __init__(self, guard: OvershootGuard, mask: np.ndarray) -> None:
        self.guard = guard
        self.mask = mask
        ny, nx = mask.shape
        gy, gx = np.nonzero(mask)
        n_gap = len(gy)
        index = np.full(mask.shape, -1, dtype=np.int64)
        index[gy, gx] = np.arange(n_gap)
        self.edge = ndimage.binary_dilation(mask) & ~mask  # measured 4-neighbours
        ey, ex = np.nonzero(self.edge)
        self._edge_y, self._edge_x = ey, ex
        edge_index = np.full(mask.shape, -1, dtype=np.int64)
        edge_index[ey, ex] = np.arange(len(ey))
        degree = np.zeros(n_gap)
        inner_rows, inner_cols, edge_rows, edge_cols = [], [], [], []
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            y, x = gy + dy, gx + dx
            inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
            degree += inside
            rows, y, x = np.nonzero(inside)[0], y[inside], x[inside]
            dead = mask[y, x]
            inner_rows.append(rows[dead])
            inner_cols.append(index[y[dead], x[dead]])
            edge_rows.append(rows[~dead])
            edge_cols.append(edge_index[y[~dead], x[~dead]])
        rows, cols = np.concatenate(inner_rows), np.concatenate(inner_cols)
        diagonal = np.arange(n_gap)
        laplacian = sparse.csc_matrix(
            (
                np.concatenate([degree, -np.ones(len(rows))]),
                (np.concatenate([diagonal, rows]), np.concatenate([diagonal, cols])),
            ),
            shape=(n_gap, n_gap),
        )
        self._solver = splu(laplacian)
        rows, cols = np.concatenate(edge_rows), np.concatenate(edge_cols)
        self._to_gap = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(n_gap, len(ey))
        )
        self._dead_flat = np.flatnonzero(mask)
        self._near = _edge_neighbours(ey, ex, edge_index, guard.edge_reach)

    def frame_peaks(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Brightest measured count of each frame, and brightest count next to the gap.

        Parameters
        ----------
        frames : (k, ny, nx) float32 ndarray

        Returns
        -------
        brightest, brightest_edge : (k,) float32 ndarray
        """
        measured = frames.reshape(len(frames), -1).copy()
        measured[:, self._dead_flat] = 0
        return measured.max(axis=1), frames[:, self._edge_y, self._edge_x].max(axis=1)

    def guarded(
        self, lo: int, hi: int, brightest: np.ndarray, brightest_edge: np.ndarray
    ) -> np.ndarray:
        """Which frames of ``[lo, hi)`` are guarded, from every frame's :meth:`frame_peaks`.

        A frame is guarded when, over the frames within ``peak_frames`` of it, the
        Poisson upper limit of the brightest edge count is below ``peak_ratio`` times
        the brightest measured count.

        Returns
        -------
        (hi - lo,) bool ndarray
        """
        size, n = 2 * self.guard.peak_frames + 1, len(brightest)
        a, b = max(lo - self.guard.peak_frames, 0), min(hi + self.guard.peak_frames, n)
        peak = ndimage.maximum_filter1d(brightest[a:b], size, mode="constant", cval=0.0)
        edge = ndimage.maximum_filter1d(brightest_edge[a:b], size, mode="constant", cval=0.0)
        upper = _poisson_upper(edge.astype(np.float64), self.guard.noise_sigmas)
        return (upper < self.guard.peak_ratio * peak)[lo - a : hi - a]

    def bounds(self, frames: np.ndarray, lo: int, hi: int, guarded: np.ndarray) -> np.ndarray:
        """Upper bounds of the dead pixels of frames ``[lo, hi)``.

        Parameters
        ----------
        frames : (n_frames, ny, nx) float32 ndarray
            Every frame available; frames ``[lo - edge_frames, hi + edge_frames)`` are read.
        lo, hi : int
            Frames bounded.
        guarded : (hi - lo,) bool ndarray
            From :meth:`guarded`; frames not guarded get ``inf``.

        Returns
        -------
        (hi - lo, n_dead) float32 ndarray
            In the order of ``np.nonzero(mask)``.
        """
        out = np.full((hi - lo, self._to_gap.shape[0]), np.inf, dtype=np.float32)
        if not guarded.any():
            return out
        g = self.guard
        a, b = max(lo - g.edge_frames, 0), min(hi + g.edge_frames, len(frames))
        counts = frames[a:b][:, self._edge_y, self._edge_x]
        counts = np.concatenate([counts, np.zeros((b - a, 1), np.float32)], axis=1)
        along = np.concatenate(  # brightest edge pixel within reach, frame by frame
            [counts[i : i + _CHUNK][:, self._near].max(axis=2) for i in range(0, b - a, _CHUNK)]
        )
        brightest = ndimage.maximum_filter1d(
            along, 2 * g.edge_frames + 1, axis=0, mode="constant", cval=0.0
        )
        rows = np.nonzero(guarded)[0]
        counts = brightest[rows + lo - a].astype(np.float64)
        upper = _poisson_upper(counts, g.noise_sigmas)
        log_bound = self._solver.solve(np.asarray(self._to_gap @ np.log(upper).T))
        out[rows] = g.factor * np.exp(log_bound.T)
        return out
