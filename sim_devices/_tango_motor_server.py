"""``SimRockingAxis``: a simulated rocking motor as a Tango device (server side)."""

from __future__ import annotations

import threading

from tango import AttrWriteType, DevState
from tango.server import Device, attribute, command, device_property


class SimRockingAxis(Device):
    """A rocking-angle motor in degrees: ``position`` (read: where it is; write: go there).

    A move has no velocity: the axis is ``MOVING`` for ``MoveTime`` seconds, then at the
    target and ``ON`` (instant, and ``ON`` throughout, when ``MoveTime`` is 0). Change
    events are pushed for ``position`` and ``state`` when they change, so clients
    subscribe instead of polling.
    """

    MoveTime = device_property(dtype=float, default_value=0.0, doc="seconds a move takes")
    InitialPosition = device_property(dtype=float, default_value=0.0)

    def init_device(self) -> None:
        """Start at ``InitialPosition``, state ON."""
        super().init_device()
        self._position = float(self.InitialPosition)
        self._mover: threading.Thread | None = None
        self._stop = threading.Event()
        for name in ("position", "state"):
            self.set_change_event(name, True, False)
        self.set_state(DevState.ON)

    @attribute(dtype=float, access=AttrWriteType.READ_WRITE, unit="deg", format="%8.5f")
    def position(self) -> float:
        """Return the angle now, in degrees."""
        return self._position

    def write_position(self, target: float) -> None:
        """Move to ``target`` degrees (state MOVING until there)."""
        if self.get_state() == DevState.MOVING:
            raise RuntimeError(f"{self.get_name()} is moving: stop it first")
        if self.MoveTime <= 0:
            self._arrive(target)
            return
        self._set_state(DevState.MOVING)
        self._stop.clear()
        self._mover = threading.Thread(target=self._move, args=(target,), daemon=True)
        self._mover.start()

    def _move(self, target: float) -> None:
        if not self._stop.wait(self.MoveTime):
            self._arrive(target)
        self._set_state(DevState.ON)

    def _arrive(self, target: float) -> None:
        self._position = float(target)
        self.push_change_event("position", self._position)

    def _set_state(self, state: DevState) -> None:
        self.set_state(state)
        self.push_change_event("state", state)

    @attribute(dtype=DevState, access=AttrWriteType.READ)
    def state(self) -> DevState:
        """Return the state (ON still, MOVING on the way): ophyd-async reads it here."""
        return self.get_state()

    @command
    def stop(self) -> None:
        """Stop a move where it is (the position stays the last one reached)."""
        self._stop.set()
