"""The simulated rocking motor (``eta``)."""

from __future__ import annotations

from ophyd_async.sim import SimMotor


class SimRockingMotor(SimMotor):
    """A simulated rocking-angle motor in degrees: ``ophyd_async.sim.SimMotor``.

    Instant by default; with ``instant=False`` it moves at its ``velocity`` signal
    (degrees per second) with the ``acceleration_time`` ramps of ``SimMotor``.

    Parameters
    ----------
    name : str
        Device name (``"eta"`` at ESRF ID01).
    instant : bool
        Move instantly.
    initial_value : float
        Initial angle in degrees.
    """

    def __init__(self, name: str = "", instant: bool = True, initial_value: float = 0.0) -> None:
        super().__init__(name=name, instant=instant, initial_value=initial_value, units="deg")
