"""``bcdi-online serve``: the live inpainting in its own process, fed by bluesky's 0MQ proxy.

At a beamline (``deploy/``)::

    bluesky-0MQ-proxy --in-address 127.0.0.1:5577 --out-address 127.0.0.1:5578
    RE.subscribe(Publisher("127.0.0.1:5577", serializer=msgpack_serializer))  # profile
    TILED_API_KEY_FILE=/etc/bcdi-online/tiled.key bcdi-online serve --zmq 127.0.0.1:5578

The RunEngine then only packs documents onto a socket (msgpack: this process never
unpickles what it receives); the model, the GPU and the Tiled uploads live here. On
start-up the runs an earlier ``serve`` of the same ``--name`` left ``running`` get their
final status. SIGTERM or Ctrl-C stops listening, waits up to ``--grace`` seconds for
runs in progress, then ends each unfinished run in its result file
(``interrupted``) and exits 1 naming them (and any it could not save).

Several processors share the runs of one or more RunEngines through a Redis run queue
(``--queue redis://host:6379/0``, each with its own ``--name``; the RunEngines announce
their runs with ``RunAnnouncer``): each run is processed by one of them, and the runs of
a processor silent for ``--takeover-after`` seconds are taken over by another, from
Tiled (docs/explanations/scaling.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._settings import ServiceSettings
    from ..callbacks import LiveInpainting, RunQueue, RunSharing

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``serve`` options."""
    from ._options import add_service_options, non_negative_float, positive_int

    parser.add_argument(
        "--zmq", default=None, help="0MQ proxy OUT address ($BCDI_ONLINE_ZMQ_OUT; localhost:5578)"
    )
    add_service_options(parser, "Tiled server for the corrected data")
    parser.add_argument(
        "--grace",
        type=non_negative_float,
        default=None,
        help="seconds to let runs in progress finish on shutdown ($BCDI_ONLINE_GRACE; 60)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="name of this service, recorded with its runs, unique among the services "
        "writing to this Tiled: a restart ends the runs the previous one left running "
        "($BCDI_ONLINE_NAME; default: serve@HOST:ZMQ)",
    )
    parser.add_argument(
        "--run-timeout",
        type=non_negative_float,
        default=None,
        help="seconds without a document before a run whose stop document never came "
        "ends 'interrupted' (0: never; $BCDI_ONLINE_RUN_TIMEOUT; default: 14400)",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_const",
        const=True,
        default=None,
        help="accept pickled documents (bluesky's default Publisher) from a proxy on "
        "this machine only; anyone who can publish to it then runs code here "
        "($BCDI_ONLINE_ALLOW_PICKLE)",
    )
    parser.add_argument(
        "--queue",
        default=None,
        help="Redis URL of the run queue shared with other serve processors, e.g. "
        "redis://127.0.0.1:6379/0: process only the runs this one takes there "
        "($BCDI_ONLINE_QUEUE; default: none, process every run)",
    )
    parser.add_argument(
        "--queue-stream",
        default=None,
        help="Redis key of the run queue ($BCDI_ONLINE_QUEUE_STREAM; bcdi_online:runs)",
    )
    parser.add_argument(
        "--takeover-after",
        type=non_negative_float,
        default=None,
        help="seconds without a heartbeat before another processor takes over this one's "
        "runs ($BCDI_ONLINE_TAKEOVER_AFTER; 30)",
    )
    parser.add_argument(
        "--max-runs",
        type=positive_int,
        default=None,
        help="runs of the queue this processor owns at once ($BCDI_ONLINE_MAX_RUNS; 4)",
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    """Run :class:`~bcdi_online.callbacks.LiveService` until SIGTERM or Ctrl-C."""
    from .._errors import ServiceError
    from .._redact import redact
    from ..tiled_output import bound_client_retries
    from ._options import live_from_args, service_settings

    settings = service_settings(args)
    bound_client_retries(settings.fallback_after)  # before tiled is imported
    from ..callbacks import LiveService, is_loopback

    if settings.allow_pickle and not is_loopback(settings.zmq_out):  # before loading anything
        raise ServiceError(
            f"--allow-pickle refused for {settings.zmq_out!r}: pickle is accepted from a proxy "
            "on loopback only (anyone who can publish to it could run code here)"
        )
    owner = settings.name or f"serve@{socket.gethostname()}:{settings.zmq_out}"
    queue = _queue(settings, owner)  # before loading the model: fail fast
    live = live_from_args(settings, owner=owner, run_timeout=settings.run_timeout or None)
    sharing = None if queue is None else _sharing(settings, live, queue)
    service = LiveService(
        live, settings.zmq_out, allow_pickle=settings.allow_pickle, sharing=sharing
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        service.start()
        for run in service.ended_at_start:
            print(f"bcdi-online serve: run {run['raw_uid']} left running: {run['status']}")
        codec = "pickle (loopback only)" if settings.allow_pickle else "msgpack"
        print(
            f"bcdi-online serve: listening on {settings.zmq_out} ({codec}), "
            f"writing to {redact(settings.tiled_uri)} as {owner!r}",
            flush=True,
        )
        if sharing is not None:
            print(
                f"bcdi-online serve: sharing the runs of {redact(settings.queue)} "
                f"{settings.queue_stream!r} (takeover after {settings.takeover_after:g} s, "
                f"at most {settings.max_runs} runs at once)",
                flush=True,
            )
        while service.listening:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("bcdi-online serve: stopping", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    left = service.stop(settings.grace, interrupt=True)
    unsaved = [  # runs that ended while serving, their result saved nowhere
        uid
        for uid, health in live.health().items()
        if uid not in left and health.get("writer_done") and health.get("saved_to") is None
    ]
    for uid in unsaved:
        error = live.health()[uid].get("last_error")
        print(f"bcdi-online serve: run {uid} NOT SAVED: {redact(error)}", file=sys.stderr)
    for uid in left:
        report = service.shutdown_report.get(uid, {})
        if report.get("saved_to") is None:
            unsaved.append(uid)
            where = f"NOT SAVED ({report.get('error')})"
        else:
            where = f"saved to {report.get('local_fallback') or 'Tiled'}"
        print(
            f"bcdi-online serve: run {uid} still in progress at shutdown: "
            f"{report.get('status', 'interrupted')}, {where}",
            file=sys.stderr,
            flush=True,
        )
    if unsaved:
        logger.error("runs not saved anywhere: %s", unsaved)
    if service.error:
        logger.error("stopped listening: %s", service.error)
    code = 1 if left or unsaved or service.error else 0
    _leave_if_threads_linger(code)
    return code


def _queue(settings: ServiceSettings, owner: str) -> RunQueue | None:
    """Connect to the run queue of ``--queue`` as consumer ``owner`` (None without one).

    Raises
    ------
    ServiceError
        If Redis cannot be reached.
    """
    if settings.queue is None:
        return None
    from ..callbacks import RunQueue

    return RunQueue.from_url(settings.queue, settings.queue_stream, consumer=owner)


def _sharing(settings: ServiceSettings, live: LiveInpainting, queue: RunQueue) -> RunSharing:
    """Make the run sharing of ``--queue``."""
    from ..callbacks import RunSharing

    return RunSharing(
        live,
        queue,
        takeover_after=settings.takeover_after,
        max_runs=settings.max_runs,
        stop_timeout=settings.run_timeout or None,
    )


def _leave_if_threads_linger(code: int) -> None:
    """Exit at once if threads are still busy after the grace (a model call, a Tiled retry).

    Everything that could be saved is saved and reported by now. Letting the interpreter
    finalise under a thread that is inside native code (torch's thread pool mid-call)
    can abort the process ("terminate called without an active exception", SIGABRT),
    which would turn the exit status that names the unsaved runs into a crash.
    """
    busy = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if busy:
        logger.info("exiting with threads still busy: %s", ", ".join(busy))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
