"""``SimLimaCCDs``: a simulated LIMA detector as a Tango device (server side).

It speaks the subset of LIMA's ``LimaCCDs`` interface a scan needs, with LIMA's names
and conventions: acquisition (``acq_nb_frames``, ``acq_expo_time``, ``latency_time``,
``acq_trigger_mode``, ``acq_status``; ``prepareAcq`` / ``startAcq`` / ``stopAcq`` /
``abortAcq``), frame counters (``last_image_acquired``, ``last_image_ready``,
``last_image_saved``, -1 before the first frame; ``ready_for_next_image``), image
(``image_width``, ``image_height``, ``image_type``) and saving (``saving_directory``,
``saving_prefix``, ``saving_suffix``, ``saving_next_number``, ``saving_index_format``,
``saving_format``, ``saving_mode``, ``saving_overwrite_policy``). Counters and state
push change events, as LIMA's ``TangoEvent`` mode does.

Frames are those of a :class:`~bcdi_online.sim_devices.CrystalSource` (a simulated
crystal on a MAXIPIX / EIGER region, with its gaps) at the angle read from the Tango
motor named by ``RockingMotor``, taken in a thread. With ``saving_mode`` ``AUTO_FRAME``
each acquisition (``prepareAcq`` to its end) goes to one HDF5 file
``<saving_directory>/<saving_prefix><index><saving_suffix>`` written like the other
simulators' (:data:`~bcdi_online.sim_devices.DATA_PATH`, NeXus ``pixel_mask``, SWMR).
Simulator extras: ``detector_name``, ``roi`` and ``maxipix_gap`` (the geometry a
consumer rebuilds the gap mask from).

Differences from LIMA: only ``HDF5`` saving, all frames of an acquisition in one file
(no ``saving_frame_per_file``), ``INTERNAL_TRIGGER`` and ``INTERNAL_TRIGGER_MULTI``
only, and ``acq_nb_frames`` 0 means "until ``stopAcq``" in both.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
from tango import AttrWriteType, DeviceProxy, DevState
from tango.server import Device, attribute, command, device_property

from ._hdf import FrameFile
from ._logic import FRAME_DTYPE
from ._source import CrystalSource

logger = logging.getLogger(__name__)

TRIGGER_MODES = ("INTERNAL_TRIGGER", "INTERNAL_TRIGGER_MULTI")
SAVING_MODES = ("MANUAL", "AUTO_FRAME")
OVERWRITE_POLICIES = ("ABORT", "OVERWRITE")
_EVENTS = (
    "State", "acq_status", "last_image_acquired", "last_image_ready", "last_image_saved",
    "ready_for_next_image", "saving_next_number",
)  # fmt: skip


class SimLimaCCDs(Device):
    """A LIMA-like detector taking frames of a simulated crystal rocked by a Tango motor.

    Device properties: ``Detector`` (registry name, e.g. ``maxipix_2x2`` or
    ``id01_eiger2m``), ``NFrames``, ``RoiSize``, ``Seed``, ``EtaStart``, ``EtaStop``,
    ``MaxipixGap`` (passed to :meth:`CrystalSource.simulate`) and ``RockingMotor`` (TRL
    of the device whose ``position`` is the rocking angle; empty: angle 0). States: ON
    (idle), RUNNING (acquiring), FAULT (the last acquisition failed:
    ``acq_status_fault_error`` says why; ``reset`` clears it).
    """

    Detector = device_property(dtype=str, default_value="maxipix_2x2")
    NFrames = device_property(dtype=int, default_value=64)
    RoiSize = device_property(dtype=int, default_value=128)
    Seed = device_property(dtype=int, default_value=0)
    EtaStart = device_property(dtype=float, default_value=-0.5)
    EtaStop = device_property(dtype=float, default_value=0.5)
    MaxipixGap = device_property(dtype=int, default_value=6)
    RockingMotor = device_property(dtype=str, default_value="")

    def init_device(self) -> None:
        """Simulate the crystal; idle, nothing prepared."""
        super().init_device()
        self.source = CrystalSource.simulate(
            self.Detector,
            n_frames=self.NFrames,
            roi_size=self.RoiSize,
            seed=self.Seed,
            eta_range=(self.EtaStart, self.EtaStop),
            maxipix_gap=self.MaxipixGap,
        )
        self._motor: DeviceProxy | None = None  # connected at the first frame
        self._lock = threading.Lock()
        self._nb_frames, self._expo_time, self._latency = 1, 0.0, 0.0
        self._trigger_mode = TRIGGER_MODES[0]
        self._saving = {
            "directory": "", "prefix": "", "suffix": ".h5", "format": "HDF5",
            "mode": "MANUAL", "overwrite_policy": "ABORT", "index_format": "%04d",
        }  # fmt: skip
        self._next_number = 0
        self._acquired = self._ready = self._saved = -1
        self._fault = ""
        self._file: FrameFile | None = None
        self._prepared = False
        self._next_ok = False  # INTERNAL_TRIGGER_MULTI: the last frame started is done
        self._thread: threading.Thread | None = None
        self._starts = threading.Semaphore(0)
        self._stop = threading.Event()
        for name in _EVENTS:
            self.set_change_event(name, True, False)
        self.set_state(DevState.ON)

    def delete_device(self) -> None:
        """End an acquisition in progress (its thread closes the file)."""
        self._abort()

    # -- acquisition ------------------------------------------------------------------

    acq_nb_frames = attribute(
        dtype=int, access=AttrWriteType.READ_WRITE, doc="frames per acquisition (0: until stopAcq)"
    )
    acq_expo_time = attribute(dtype=float, access=AttrWriteType.READ_WRITE, unit="s")
    latency_time = attribute(dtype=float, access=AttrWriteType.READ_WRITE, unit="s")
    acq_trigger_mode = attribute(dtype=str, access=AttrWriteType.READ_WRITE)

    def read_acq_nb_frames(self) -> int:
        return self._nb_frames

    def write_acq_nb_frames(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"acq_nb_frames must be >= 0, got {value}")
        self._nb_frames = int(value)

    def read_acq_expo_time(self) -> float:
        return self._expo_time

    def write_acq_expo_time(self, value: float) -> None:
        self._expo_time = max(0.0, float(value))

    def read_latency_time(self) -> float:
        return self._latency

    def write_latency_time(self, value: float) -> None:
        self._latency = max(0.0, float(value))

    def read_acq_trigger_mode(self) -> str:
        return self._trigger_mode

    def write_acq_trigger_mode(self, value: str) -> None:
        self._trigger_mode = _choice("acq_trigger_mode", value, TRIGGER_MODES)

    @attribute(dtype=str, doc="Ready, Running or Fault")
    def acq_status(self) -> str:
        return "Fault" if self._fault else ("Running" if self._running() else "Ready")

    @attribute(dtype=str)
    def acq_status_fault_error(self) -> str:
        return self._fault

    @attribute(dtype=int)
    def last_image_acquired(self) -> int:
        return self._acquired

    @attribute(dtype=int)
    def last_image_ready(self) -> int:
        return self._ready

    @attribute(dtype=int)
    def last_image_saved(self) -> int:
        return self._saved

    @attribute(dtype=bool, doc="startAcq takes another frame now (INTERNAL_TRIGGER_MULTI)")
    def ready_for_next_image(self) -> bool:
        return self._ready_for_next_image()

    # -- image --------------------------------------------------------------------------

    @attribute(dtype=int)
    def image_width(self) -> int:
        return self.source.frame_shape[1]

    @attribute(dtype=int)
    def image_height(self) -> int:
        return self.source.frame_shape[0]

    @attribute(dtype=str, doc="Bpp32: unsigned 32-bit counts")
    def image_type(self) -> str:
        return "Bpp32"

    @attribute(dtype=str)
    def camera_type(self) -> str:
        return "Simulator"

    @attribute(dtype=str, doc="registry name of the simulated detector")
    def detector_name(self) -> str:
        return self.source.detector

    @attribute(dtype=(int,), max_dim_x=4, doc="(y0, y1, x0, x1) of the frames, half-open")
    def roi(self) -> np.ndarray:
        return np.asarray(self.source.roi, dtype=np.int64)

    @attribute(dtype=int, doc="MAXIPIX gap convention of the gap mask")
    def maxipix_gap(self) -> int:
        return self.source.maxipix_gap

    # -- saving -------------------------------------------------------------------------

    saving_directory = attribute(dtype=str, access=AttrWriteType.READ_WRITE)
    saving_prefix = attribute(dtype=str, access=AttrWriteType.READ_WRITE)
    saving_suffix = attribute(dtype=str, access=AttrWriteType.READ_WRITE)
    saving_format = attribute(dtype=str, access=AttrWriteType.READ_WRITE, doc="HDF5 only")
    saving_mode = attribute(dtype=str, access=AttrWriteType.READ_WRITE, doc="MANUAL, AUTO_FRAME")
    saving_overwrite_policy = attribute(dtype=str, access=AttrWriteType.READ_WRITE)
    saving_index_format = attribute(dtype=str, access=AttrWriteType.READ_WRITE)
    saving_next_number = attribute(dtype=int, access=AttrWriteType.READ_WRITE)

    def read_saving_directory(self) -> str:
        return self._saving["directory"]

    def write_saving_directory(self, value: str) -> None:
        self._saving["directory"] = value

    def read_saving_prefix(self) -> str:
        return self._saving["prefix"]

    def write_saving_prefix(self, value: str) -> None:
        self._saving["prefix"] = value

    def read_saving_suffix(self) -> str:
        return self._saving["suffix"]

    def write_saving_suffix(self, value: str) -> None:
        self._saving["suffix"] = value

    def read_saving_format(self) -> str:
        return self._saving["format"]

    def write_saving_format(self, value: str) -> None:
        self._saving["format"] = _choice("saving_format", value, ("HDF5",))

    def read_saving_mode(self) -> str:
        return self._saving["mode"]

    def write_saving_mode(self, value: str) -> None:
        self._saving["mode"] = _choice("saving_mode", value, SAVING_MODES)

    def read_saving_overwrite_policy(self) -> str:
        return self._saving["overwrite_policy"]

    def write_saving_overwrite_policy(self, value: str) -> None:
        self._saving["overwrite_policy"] = _choice(
            "saving_overwrite_policy", value, OVERWRITE_POLICIES
        )

    def read_saving_index_format(self) -> str:
        return self._saving["index_format"]

    def write_saving_index_format(self, value: str) -> None:
        value % 0  # noqa: B018 (rejects a format without one integer field)
        self._saving["index_format"] = value

    def read_saving_next_number(self) -> int:
        return self._next_number

    def write_saving_next_number(self, value: int) -> None:
        self._next_number = int(value)

    # -- commands -----------------------------------------------------------------------

    @command(dtype_in=str, dtype_out=(str,), doc_out="the values the attribute accepts")
    def getAttrStringValueList(self, name: str) -> list[str]:  # noqa: N802 (LIMA's names)
        """Values a string attribute accepts (LIMA's convention for its enumerations)."""
        choices = {
            "acq_trigger_mode": TRIGGER_MODES,
            "saving_mode": SAVING_MODES,
            "saving_format": ("HDF5",),
            "saving_overwrite_policy": OVERWRITE_POLICIES,
        }
        return list(choices.get(name.lower(), ()))

    @command
    def prepareAcq(self) -> None:  # noqa: N802
        """Reset the counters and open the acquisition's file (``AUTO_FRAME``)."""
        if self._running():
            raise RuntimeError("acquisition running or stopping: stopAcq, wait for Ready")
        self._close_file()
        self._fault = ""
        self.source.reset()  # frame k of an acquisition: noise of default_rng([Seed, k])
        if self._saving["mode"] == "AUTO_FRAME":
            path = self._saving_path()
            if path.exists() and self._saving["overwrite_policy"] == "ABORT":
                raise FileExistsError(f"{path} exists (saving_overwrite_policy ABORT)")
            path.parent.mkdir(parents=True, exist_ok=True)
            attrs = {
                "detector": self.source.detector,
                "roi": np.asarray(self.source.roi, dtype=np.int64),
                "maxipix_gap": self.source.maxipix_gap,
            }
            self._file = FrameFile(path, self.source.mask, FRAME_DTYPE, attrs)
        self._set_counters(-1)
        self._prepared = True
        self._push("acq_status", "Ready")
        self._push("ready_for_next_image", True)

    @command
    def startAcq(self) -> None:  # noqa: N802
        """Start the prepared acquisition; in ``INTERNAL_TRIGGER_MULTI``, take one frame."""
        if self._running():
            if self._trigger_mode != "INTERNAL_TRIGGER_MULTI":
                raise RuntimeError("acquisition already running")
            if not self._ready_for_next_image():
                raise RuntimeError("not ready for the next image")
            self._next_ok = False
            self._starts.release()
            self._push("ready_for_next_image", False)
            return
        if not self._prepared:
            raise RuntimeError("prepareAcq first")
        self._prepared = self._next_ok = False
        self._stop.clear()
        self._starts = threading.Semaphore(1)
        multi = self._trigger_mode == "INTERNAL_TRIGGER_MULTI"
        self._thread = threading.Thread(
            target=self._acquire, args=(self._nb_frames, multi), name="sim-lima", daemon=True
        )
        self.set_state(DevState.RUNNING)
        self._push("State", DevState.RUNNING)
        self._push("acq_status", "Running")
        self._push("ready_for_next_image", False)
        self._thread.start()

    @command
    def stopAcq(self) -> None:  # noqa: N802
        """End the acquisition after the frame in progress.

        ``acq_status`` is Ready, and the file closed, once it has.
        """
        self._abort()

    @command
    def abortAcq(self) -> None:  # noqa: N802
        """Stop as ``stopAcq`` does (frames taken are kept)."""
        self._abort()

    @command
    def reset(self) -> None:
        """Stop the acquisition; if idle now, forget a fault (else its end clears it)."""
        self._abort()
        self._fault = ""
        if self._running():
            return
        self.set_state(DevState.ON)
        self._push("State", DevState.ON)
        self._push("acq_status", "Ready")

    # -- internals ----------------------------------------------------------------------

    def _running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _ready_for_next_image(self) -> bool:
        if not self._running():
            return self._prepared
        return self._next_ok

    def _saving_path(self) -> Path:
        name = self._saving["prefix"] + self._saving["index_format"] % self._next_number
        return Path(self._saving["directory"]) / (name + self._saving["suffix"])

    def _angle(self) -> float:
        if not self.RockingMotor:
            return 0.0
        if self._motor is None:
            self._motor = DeviceProxy(self.RockingMotor)
        return float(self._motor.read_attribute("position").value)

    def _acquire(self, nb_frames: int, multi: bool) -> None:
        """Take frames until ``nb_frames`` (0: until stopAcq): the acquisition thread."""
        index = 0
        start = time.monotonic()
        try:
            while not nb_frames or index < nb_frames:
                if multi:
                    while not self._starts.acquire(timeout=0.05):
                        if self._stop.is_set():
                            return
                elif self._stop.is_set():
                    return
                frame = self.source.acquire(self._angle())
                delay = start + index * (self._expo_time + self._latency) + self._expo_time
                if self._stop.wait(max(0.0, delay - time.monotonic())):
                    return
                self._push("last_image_acquired", index)
                self._acquired = self._ready = index
                self._push("last_image_ready", index)
                if self._file is not None:
                    self._file.append(frame)
                    self._saved = index
                    self._push("last_image_saved", index)
                if multi and (not nb_frames or index + 1 < nb_frames):
                    self._next_ok = True
                    self._push("ready_for_next_image", True)
                index += 1
        except Exception as err:  # the device says why in FAULT
            logger.exception("acquisition failed")
            self._fault = f"{type(err).__name__}: {err}"
        finally:
            self._end_acquisition()

    def _end_acquisition(self) -> None:
        saved = self._file is not None
        self._close_file()
        if saved:
            self._next_number += 1
            self._push("saving_next_number", self._next_number)
        state = DevState.FAULT if self._fault else DevState.ON
        self.set_state(state)
        self._push("State", state)
        self._push("acq_status", "Fault" if self._fault else "Ready")
        self._next_ok = False
        self._push("ready_for_next_image", False)

    def _abort(self) -> None:
        """Ask the acquisition thread to end.

        The thread closes the file and pushes the events; it is never joined here, as a
        command holds the device lock its pushes need.
        """
        self._stop.set()
        if not self._running():  # prepared, never started: nobody else closes the file
            self._prepared = False
            self._close_file()

    def _close_file(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _set_counters(self, value: int) -> None:
        self._acquired = self._ready = self._saved = value
        for name in ("last_image_acquired", "last_image_ready", "last_image_saved"):
            self._push(name, value)

    def _push(self, name: str, value: object) -> None:
        self.push_change_event(name, value)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    value = value.upper()
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value
