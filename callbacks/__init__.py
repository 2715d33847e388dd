"""Bluesky callbacks: live inpainting of detector gaps while a rocking scan runs.

Subscribe :class:`LiveInpainting` to a RunEngine (or a 0MQ ``RemoteDispatcher``); each
run's corrected frames appear in Tiled at ``<client>/bcdi_online/<raw_uid>`` as soon as
no later frame can change them.
"""

from __future__ import annotations

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
    "model_info",
    "pick_field",
]
