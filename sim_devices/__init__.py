"""Simulated BCDI hardware for Bluesky: a rocking motor and gap-affected area detectors.

A :class:`CrystalSource` holds a simulated crystal's expected intensity on a detector
region and gives the noisy frame at any rocking angle. :class:`SimBcdiDetector`
(ophyd-async; :class:`SimMaxipix`, :class:`SimEiger` simulate their own crystal)
writes those frames to an HDF5 file and emits ``stream_resource`` / ``stream_datum``
documents as real area detectors do; :class:`SimBcdiDetectorV1` (ophyd v1) puts each
frame inline in its event, :class:`SimBcdiDetectorV1HDF5` (ophyd v1) writes them to HDF5
with legacy ``resource`` / ``datum`` documents, as ophyd's areaDetector HDF5 plugin does.
All read the rocking angle (:class:`SimRockingMotor`, or
``ophyd.sim.SynAxis`` in v1) at every trigger.

On the Tango side, :class:`SimLimaCCDs` is a LIMA-like detector device server taking
the frames of a simulated crystal at the angle of a :class:`SimRockingAxis` device
(``python -m bcdi_online.sim_devices.lima_server``); :class:`LimaDetector` /
:class:`SimLimaDetector` (ophyd-async ``StandardDetector`` on LIMA's Tango interface)
and :class:`TangoRockingMotor` scan them.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._detector import SimBcdiDetector, SimEiger, SimMaxipix
from ._hdf import DATA_PATH, MASK_PATH
from ._motor import SimRockingMotor
from ._source import AcquiredFrames, CrystalSource
from ._v1 import SimBcdiDetectorV1
from ._v1_files import SimBcdiDetectorV1HDF5

#: The Tango devices and their module: imported on first use, as they need pytango
#: (``pip install "bcdi-online[tango]"``).
_TANGO = {
    "LimaDetector": "._lima",
    "LimaDriver": "._lima",
    "SimLimaDetector": "._lima",
    "SimLimaDriver": "._lima",
    "SimLimaCCDs": "._lima_server",
    "SimRockingAxis": "._tango_motor_server",
    "TangoRockingMotor": "._tango_motor",
}


def __getattr__(name: str) -> Any:
    """Import a Tango device class when it is first asked for."""
    if name not in _TANGO:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_TANGO[name], __name__)
    except ModuleNotFoundError as err:
        if err.name != "tango":
            raise
        raise ModuleNotFoundError(
            f"{name} needs pytango: pip install 'bcdi-online[tango]'", name="tango"
        ) from err
    return getattr(module, name)


__all__ = [
    "DATA_PATH",
    "MASK_PATH",
    "AcquiredFrames",
    "CrystalSource",
    "LimaDetector",
    "LimaDriver",
    "SimBcdiDetector",
    "SimBcdiDetectorV1",
    "SimBcdiDetectorV1HDF5",
    "SimEiger",
    "SimLimaCCDs",
    "SimLimaDetector",
    "SimLimaDriver",
    "SimMaxipix",
    "SimRockingAxis",
    "SimRockingMotor",
    "TangoRockingMotor",
]
