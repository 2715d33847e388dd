"""Trigger, acquire and data logic of the simulated BCDI detector (ophyd-async 0.21).

They mirror ``ophyd_async.sim``'s blob detector logics, with the pattern generator
replaced by a :class:`CrystalCamera` that turns the rocking angle into frames of a
:class:`~bcdi_online.sim_devices.CrystalSource`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np
from ophyd_async.core import (
    DetectorAcquireLogic,
    DetectorDataLogic,
    DetectorTriggerLogic,
    PathProvider,
    SignalR,
    StreamableDataProvider,
    StreamResourceDataProvider,
    StreamResourceInfo,
    TriggerInfo,
    soft_signal_r_and_setter,
)

from ._hdf import DATA_PATH, FrameFile
from ._source import CrystalSource

logger = logging.getLogger(__name__)

FRAME_DTYPE = np.dtype(np.uint32)
"""Dtype of the frames, as a 32-bit counting detector writes them."""


class CrystalCamera:
    """The simulated camera head: reads the angle, makes frames, appends them to a file.

    Parameters
    ----------
    source : CrystalSource
        Where frames come from.
    angle : SignalR of float
        Rocking angle read before each frame (the ``eta`` motor's readback).
    acquire_time : SignalR of float
        Exposure used when a trigger asks for ``livetime`` 0.
    """

    def __init__(
        self, source: CrystalSource, angle: SignalR[float], acquire_time: SignalR[float]
    ) -> None:
        self.source = source
        self.angle = angle
        self.acquire_time = acquire_time
        self.frames_written, self._set_frames_written = soft_signal_r_and_setter(int)
        self.file: FrameFile | None = None
        self.number_of_frames = 1
        self.livetime = 0.0
        self.deadtime = 0.0

    def open_file(self, path: Path) -> None:
        """Create the frame file and reset the written-frames counter."""
        self.close_file()
        attrs = {
            "detector": self.source.detector,
            "roi": np.asarray(self.source.roi, dtype=np.int64),
            "maxipix_gap": self.source.maxipix_gap,
        }
        self.file = FrameFile(path, self.source.mask, FRAME_DTYPE, attrs)
        self._set_frames_written(0)

    def close_file(self) -> None:
        """Close the frame file, if open."""
        if self.file is not None:
            self.file.close()
            self.file = None

    async def acquire_frames(self) -> None:
        """Take :attr:`number_of_frames` frames, each at the angle read when it starts."""
        if self.file is None:
            raise RuntimeError("the detector has no open file: prepare it first")
        livetime = self.livetime or await self.acquire_time.get_value()
        period = livetime + self.deadtime
        start = time.monotonic()
        for i in range(1, self.number_of_frames + 1):
            eta = await self.angle.get_value()
            frame = self.source.acquire(eta)
            if period > 0:
                await asyncio.sleep(start + i * period - time.monotonic())
            written = self.file.append(frame)
            logger.debug("frame %d at eta=%.5f written to %s", written, eta, self.file.path)
            self._set_frames_written(written)


class CrystalTriggerLogic(DetectorTriggerLogic):
    """Internal triggering only: ``num`` frames, ``livetime + deadtime`` apart."""

    def __init__(self, camera: CrystalCamera) -> None:
        self.camera = camera

    def config_sigs(self) -> set[SignalR]:
        """Return the exposure signal, shown in ``read_configuration``."""
        return {self.camera.acquire_time}

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        """Prepare ``num`` internally timed frames."""
        self.camera.number_of_frames = num
        self.camera.livetime = livetime
        self.camera.deadtime = deadtime

    async def default_trigger_info(self) -> TriggerInfo:
        """One frame per trigger, at the current exposure."""
        return TriggerInfo()


class CrystalAcquireLogic(DetectorAcquireLogic):
    """Runs the camera's acquisition as a background task."""

    def __init__(self, camera: CrystalCamera) -> None:
        self.camera = camera
        self.task: asyncio.Task[None] | None = None

    async def start_acquiring(self) -> None:
        """Start writing the prepared number of frames."""
        self.task = asyncio.create_task(self.camera.acquire_frames())

    async def wait_for_idle(self) -> None:
        """Wait for the frames to be written; re-raise a failure of the acquisition."""
        if self.task:
            await self.task

    async def ensure_stopped(self) -> None:
        """Cancel an acquisition in progress."""
        if self.task:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
            self.task = None


class CrystalDataLogic(DetectorDataLogic):
    """Writes frames to ``<directory>/<filename>.h5`` and describes them as a stream.

    Parameters
    ----------
    path_provider : PathProvider
        Gives the directory (created if missing) and file name for each acquisition.
    camera : CrystalCamera
        The camera that appends frames to the file.
    """

    def __init__(self, path_provider: PathProvider, camera: CrystalCamera) -> None:
        self.path_provider = path_provider
        self.camera = camera

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        """Open a new file and return the provider of its stream documents."""
        path_info = self.path_provider(datakey_name)
        directory = Path(path_info.directory_path)
        directory.mkdir(parents=True, exist_ok=True)
        filename = f"{path_info.filename}.h5"
        self.camera.open_file(directory / filename)
        ny, nx = self.camera.source.frame_shape
        frames = StreamResourceInfo(
            data_key=datakey_name,
            shape=(ny, nx),
            chunk_shape=(1, ny, nx),
            dtype_numpy=FRAME_DTYPE.str,
            parameters={"dataset": DATA_PATH},
        )
        return StreamResourceDataProvider(
            uri=f"{path_info.directory_uri}{filename}",
            resources=[frames],
            mimetype="application/x-hdf5",
            collections_written_signal=self.camera.frames_written,
        )

    async def stop(self) -> None:
        """Close the file."""
        self.camera.close_file()

    def get_hinted_fields(self, datakey_name: str) -> Sequence[str]:
        """Return the hinted field: the frames."""
        return [datakey_name]
