"""An ophyd-async motor on a Tango axis with ``position``, ``state`` and ``stop``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from ophyd_async.core import (
    MovableLogic,
    SignalR,
    SignalRW,
    StandardMovable,
    StandardReadable,
    TimeoutCalculator,
    TriggerableCommand,
    wait_for_value,
)
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.tango.core import DevStateEnum, TangoDevice, TangoPolling


@dataclass
class _TangoAxisMoveLogic(MovableLogic[float]):
    state: SignalR[DevStateEnum]
    stop_: TriggerableCommand

    async def stop(self) -> None:
        await self.stop_.trigger()

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        # write the target, then wait for the axis to be ON again (arrived or stopped)
        await self.setpoint.set(new_position, timeout=timeout())
        await wait_for_value(self.state, DevStateEnum.ON, timeout=timeout())


class TangoRockingMotor(TangoDevice, StandardReadable, StandardMovable[float]):
    """A rocking motor served by Tango (e.g. :class:`SimRockingAxis`), for ophyd-async.

    ``position`` is read (hinted: data key ``<name>``) and written to move; the
    move ends when ``state`` is ON again. Built like ``ophyd_async.tango.demo.DemoMotor``.

    Parameters
    ----------
    trl : str
        Tango resource locator of the axis.
    support_events : bool
        Use the server's change events (else poll every 0.05 s).
    name : str
        Device name.
    """

    position: Annotated[SignalRW[float], TangoPolling(0.05), Format.HINTED_SIGNAL]
    state: Annotated[SignalR[DevStateEnum], TangoPolling(0.05)]
    stop_: TriggerableCommand

    def __init__(self, trl: str, support_events: bool = True, name: str = "") -> None:
        # filled from the server, as DemoMotor is: a declared ``stop_`` (trailing underscore:
        # ``stop`` is a bluesky verb) is only matched to ``stop`` when auto-filling
        super().__init__(trl, support_events=support_events, name=name)

    @cached_property
    def movable_logic(self) -> MovableLogic:
        """Write ``position``, wait for ``state`` ON."""
        return _TangoAxisMoveLogic(
            setpoint=self.position,
            readback=self.position,
            state=self.state,
            stop_=self.stop_,
        )
