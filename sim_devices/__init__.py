"""Simulated BCDI hardware for Bluesky: a rocking motor and gap-affected area detectors.

A :class:`CrystalSource` holds a simulated crystal's expected intensity on a detector
region and gives the noisy frame at any rocking angle. :class:`SimBcdiDetector`
(ophyd-async; :class:`SimMaxipix`, :class:`SimEiger` simulate their own crystal)
writes those frames to an HDF5 file and emits ``stream_resource`` / ``stream_datum``
documents as real area detectors do; :class:`SimBcdiDetectorV1` (ophyd v1) puts each
frame inline in its event. Both read the rocking angle (:class:`SimRockingMotor`, or
``ophyd.sim.SynAxis`` in v1) at every trigger.

On the Tango side, :class:`SimLimaCCDs` is a LIMA-like detector device server taking
the frames of a simulated crystal at the angle of a :class:`SimRockingAxis` device
(``python -m bcdi_online.sim_devices.lima_server``); :class:`LimaDetector` /
:class:`SimLimaDetector` (ophyd-async ``StandardDetector`` on LIMA's Tango interface)
and :class:`TangoRockingMotor` scan them.
"""

from __future__ import annotations

from ._detector import SimBcdiDetector, SimEiger, SimMaxipix
from ._hdf import DATA_PATH, MASK_PATH
from ._lima import LimaDetector, LimaDriver, SimLimaDetector, SimLimaDriver
from ._lima_server import SimLimaCCDs
from ._motor import SimRockingMotor
from ._source import AcquiredFrames, CrystalSource
from ._tango_motor import TangoRockingMotor
from ._tango_motor_server import SimRockingAxis
from ._v1 import SimBcdiDetectorV1

__all__ = [
    "DATA_PATH",
    "MASK_PATH",
    "AcquiredFrames",
    "CrystalSource",
    "LimaDetector",
    "LimaDriver",
    "SimBcdiDetector",
    "SimBcdiDetectorV1",
    "SimEiger",
    "SimLimaCCDs",
    "SimLimaDetector",
    "SimLimaDriver",
    "SimMaxipix",
    "SimRockingAxis",
    "SimRockingMotor",
    "TangoRockingMotor",
]
