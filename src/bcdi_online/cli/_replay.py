"""``bcdi-online replay``: re-process archived runs from Tiled through the live callback.

The raw runs saved by ``TiledWriter`` are read back as documents and replayed through
the same callback as during the scan (a new model, a fixed mask, or a run the live
service missed); each result goes to ``bcdi_online/<uid>`` in the same Tiled, or to
``bcdi_online/<uid>-<processing uid[:8]>`` beside an earlier processing.
"""

from __future__ import annotations

import argparse
import json
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``replay`` options."""
    from ._options import add_model_options

    parser.add_argument("uids", nargs="+", metavar="UID", help="start-document uid of a raw run")
    parser.add_argument(
        "--tiled",
        default=os.environ.get("TILED_URI", "http://localhost:8000"),
        help="Tiled server holding the raw runs (default: $TILED_URI or %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("TILED_API_KEY", os.environ.get("TILED_SINGLE_USER_API_KEY")),
        help="Tiled API key (default: $TILED_API_KEY or $TILED_SINGLE_USER_API_KEY)",
    )
    add_model_options(parser, batch_size=False)
    parser.add_argument(
        "--fallback-dir",
        default=None,
        help="local HDF5 files when Tiled stays down "
        "(default: $BCDI_ONLINE_FALLBACK_DIR or ~/bcdi_online_fallback)",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="keep the scan's original timing (default: as fast as possible)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds per run for processing and upload (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Replay each run; print one JSON line per run; 1 if any did not complete."""
    from ..callbacks import LiveInpainting, find_run, replay_run

    live = LiveInpainting.from_uri(
        args.tiled,
        api_key=args.api_key,
        model=args.model,
        device=args.device,
        fallback_dir=args.fallback_dir,
    )
    failed = 0
    for uid in args.uids:
        health = replay_run(
            find_run(live.client, uid), live, realtime=args.realtime, timeout=args.timeout
        )
        keys = ("status", "tiled_path", "frames_final", "windows", "inpaint_s", "local_fallback")
        print(json.dumps({"uid": uid, **{key: health.get(key) for key in keys}}), flush=True)
        failed += health.get("status") != "complete"
    return 1 if failed else 0
