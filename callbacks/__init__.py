"""Bluesky callbacks: live inpainting of detector gaps while a rocking scan runs.

Subscribe :class:`LiveInpainting` to a RunEngine (or a 0MQ ``RemoteDispatcher``); each
run's corrected frames appear in Tiled at ``<client>/bcdi_online/<raw_uid>`` as soon as
no later frame can change them. :func:`replay_run` re-processes an archived run
(documents read back from Tiled, databroker's replay). :class:`LiveService` runs it
behind bluesky's 0MQ proxy, with :func:`msgpack_serializer` on the RunEngine side.
Several such services share the runs of the RunEngines through a Redis :class:`RunQueue`
(:class:`RunAnnouncer` on the RunEngine side, :class:`RunSharing` in each service).
"""

from __future__ import annotations

from ._announce import RunAnnouncer
from ._frames import FramesUnreadableError
from ._health import RunHealth
from ._queue import QueueEntry, RunQueue
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
    "find_run",
    "is_loopback",
    "msgpack_deserializer",
    "msgpack_serializer",
    "replay_run",
]
