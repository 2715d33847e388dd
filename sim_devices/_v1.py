"""A classic ophyd (v1) simulated BCDI detector with the image inline in each event."""

from __future__ import annotations

from typing import Any

import numpy as np
from ophyd import Component, Device, Signal
from ophyd.sim import SynSignal

from ._source import CrystalSource


class _ImageSignal(SynSignal):
    """A :class:`ophyd.sim.SynSignal` whose descriptor states the frame shape and dtype."""

    def describe(self) -> dict[str, dict[str, Any]]:
        value = np.asarray(self.get())
        return {
            self.name: {
                "source": f"SIM:{self.name}",
                "dtype": "array",
                "shape": list(value.shape),
                "dtype_numpy": value.dtype.str,
            }
        }


class CrystalConfig(Device):
    """The configuration the live callback reads from an ophyd v1 simulated detector.

    ``detector_name``, ``roi`` and ``maxipix_gap`` of its :class:`CrystalSource`
    (:meth:`show_source` sets them), shared by :class:`SimBcdiDetectorV1` and
    ``SimBcdiDetectorV1HDF5``.
    """

    detector_name = Component(Signal, value="", kind="config")
    roi = Component(Signal, value=np.zeros(4, dtype=np.int64), kind="config")
    maxipix_gap = Component(Signal, value=6, kind="config")

    def show_source(self, source: CrystalSource) -> None:
        """Put the source's detector name, region and MAXIPIX gap in the configuration."""
        self.detector_name.put(source.detector)
        self.roi.put(np.asarray(source.roi, dtype=np.int64))
        self.maxipix_gap.put(source.maxipix_gap)


class SimBcdiDetectorV1(CrystalConfig):
    """Simulated area detector for ophyd v1 beamlines: frames inline in the events.

    On trigger it reads the motor's ``position`` and takes the frame of ``source`` at
    that angle; the event carries it as ``<name>_image``, a ``(ny, nx)`` uint32 array,
    zero in the gaps. Configuration: ``<name>_detector_name``, ``<name>_roi``
    (``(y0, y1, x0, x1)``) and ``<name>_maxipix_gap``.

    Parameters
    ----------
    source : CrystalSource
        The simulated crystal and detector region.
    motor : ophyd positioner
        The rocking motor, e.g. ``ophyd.sim.SynAxis(name="eta")``: anything with a
        ``position``.
    name : str
        Device name.
    exposure_time : float
        Seconds a trigger takes (in a thread, as ``ophyd.sim.SynSignal`` does).
    **kwargs
        Passed to :class:`ophyd.Device`.
    """

    image = Component(_ImageSignal, kind="hinted")

    def __init__(
        self,
        source: CrystalSource,
        motor: Any,
        *,
        name: str,
        exposure_time: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.source = source
        self.motor = motor
        self.image.put(np.zeros(source.frame_shape, dtype=np.uint32))
        self.image.exposure_time = exposure_time
        self.image.sim_set_func(self._take_frame)
        self.show_source(source)

    def _take_frame(self) -> np.ndarray:
        """(ny, nx) uint32 frame at the motor's current position."""
        return self.source.acquire(float(self.motor.position))

    def trigger(self) -> Any:
        """Take a frame; returns the status of the image signal."""
        return self.image.trigger()
