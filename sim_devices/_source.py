"""A simulated crystal seen through a detector: the frame at a rocking angle."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Unpack

import numpy as np

from bcdi_online import SimulationError
from bcdi_online.detectors import DetectorSpec
from bcdi_online.simulation import RockingScan, ScanOptions, simulate_scan


@dataclass(frozen=True)
class AcquiredFrames:
    """The frames a :class:`CrystalSource` has produced, in acquisition order.

    Attributes
    ----------
    angles : (k,) float64 ndarray
        Rocking angle of each frame.
    counters : (k,) int64 ndarray
        Frame counter that seeded each frame's noise.
    data : (k, ny, nx) uint32 ndarray
        The frames as the detector wrote them: zero at dead (gap) pixels.
    truth : (k, ny, nx) uint32 ndarray
        The same Poisson draws without gaps: what a gap-free detector records.
    expected : (k, ny, nx) float32 ndarray
        Noise-free expected counts at each angle.
    """

    angles: np.ndarray
    counters: np.ndarray
    data: np.ndarray
    truth: np.ndarray
    expected: np.ndarray


class CrystalSource:
    """Frames of a simulated rocking scan at any rocking angle.

    The expected-intensity volume of ``scan`` spans the angle range ``eta_range``:
    frame ``i`` of ``n_frames`` sits at ``eta_start + i * (eta_stop - eta_start) /
    (n_frames - 1)``. The frame at an angle is the linear interpolation between the
    two neighbouring expected frames (the first or last frame outside the range), one
    Poisson draw of it, with dead pixels set to 0 as in raw detector data. The noise
    of the ``k``-th frame produced is drawn from ``numpy.random.default_rng([seed,
    k])``, so a scan is reproducible from ``seed`` whatever the angles.

    Every frame produced is recorded with its gap-free truth (see :attr:`acquired`),
    for demonstrations and tests. Safe to call from several threads.

    Parameters
    ----------
    scan : RockingScan
        The simulated scan whose ``expected`` volume, ``mask``, ``detector`` and
        ``roi`` are used (its noisy ``data`` is not).
    eta_range : (float, float)
        Angles ``(eta_start, eta_stop)`` of the first and last frame, in degrees,
        ``eta_start < eta_stop``. The Bragg peak lies at the grid centre, frame
        ``n_frames // 2``.
    seed : int
        Seed of the Poisson noise.

    Raises
    ------
    SimulationError
        If the range is empty or reversed.
    """

    def __init__(
        self, scan: RockingScan, *, eta_range: tuple[float, float] = (-0.5, 0.5), seed: int = 0
    ) -> None:
        eta_start, eta_stop = (float(v) for v in eta_range)
        if not eta_start < eta_stop:
            raise SimulationError(f"eta_range {eta_range} must have eta_start < eta_stop")
        self.scan = scan
        self.eta_start = eta_start
        self.eta_stop = eta_stop
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._angles: list[float] = []
        self._truth: list[np.ndarray] = []

    @classmethod
    def simulate(
        cls,
        detector: str | DetectorSpec = "maxipix_2x2",
        *,
        eta_range: tuple[float, float] = (-0.5, 0.5),
        **scan: Unpack[ScanOptions],
    ) -> CrystalSource:
        """Simulate a crystal on a detector region and make it a source.

        Parameters
        ----------
        detector : str or DetectorSpec
            Registry name (see :func:`bcdi_online.detectors.detector_names`).
        eta_range : (float, float)
            Angles of the first and last expected frame, in degrees.
        **scan
            Options of :func:`bcdi_online.simulation.simulate_scan` (``n_frames``,
            ``roi_size``, ``roi``, ``params``, ``seed``, ``peak_jitter``,
            ``maxipix_gap``); here ``n_frames`` defaults to 64 and ``roi_size`` to
            128, sizes a simulated device streams quickly. ``seed`` also seeds the noise.

        Returns
        -------
        CrystalSource
        """
        options: ScanOptions = {"n_frames": 64, "roi_size": 128, **scan}
        return cls(
            simulate_scan(detector, **options), eta_range=eta_range, seed=options.get("seed", 0)
        )

    @property
    def detector(self) -> str:
        """Registry name of the detector."""
        return self.scan.detector

    @property
    def roi(self) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of the frames on the full detector, half-open."""
        return self.scan.roi

    @property
    def maxipix_gap(self) -> int:
        """MAXIPIX gap convention the mask was made with."""
        return int(self.scan.metadata.get("maxipix_gap", 6))

    @property
    def mask(self) -> np.ndarray:
        """(ny, nx) bool ndarray: dead pixels, True = no signal."""
        return self.scan.mask

    @property
    def expected(self) -> np.ndarray:
        """(n_frames, ny, nx) float32 ndarray: noise-free counts on the angle grid."""
        return self.scan.expected

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(ny, nx) of a frame."""
        return (int(self.mask.shape[0]), int(self.mask.shape[1]))

    @property
    def n_frames(self) -> int:
        """Number of expected frames on the angle grid."""
        return int(self.expected.shape[0])

    @property
    def frame_angles(self) -> np.ndarray:
        """(n_frames,) float64 ndarray: angle of each expected frame."""
        return np.linspace(self.eta_start, self.eta_stop, self.n_frames)

    @property
    def bragg_angle(self) -> float:
        """Angle of the frame holding the Bragg peak (frame ``n_frames // 2``)."""
        return float(self.frame_angles[self.n_frames // 2])

    def frame_index(self, eta: float) -> float:
        """Fractional frame index of an angle, clipped to ``[0, n_frames - 1]``."""
        step = (self.eta_stop - self.eta_start) / (self.n_frames - 1)
        return float(np.clip((float(eta) - self.eta_start) / step, 0.0, self.n_frames - 1))

    def expected_frame(self, eta: float) -> np.ndarray:
        """Noise-free counts at an angle.

        Parameters
        ----------
        eta : float
            Rocking angle in degrees; outside the range the edge frame is returned.

        Returns
        -------
        (ny, nx) float32 ndarray
            Linear interpolation between the two neighbouring expected frames.
        """
        index = self.frame_index(eta)
        i0 = int(np.floor(index))
        i1 = min(i0 + 1, self.n_frames - 1)
        weight = np.float32(index - i0)
        return (np.float32(1) - weight) * self.expected[i0] + weight * self.expected[i1]

    def acquire(self, eta: float) -> np.ndarray:
        """Produce and record the next detector frame at an angle.

        Parameters
        ----------
        eta : float
            Rocking angle in degrees.

        Returns
        -------
        (ny, nx) uint32 ndarray
            Poisson counts, zero at dead pixels.
        """
        expected = self.expected_frame(eta)
        with self._lock:
            counter = len(self._angles)
            rng = np.random.default_rng([self.seed, counter])
            truth = rng.poisson(expected).astype(np.uint32)
            self._angles.append(float(eta))
            self._truth.append(truth)
        frame = truth.copy()
        frame[self.mask] = 0
        return frame

    @property
    def acquired(self) -> AcquiredFrames:
        """Every frame produced since creation or the last :meth:`reset`."""
        with self._lock:
            angles = np.asarray(self._angles, dtype=np.float64)
            truth = np.asarray(self._truth, dtype=np.uint32).reshape(-1, *self.frame_shape)
        data = truth.copy()
        data[:, self.mask] = 0
        expected = np.empty(truth.shape, dtype=np.float32)
        for i, eta in enumerate(angles):
            expected[i] = self.expected_frame(eta)
        counters = np.arange(len(angles), dtype=np.int64)
        return AcquiredFrames(
            angles=angles, counters=counters, data=data, truth=truth, expected=expected
        )

    def reset(self) -> None:
        """Forget the recorded frames and restart the frame counter at 0."""
        with self._lock:
            self._angles.clear()
            self._truth.clear()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(detector={self.detector!r}, roi={self.roi}, "
            f"n_frames={self.n_frames}, eta_range=({self.eta_start}, {self.eta_stop}), "
            f"seed={self.seed})"
        )
