"""``bcdi-online serve``: the live inpainting in its own process, fed by bluesky's 0MQ proxy.

At a beamline::

    bluesky-0MQ-proxy 5577 5578                          # once (deploy/systemd)
    RE.subscribe(Publisher("localhost:5577"))            # acquisition profile
    bcdi-online serve --zmq localhost:5578 --tiled http://tiled:8000

The RunEngine then only pickles documents onto a socket; the model, the GPU and the
Tiled uploads live in this process. SIGTERM or Ctrl-C stops listening, then waits up to
``--grace`` seconds for runs in progress to finish their uploads.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from types import FrameType

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``serve`` options."""
    from ._options import add_service_options

    parser.add_argument(
        "--zmq", default="localhost:5578", help="0MQ proxy OUT address (default: %(default)s)"
    )
    add_service_options(parser, "Tiled server for the corrected data")
    parser.add_argument(
        "--grace",
        type=float,
        default=60.0,
        help="seconds to let runs in progress finish on shutdown (default: %(default)s)",
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    """Run :class:`~bcdi_online.callbacks.LiveService` until SIGTERM or Ctrl-C."""
    from ..callbacks import LiveService
    from ._options import live_from_args

    live = live_from_args(args)
    service = LiveService(live, args.zmq)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    service.start()
    print(f"bcdi-online serve: listening on {args.zmq}, writing to {args.tiled}", flush=True)
    try:
        while service.listening:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("bcdi-online serve: stopping", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    running = service.stop(args.grace)
    if running:
        logger.warning("runs still in progress at shutdown (left as 'running'): %s", running)
    if service.error:
        logger.error("stopped listening: %s", service.error)
    return 1 if running or service.error else 0
