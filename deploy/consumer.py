"""Run the live inpainting in its own process, fed by bluesky's 0MQ proxy.

    bluesky-0MQ-proxy 5577 5578                      # once per beamline (systemd unit)
    RE.subscribe(Publisher("localhost:5577"))        # in the acquisition profile
    python deploy/consumer.py --zmq localhost:5578 --tiled http://localhost:8000

The RunEngine then pays only for pickling documents onto a socket; the model, the GPU
and Tiled uploads live here.
"""

from __future__ import annotations

import argparse
import logging
import os

from bluesky.callbacks.zmq import RemoteDispatcher

from bcdi_online.callbacks import LiveInpainting


def main() -> None:
    """Subscribe LiveInpainting to a 0MQ RemoteDispatcher and serve forever."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zmq", default="localhost:5578", help="proxy OUT address")
    parser.add_argument("--tiled", default=os.environ.get("TILED_URI", "http://localhost:8000"))
    parser.add_argument("--device", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    live = LiveInpainting.from_uri(
        args.tiled,
        api_key=os.environ.get("TILED_SINGLE_USER_API_KEY"),
        model=args.model,
        device=args.device,
    )
    dispatcher = RemoteDispatcher(args.zmq)
    dispatcher.subscribe(live)
    dispatcher.start()  # blocks


if __name__ == "__main__":
    main()
