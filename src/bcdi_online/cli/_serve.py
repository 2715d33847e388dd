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
import os
import signal
import time
from types import FrameType

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``serve`` options."""
    parser.add_argument(
        "--zmq", default="localhost:5578", help="0MQ proxy OUT address (default: %(default)s)"
    )
    parser.add_argument(
        "--tiled",
        default=os.environ.get("TILED_URI", "http://localhost:8000"),
        help="Tiled server for the corrected data (default: $TILED_URI or %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("TILED_API_KEY", os.environ.get("TILED_SINGLE_USER_API_KEY")),
        help="Tiled API key (default: $TILED_API_KEY or $TILED_SINGLE_USER_API_KEY)",
    )
    parser.add_argument(
        "--device",
        default=os.environ.get("BCDI_ONLINE_DEVICE"),
        help="torch device (default: $BCDI_ONLINE_DEVICE, else cuda if present)",
    )
    parser.add_argument("--model", default=None, help="checkpoint (default: shipped weights)")
    parser.add_argument(
        "--fallback-dir",
        default=None,
        help="local HDF5 files when Tiled stays down "
        "(default: $BCDI_ONLINE_FALLBACK_DIR or ~/bcdi_online_fallback)",
    )
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
    from ..callbacks import LiveInpainting, LiveService
    from ._options import check_device

    check_device(args.device)
    live = LiveInpainting.from_uri(
        args.tiled,
        api_key=args.api_key,
        model=args.model,
        device=args.device,
        fallback_dir=args.fallback_dir,
    )
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
