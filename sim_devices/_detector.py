"""ophyd-async simulated BCDI detectors writing HDF5 frames that follow the rocking motor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

import numpy as np
from ophyd_async.core import (
    Array1D,
    Device,
    PathProvider,
    SignalR,
    StandardDetector,
    soft_signal_r_and_setter,
    soft_signal_rw,
)

from bcdi_online import ConfigurationError
from bcdi_online.simulation import ScanOptions

from ._logic import CrystalAcquireLogic, CrystalCamera, CrystalDataLogic, CrystalTriggerLogic
from ._source import CrystalSource


def _angle_signal(angle: SignalR[float] | Device) -> SignalR[float]:
    """Return the signal to read the rocking angle from: itself, or a motor's readback."""
    if isinstance(angle, SignalR):
        return angle
    readback = getattr(angle, "user_readback", None)
    if isinstance(readback, SignalR):
        return readback
    raise TypeError(
        f"angle must be a SignalR[float] or a motor with a user_readback signal, got {angle!r}"
    )


class SimBcdiDetector(StandardDetector):
    """A simulated area detector recording a crystal's rocking curve.

    At each trigger it reads the rocking angle, takes the frame of ``source`` at that
    angle (Poisson counts, zero in the gaps) and appends it to
    ``<directory>/<filename>.h5`` (dataset ``/entry/data/data``, ``(n, ny, nx)``
    uint32, one chunk a frame, SWMR), then emits ``stream_resource`` /
    ``stream_datum`` documents like an areaDetector HDF5 writer. Assembled from
    logic objects like ``ophyd_async.sim.SimBlobDetector``.

    Parameters
    ----------
    path_provider : PathProvider
        Directory and file name of each acquisition's file.
    source : CrystalSource
        The simulated crystal and detector region.
    angle : SignalR of float or motor
        The rocking angle, or a motor (e.g. :class:`SimRockingMotor`) whose
        ``user_readback`` is read. The motor does not become a child of the detector.
    acquire_time : float
        Initial exposure in seconds per frame (0: frames are immediate).
    config_sigs : sequence of SignalR
        Extra signals for ``read_configuration``.
    name : str
        Device name, also the data key of the frames.

    Attributes
    ----------
    source : CrystalSource
        The source, with the ground truth of every frame taken (``source.acquired``).
    detector_name, roi, maxipix_gap : SignalR
        Configuration: registry name, ``(y0, y1, x0, x1)`` of the frames, MAXIPIX gap
        convention; with them a consumer rebuilds the gap mask.
    acquire_time : SignalRW of float
        Exposure per frame.
    """

    def __init__(
        self,
        path_provider: PathProvider,
        source: CrystalSource,
        angle: SignalR[float] | Device,
        *,
        acquire_time: float = 0.0,
        config_sigs: Sequence[SignalR] = (),
        name: str = "",
    ) -> None:
        self.source = source
        self.detector_name, _ = soft_signal_r_and_setter(str, source.detector)
        self.roi, _ = soft_signal_r_and_setter(
            Array1D[np.int64], np.asarray(source.roi, dtype=np.int64)
        )
        self.maxipix_gap, _ = soft_signal_r_and_setter(int, source.maxipix_gap)
        self.acquire_time = soft_signal_rw(float, acquire_time, units="s")
        self.camera = CrystalCamera(source, _angle_signal(angle), self.acquire_time)
        self.add_detector_logics(
            CrystalTriggerLogic(self.camera),
            CrystalAcquireLogic(self.camera),
            CrystalDataLogic(path_provider, self.camera),
        )
        self.add_config_signals(self.detector_name, self.roi, self.maxipix_gap, *config_sigs)
        super().__init__(name=name)


class _SimulatedFamilyDetector(SimBcdiDetector):
    """A :class:`SimBcdiDetector` that simulates its own crystal on one detector family."""

    family: str = ""
    default_detector: str = ""

    def __init__(
        self,
        path_provider: PathProvider,
        angle: SignalR[float] | Device,
        *,
        detector: str | None = None,
        eta_range: tuple[float, float] = (-0.5, 0.5),
        acquire_time: float = 0.0,
        name: str = "",
        **scan: Unpack[ScanOptions],
    ) -> None:
        detector = detector or self.default_detector
        if self.family not in detector:
            raise ConfigurationError(
                f"{type(self).__name__} simulates {self.family} detectors, got {detector!r}; "
                "use SimBcdiDetector with CrystalSource.simulate(...) for any other"
            )
        source = CrystalSource.simulate(detector, eta_range=eta_range, **scan)
        super().__init__(path_provider, source, angle, acquire_time=acquire_time, name=name)


class SimMaxipix(_SimulatedFamilyDetector):
    """A simulated MAXIPIX (default ``"maxipix_2x2"``) with its own simulated crystal.

    Parameters
    ----------
    path_provider : PathProvider
        Directory and file name of each acquisition's file.
    angle : SignalR of float or motor
        The rocking angle (e.g. a :class:`SimRockingMotor`).
    detector : str, optional
        A MAXIPIX registry name: ``"maxipix_1x1"``, ``"maxipix_2x2"``, ``"maxipix_5x1"``.
    eta_range, **scan
        Passed to :meth:`CrystalSource.simulate` (``n_frames``, ``roi_size``, ``roi``,
        ``params``, ``seed``, ``peak_jitter``, ``maxipix_gap``).
    acquire_time : float
        Initial exposure per frame in seconds.
    name : str
        Device name.
    """

    family = "maxipix"
    default_detector = "maxipix_2x2"


class SimEiger(_SimulatedFamilyDetector):
    """A simulated EIGER (default ``"id01_eiger2m"``) with its own simulated crystal.

    Parameters
    ----------
    path_provider : PathProvider
        Directory and file name of each acquisition's file.
    angle : SignalR of float or motor
        The rocking angle (e.g. a :class:`SimRockingMotor`).
    detector : str, optional
        An EIGER registry name (``"eiger_1m"``, ``"eiger2_4m"``, ``"id01_eiger2m"``...).
    eta_range, **scan
        Passed to :meth:`CrystalSource.simulate` (``n_frames``, ``roi_size``, ``roi``,
        ``params``, ``seed``, ``peak_jitter``, ``maxipix_gap``).
    acquire_time : float
        Initial exposure per frame in seconds.
    name : str
        Device name.
    """

    family = "eiger"
    default_detector = "id01_eiger2m"
