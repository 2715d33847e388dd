"""Serve the simulated LIMA detector and its rocking motor as Tango devices.

``python -m bcdi_online.sim_devices.lima_server --port 45460`` (or the
``bcdi-online-sim-lima`` console script) serves, without a Tango database, a
:class:`SimLimaCCDs` at ``<prefix>/lima`` rocked by a :class:`SimRockingAxis` at
``<prefix>/eta`` (default prefix ``sim/bcdi``); it prints ``READY`` and the two TRLs,
then serves until its standard input closes. With a Tango database, register the two
classes under one server ``SimLimaCCDs/<instance>`` and run ``SimLimaCCDs <instance>``
(:func:`run_with_database`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tango.server import run
from tango.test_context import MultiDeviceTestContext

from ._lima_server import SimLimaCCDs
from ._tango_motor_server import SimRockingAxis

READY = "READY"
"""Line printed once the devices are exported."""


def trl(host: str, port: int, device: str) -> str:
    """TRL of a device served without a database: ``tango://host:port/device#dbase=no``."""
    return f"tango://{host}:{port}/{device}#dbase=no"


@contextmanager
def serve_without_database(
    port: int,
    prefix: str = "sim/bcdi",
    *,
    host: str = "127.0.0.1",
    lima: Mapping[str, Any] | None = None,
    motor: Mapping[str, Any] | None = None,
) -> Iterator[tuple[str, str]]:
    """Serve ``<prefix>/lima`` and ``<prefix>/eta`` in this process, without a database.

    Parameters
    ----------
    port : int
        TCP port of the device server.
    prefix : str
        ``domain/family`` of the two device names.
    host : str
        Interface to listen on.
    lima, motor : mapping, optional
        Device properties of the detector (``Detector``, ``NFrames``, ``RoiSize``,
        ``Seed``, ``EtaStart``, ``EtaStop``, ``MaxipixGap``) and of the motor
        (``MoveTime``, ``InitialPosition``). The detector's ``RockingMotor`` is the
        served motor.

    Yields
    ------
    (str, str)
        TRLs of the detector and of the motor.
    """
    lima_trl, motor_trl = trl(host, port, f"{prefix}/lima"), trl(host, port, f"{prefix}/eta")
    devices = [
        {
            "class": SimLimaCCDs,
            "devices": [
                {
                    "name": f"{prefix}/lima",
                    "properties": {**(lima or {}), "RockingMotor": motor_trl},
                }
            ],
        },
        {"class": SimRockingAxis, "devices": [{"name": f"{prefix}/eta", "properties": motor}]},
    ]
    with MultiDeviceTestContext(devices, host=host, port=port, process=False, timeout=60):
        yield lima_trl, motor_trl


def run_with_database() -> None:
    """Run both device classes as the ``SimLimaCCDs`` server of a Tango database.

    Entry point ``SimLimaCCDs <instance>``, Tango's usual arguments.
    """
    run((SimLimaCCDs, SimRockingAxis))


def main(argv: list[str] | None = None) -> None:
    """Command line: serve the two devices without a database until stdin closes."""
    parser = argparse.ArgumentParser(prog="bcdi-online-sim-lima", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="TCP port of the server")
    parser.add_argument("--prefix", default="sim/bcdi", help="domain/family of the devices")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--detector", default="maxipix_2x2", help="detector registry name")
    parser.add_argument("--n-frames", type=int, default=64, help="rocking steps simulated")
    parser.add_argument("--roi-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eta", type=float, nargs=2, default=(-0.5, 0.5), metavar=("START", "STOP")
    )
    parser.add_argument("--move-time", type=float, default=0.0, help="seconds a move takes")
    args = parser.parse_args(argv)
    lima = {
        "Detector": args.detector, "NFrames": args.n_frames, "RoiSize": args.roi_size,
        "Seed": args.seed, "EtaStart": args.eta[0], "EtaStop": args.eta[1],
    }  # fmt: skip
    with serve_without_database(
        args.port, args.prefix, host=args.host, lima=lima, motor={"MoveTime": args.move_time}
    ) as (lima_trl, motor_trl):
        print(READY, lima_trl, motor_trl, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
