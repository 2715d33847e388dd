"""Bluesky callbacks: live inpainting of detector gaps while a rocking scan runs.

Subscribe :class:`LiveInpainting` to a RunEngine (or a 0MQ ``RemoteDispatcher``); each
run's corrected scan is a Bluesky run of its own in Tiled (stored by ``TiledWriter``),
its frames appearing as soon as no later frame can change them; :func:`find_corrected`
finds it from the raw run's uid, :func:`read_refilled` reads it back with the gap
refilled by its scan-end crystal. :func:`replay_run` re-processes an archived run
(documents read back from Tiled, databroker's replay). :class:`LiveService` runs it
behind bluesky's 0MQ proxy, with :func:`msgpack_serializer` on the RunEngine side.
Several such services share the runs of the RunEngines through a Redis :class:`RunQueue`
(:class:`RunAnnouncer` on the RunEngine side, :class:`RunSharing` in each service).
"""

from __future__ import annotations

from bcdi_online.tiled_output import corrected_metadata, find_corrected, read_corrected

from ._announce import RunAnnouncer
from ._frames import FramesUnreadableError
from ._health import RunHealth
from ._queue import QueueEntry, RunQueue
from ._refilled import read_refilled
from ._replay import find_run, replay_run
from ._router import LiveInpainting
from ._run import LiveGapInpainter
from ._scan_end import ScanEndSettings
from ._service import LiveService
from ._sharing import RunSharing
from ._transport import (
    SafeRemoteDispatcher,
    is_loopback,
    msgpack_deserializer,
    msgpack_serializer,
)

# What users need; the rest (frame readers, assembly, worker, scan-end publishing) is
# internal: import it from its module in tests of the package itself.
__all__ = [
    "FramesUnreadableError",
    "LiveGapInpainter",
    "LiveInpainting",
    "LiveService",
    "QueueEntry",
    "RunAnnouncer",
    "RunHealth",
    "RunQueue",
    "RunSharing",
    "SafeRemoteDispatcher",
    "ScanEndSettings",
    "corrected_metadata",
    "find_corrected",
    "find_run",
    "read_corrected",
    "read_refilled",
    "is_loopback",
    "msgpack_deserializer",
    "msgpack_serializer",
    "replay_run",
]
