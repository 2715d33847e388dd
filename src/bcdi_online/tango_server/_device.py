"""``BcdiOnline``: the live inpainting service as a Tango device.

Beamlines that run Tango see the online processor as one device: it listens to the
bluesky 0MQ proxy (as ``bcdi-online serve`` does), reports its state (ON listening,
RUNNING while a run is processed, OFF stopped, FAULT when it cannot run, INIT while it
loads the model and connects to Tiled) and the last run's progress as attributes, and
takes ``Start`` / ``Stop`` commands. Start-up runs in a thread, so the device is exported
and answers at once, even while an unreachable Tiled server is retried.

Clients subscribe instead of polling: the device pushes change events for ``State``,
``Status`` and every run attribute (``EVENT_ATTRIBUTES``) when they change (it looks
every ``EVENT_PERIOD`` s). Conventions of LIMA's processing devices (``RoiCounter``,
``Mask``, ``BackgroundSubstraction``) it follows: ``Start`` / ``Stop`` commands with
state ON (processing) / OFF (stopped), events pushed by the device rather than polling,
and ``getAttrStringValueList`` giving the values of an enumerated string attribute.
Not followed: ``RunLevel`` (the device is not a task in LIMA's processing chain, it reads
the scan's documents). Where the result went:
``CorrectedRunUid`` (the corrected scan's own Bluesky run, ``original_run_uid`` = the raw
run), ``CorrectedNode`` (its Tiled path), ``SavedTo`` and ``LocalFallback``.

The Tiled API key comes from the file named by ``TiledApiKeyFile`` (or the device
server's ``$TILED_API_KEY``); ``TiledApiKey`` (stored in the Tango database, readable
by its users) is the fallback. No status, attribute or log ever shows it. The device
only accepts msgpack documents (``Publisher(..., serializer=msgpack_serializer)``).

Run it like any device server::

    BcdiOnline beamline            # registered in the Tango database
    BcdiOnline beamline -nodb -port 45450 -dlist id01/bcdi/online   # without one
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

from tango import DevFailed, DevState
from tango.server import Device, attribute, command, device_property

from .._errors import ConfigurationError, ServiceError
from .._redact import redact, register_secret
from .._settings import ServiceSettings
from ..callbacks import LiveInpainting, LiveService

EVENT_PERIOD = 0.2
"""Seconds between two looks for changes to push as events."""

EVENT_ATTRIBUTES = (
    "State", "Status", "LastRunUid", "LastRunStatus", "CorrectedRunUid", "CorrectedNode",
    "SavedTo",
    "LocalFallback", "FramesReceived", "FramesFinal", "Windows", "MaxFrameLatency",
    "Degraded", "LastError",
)  # fmt: skip
"""Attributes whose change events the device pushes (clients subscribe, not poll)."""

STRING_VALUES = {
    "lastrunstatus": ("", "running", "complete", "incomplete", "aborted", "failed", "interrupted"),
    "savedto": ("", "tiled", "fallback"),
}
"""Values of the enumerated string attributes (``getAttrStringValueList``)."""


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (``MaxFrameLatency`` before a run)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


class BcdiOnline(Device):
    """Live gap inpainting of BCDI rocking scans, fed by a bluesky 0MQ proxy.

    Device properties name the proxy (``ZmqAddress``), the Tiled server the corrected
    data go to (``TiledUri``; its key in the file ``TiledApiKeyFile``, else
    ``$TILED_API_KEY``, else ``TiledApiKey``), the model (``ModelPath``, empty for the
    shipped weights), the torch device (``TorchDevice``, empty for CUDA when present),
    the result files' directory (``FallbackDir``) and the seconds ``Stop`` waits for
    runs in progress (``Grace``). Each property left empty (``Grace`` < 0) takes its
    setting from :class:`~bcdi_online._settings.ServiceSettings`: the TOML file
    ``ConfigFile`` (else ``$BCDI_ONLINE_CONFIG``), ``$BCDI_ONLINE_*``, the defaults, as
    ``bcdi-online serve`` does; a bad setting puts the device in FAULT, saying which.
    Runs are recorded as the device's (its name): a restarted device ends those an
    earlier instance left ``running``.
    """

    # empty (or Grace < 0): the setting from ConfigFile / $BCDI_ONLINE_* / its default
    ConfigFile = device_property(dtype=str, default_value="")
    ZmqAddress = device_property(dtype=str, default_value="")
    TiledUri = device_property(dtype=str, default_value="")
    TiledApiKey = device_property(dtype=str, default_value="")
    TiledApiKeyFile = device_property(dtype=str, default_value="")
    ModelPath = device_property(dtype=str, default_value="")
    TorchDevice = device_property(dtype=str, default_value="")
    FallbackDir = device_property(dtype=str, default_value="")
    Grace = device_property(dtype=float, default_value=-1.0)

    def init_device(self) -> None:
        """Start loading the model and connecting to Tiled (state INIT until done)."""
        super().init_device()
        self._service: LiveService | None = None
        self._fault: str | None = None
        self._closing = threading.Event()
        try:
            self._settings = ServiceSettings.load(
                self.ConfigFile or None,
                zmq_out=self.ZmqAddress or None,
                tiled_uri=self.TiledUri or None,
                api_key_file=self.TiledApiKeyFile or None,
                model=self.ModelPath or None,
                device=self.TorchDevice or None,
                fallback_dir=self.FallbackDir or None,
                grace=self.Grace if self.Grace >= 0 else None,
            )
        except ConfigurationError as err:  # the device stays up, in FAULT, and says why
            self._settings = ServiceSettings.model_construct()  # the defaults, for Status
            self._fault = str(err)
        settings = self._settings
        self._startup = threading.Thread(
            target=self._start_service,
            kwargs={
                "tiled_uri": settings.tiled_uri,
                "api_key": self._api_key(),
                "model": settings.model,
                "device": settings.device,
                "fallback_dir": settings.fallback_dir,
                "fallback_after": settings.fallback_after,
                "crystal": settings.crystal,
                "frames_from": settings.frames_from,
                "address": settings.zmq_out,
                "owner": f"tango:{self.get_name()}",
            },
            name="bcdi-online-startup",
            daemon=True,
        )
        self._startup.start()
        for name in EVENT_ATTRIBUTES:
            self.set_change_event(name, True, False)
        watcher = threading.Thread(
            target=self._watch, args=(self._closing,), name="bcdi-online-events", daemon=True
        )
        watcher.start()

    def _api_key(self) -> str | None:
        """Return the Tiled key: its file, else ``$TILED_API_KEY``, else ``TiledApiKey``."""
        key, path = None, self._settings.api_key_file
        if path:
            try:
                key = Path(path).read_text().strip().splitlines()[0].strip()
            except (OSError, IndexError, UnicodeDecodeError) as err:
                self._fault = f"cannot read the Tiled API key file {str(path)!r}: {err}"
        key = key or os.environ.get("TILED_API_KEY") or self.TiledApiKey or None
        register_secret(key)
        return key

    def _start_service(self, tiled_uri: str, address: str, **options: Any) -> None:
        """Load the model, connect to Tiled, start listening (the start-up thread)."""
        if self._fault:  # the key file could not be read
            return
        try:
            live = LiveInpainting.from_uri(tiled_uri, **options)
        except Exception as err:  # the device stays up, in FAULT, and says why
            self._fault = redact(
                f"cannot start (Tiled {tiled_uri}, model {options['model'] or 'shipped'}): "
                f"{type(err).__name__}: {err}"
            )
            return
        if self._closing.is_set():  # Init or shutdown came while starting
            return
        service = LiveService(live, address)
        service.start()
        self._service = service

    def delete_device(self) -> None:
        """Stop listening; runs in progress get ``Grace`` seconds, then are saved locally."""
        self._closing.set()
        self._startup.join()
        if self._service is not None:
            self._service.stop(self._settings.grace, interrupt=True)

    # -- state ------------------------------------------------------------------------

    def dev_state(self) -> DevState:
        """INIT (starting), FAULT, OFF (not listening), RUNNING (a run) or ON (waiting)."""
        service = self._service
        if self._startup.is_alive():
            return DevState.INIT
        if self._fault or service is None or service.error:
            return DevState.FAULT
        if service.runs_in_progress():
            return DevState.RUNNING
        return DevState.ON if service.listening else DevState.OFF

    def dev_status(self) -> str:
        """One line a beamline scientist can act on (never an API key)."""
        return redact(self._status_line())

    def _status_line(self) -> str:
        service = self._service
        if self._startup.is_alive():
            return f"starting: loading the model, connecting to Tiled {self._settings.tiled_uri}"
        if self._fault or service is None:
            return str(self._fault)
        if service.error:
            return f"stopped listening on {self._settings.zmq_out}: {service.error}"
        running = service.runs_in_progress()
        if running:
            return f"inpainting run {running[-1]} (listening on {self._settings.zmq_out})"
        if service.listening:
            return f"listening on {self._settings.zmq_out}, writing to {self._settings.tiled_uri}"
        return "stopped (Start to listen again)"

    # -- commands ---------------------------------------------------------------------

    @command
    def Start(self) -> None:  # noqa: N802 (Tango command names)
        """Listen to the proxy again after ``Stop`` (or after the dispatcher failed)."""
        if self._startup.is_alive():
            raise ServiceError("still starting (state INIT): it listens once started")
        if self._service is None:
            raise ServiceError(str(self._fault))
        self._service.start()

    @command(dtype_out=(str,), doc_out="uids of runs left running after the grace period")
    def Stop(self) -> list[str]:  # noqa: N802
        """Stop listening; wait up to ``Grace`` seconds for runs in progress."""
        if self._startup.is_alive():
            raise ServiceError("still starting (state INIT): Stop once it is ON")
        if self._service is None:
            return []
        return self._service.stop(self._settings.grace)

    # -- the last run ----------------------------------------------------------------

    def _last_run(self) -> tuple[str, dict[str, Any]]:
        """Uid and health of the most recent run (``("", {})`` before the first)."""
        health = {} if self._service is None else self._service.live.health()
        if not health:
            return "", {}
        uid = list(health)[-1]
        return uid, health[uid]

    def _run_values(self) -> dict[str, Any]:
        """Value of every run attribute, from the last run's health."""
        uid, last = self._last_run()
        return {
            "LastRunUid": uid,
            "LastRunStatus": str(last.get("status", "")),
            "CorrectedRunUid": str(last.get("corrected_run_uid") or ""),
            "CorrectedNode": str(last.get("tiled_path") or ""),
            "SavedTo": str(last.get("saved_to") or ""),
            "LocalFallback": str(last.get("local_fallback") or ""),
            "FramesReceived": int(last.get("frames_received", 0)),
            "FramesFinal": int(last.get("frames_final", 0)),
            "Windows": int(last.get("windows", 0)),
            "MaxFrameLatency": float(last.get("max_latency_s", math.nan)),
            "Degraded": bool(last.get("degraded", False)),
            "LastError": redact(last.get("last_error") or ""),
        }

    @attribute(dtype=str, doc="uid of the last raw run followed")
    def LastRunUid(self) -> str:  # noqa: N802
        return str(self._run_values()["LastRunUid"])

    @attribute(dtype=str, doc="running / complete / incomplete / aborted / failed / interrupted")
    def LastRunStatus(self) -> str:  # noqa: N802
        return str(self._run_values()["LastRunStatus"])

    @attribute(dtype=str, doc="uid of the last run's corrected run (a Bluesky run; '' until made)")
    def CorrectedRunUid(self) -> str:  # noqa: N802
        return str(self._run_values()["CorrectedRunUid"])

    @attribute(
        dtype=str,
        doc="Tiled path of the corrected run, relative to the Tiled URI (its uid); '' until made",
    )
    def CorrectedNode(self) -> str:  # noqa: N802
        return str(self._run_values()["CorrectedNode"])

    @attribute(dtype=str, doc="where the last run's result is saved: tiled, fallback or ''")
    def SavedTo(self) -> str:  # noqa: N802
        return str(self._run_values()["SavedTo"])

    @attribute(
        dtype=str, doc="result file holding the last run's result when Tiled does not ('' if none)"
    )
    def LocalFallback(self) -> str:  # noqa: N802
        return str(self._run_values()["LocalFallback"])

    @attribute(dtype=int, doc="frames of the last run received from the scan")
    def FramesReceived(self) -> int:  # noqa: N802
        return int(self._run_values()["FramesReceived"])

    @attribute(dtype=int, doc="frames of the last run corrected and final")
    def FramesFinal(self) -> int:  # noqa: N802
        return int(self._run_values()["FramesFinal"])

    @attribute(dtype=int, doc="model windows run for the last run")
    def Windows(self) -> int:  # noqa: N802
        return int(self._run_values()["Windows"])

    @attribute(dtype=float, unit="s", doc="longest delay frame received -> frame final")
    def MaxFrameLatency(self) -> float:  # noqa: N802
        return float(self._run_values()["MaxFrameLatency"])

    @attribute(dtype=bool, doc="the last run's queue overflowed (nothing dropped)")
    def Degraded(self) -> bool:  # noqa: N802
        return bool(self._run_values()["Degraded"])

    @attribute(dtype=str, doc="last error of the last run ('' if none)")
    def LastError(self) -> str:  # noqa: N802
        return str(self._run_values()["LastError"])

    @command(dtype_in=str, dtype_out=(str,), doc_out="the values the attribute takes")
    def getAttrStringValueList(self, name: str) -> list[str]:  # noqa: N802 (LIMA's name)
        """Values a string attribute takes, as LIMA devices answer for their enumerations."""
        return list(STRING_VALUES.get(name.lower(), ()))

    # -- change events ----------------------------------------------------------------

    def _watch(self, closing: threading.Event) -> None:
        """Push a change event for State, Status and each run attribute that changed.

        The service has no callbacks of its own: this thread compares the values every
        ``EVENT_PERIOD`` seconds. It stops when ``closing`` is set (the device deleted,
        or re-initialised: ``Init`` starts another).
        """
        last: dict[str, Any] = {}
        while not closing.wait(EVENT_PERIOD):
            values = {"State": self.dev_state(), "Status": self.dev_status()}
            values.update(self._run_values())
            for name, value in values.items():
                if name in last and _same(last[name], value):
                    continue
                last[name] = value
                try:
                    self._push(name, value)
                except DevFailed:  # the device is being deleted
                    return

    def _push(self, name: str, value: Any) -> None:
        # State and Status events carry the device's stored value, not an argument
        if name == "State":
            self.set_state(value)
            self.push_change_event(name)
        elif name == "Status":
            self.set_status(value)
            self.push_change_event(name)
        else:
            self.push_change_event(name, value)
