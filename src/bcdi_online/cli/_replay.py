"""``bcdi-online replay``: re-process archived runs from Tiled through the live callback.

The raw runs saved by ``TiledWriter`` are read back as documents and replayed through
the same callback as during the scan (a new model, a fixed mask, or a run the live
service missed); each result is a new corrected run in the same Tiled (its uid is
printed as ``corrected_run_uid``; ``find_corrected`` prefers the latest complete one).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``replay`` options."""
    from ._options import add_service_options

    parser.add_argument("uids", nargs="+", metavar="UID", help="start-document uid of a raw run")
    add_service_options(parser, "Tiled server holding the raw runs")
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
    """Replay each run; one JSON line per run; 1 if any did not complete.

    A run that cannot be replayed (unknown uid, not a run, no document export, timeout)
    is reported on stderr and in its line (``"status": "error"``); the others go on.
    """
    from .. import ReplayError
    from ..callbacks import find_run, replay_run
    from ._options import live_from_args, service_settings

    live = live_from_args(service_settings(args))
    keys = (
        "status",
        "corrected_run_uid",
        "tiled_path",
        "frames_final",
        "windows",
        "inpaint_s",
        "local_fallback",
    )
    failed = 0
    for uid in args.uids:
        try:
            health = replay_run(
                find_run(live.client, uid), live, realtime=args.realtime, timeout=args.timeout
            )
        except ReplayError as err:
            print(f"bcdi-online replay: {uid}: {err}", file=sys.stderr, flush=True)
            health = {"status": "error", "error": str(err)}
        print(json.dumps({"uid": uid, **{key: health.get(key) for key in (*keys, "error")}}))
        failed += health.get("status") != "complete"
    return 1 if failed else 0
