"""Bluesky callbacks: live inpainting of detector gaps while a rocking scan runs.

Subscribe :class:`LiveInpainting` to a RunEngine (or a 0MQ ``RemoteDispatcher``); each
run's corrected frames appear in Tiled at ``<client>/bcdi_online/<raw_uid>`` as soon as
no later frame can change them. :func:`replay_run` re-processes an archived run
(documents read back from Tiled, databroker's replay).
"""

from __future__ import annotations

from ._replay import find_run, replay_run
from ._router import LiveInpainting, model_info
from ._run import LiveGapInpainter
from ._service import LiveService
from ._sources import FileSlice, detector_info, pick_field
from ._worker import EXIT_STATUS, InpaintWorker

__all__ = [
    "EXIT_STATUS",
    "FileSlice",
    "InpaintWorker",
    "LiveGapInpainter",
    "LiveInpainting",
    "LiveService",
    "detector_info",
    "find_run",
    "model_info",
    "pick_field",
    "replay_run",
]
