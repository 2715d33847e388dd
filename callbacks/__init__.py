"""Bluesky callbacks: live inpainting of detector gaps while a rocking scan runs.

Subscribe :class:`LiveInpainting` to a RunEngine (or a 0MQ ``RemoteDispatcher``); each
run's corrected frames appear in Tiled at ``<client>/bcdi_online/<raw_uid>`` as soon as
no later frame can change them. :func:`replay_run` re-processes an archived run
(documents read back from Tiled, databroker's replay). :class:`LiveService` runs it
behind bluesky's 0MQ proxy, with :func:`msgpack_serializer` on the RunEngine side.
"""

from __future__ import annotations

from ._assembly import FrameAssembly
from ._frames import FileFrames, FrameReader, FrameSlice, FramesUnreadableError, TiledFrames
from ._replay import find_run, replay_run
from ._router import LiveInpainting, connect_tiled, model_info
from ._run import LiveGapInpainter
from ._scan_end import ScanEndSettings, publish_scan_end
from ._service import LiveService
from ._sources import detector_info, pick_field
from ._transport import (
    SafeRemoteDispatcher,
    is_loopback,
    msgpack_deserializer,
    msgpack_serializer,
)
from ._worker import EXIT_STATUS, InpaintWorker

__all__ = [
    "EXIT_STATUS",
    "FileFrames",
    "FrameReader",
    "FrameSlice",
    "FramesUnreadableError",
    "FrameAssembly",
    "InpaintWorker",
    "LiveGapInpainter",
    "LiveInpainting",
    "LiveService",
    "SafeRemoteDispatcher",
    "ScanEndSettings",
    "TiledFrames",
    "connect_tiled",
    "detector_info",
    "find_run",
    "is_loopback",
    "model_info",
    "msgpack_deserializer",
    "msgpack_serializer",
    "pick_field",
    "publish_scan_end",
    "replay_run",
]
