"""ophyd-async detectors on LIMA's Tango interface (``LimaCCDs``), HDF5 saving.

A :class:`LimaDetector` is a ``StandardDetector`` assembled from logic objects, as
:class:`SimBcdiDetector` is, on the signals of a :class:`LimaDriver` (a declarative
``ophyd_async.tango.core.TangoDevice``). A step scan is taken the way BLISS drives LIMA:
one ``prepareAcq`` in ``INTERNAL_TRIGGER_MULTI`` with ``acq_nb_frames`` 0 (until
``stopAcq``), then one ``startAcq`` per frame, so the whole scan is one HDF5 file; a fly
scan (``kickoff`` of n frames) issues n ``startAcq`` in a row. Frames are counted by
``last_image_saved`` (change events), and described by ``stream_resource`` /
``stream_datum`` documents as areaDetector's HDF5 writer does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Annotated

import numpy as np
from ophyd_async.core import (
    Array1D,
    DetectorAcquireLogic,
    DetectorDataLogic,
    DetectorTriggerLogic,
    PathProvider,
    SignalR,
    SignalRW,
    StandardDetector,
    StreamableDataProvider,
    StreamResourceDataProvider,
    StreamResourceInfo,
    TriggerableCommand,
    derived_signal_r,
    wait_for_value,
)
from ophyd_async.tango.core import TangoDevice, TangoPolling

from ._hdf import DATA_PATH


def _at_least(index: int) -> Callable[[int], bool]:
    """Predicate: a frame counter has reached ``index``."""
    return lambda value: value >= index


IMAGE_DTYPES = {"Bpp8": "|u1", "Bpp16": "<u2", "Bpp32": "<u4", "Bpp32F": "<f4"}
"""numpy dtype of LIMA's ``image_type`` values (unsigned and float ones)."""

_POLL: TangoPolling = TangoPolling(0.05)  # used only when a server pushes no change events


class LimaDriver(TangoDevice):
    """The ``LimaCCDs`` attributes and commands a scan uses (names as LIMA's).

    Parameters
    ----------
    trl : str
        Tango resource locator of the ``LimaCCDs`` device.
    support_events : bool
        Use the server's change events (LIMA's ``TangoEvent`` property); otherwise poll.
    name : str
        Device name.
    """

    acq_nb_frames: SignalRW[int]
    acq_expo_time: SignalRW[float]
    latency_time: SignalRW[float]
    acq_trigger_mode: SignalRW[str]
    acq_status: Annotated[SignalR[str], _POLL]
    acq_status_fault_error: SignalR[str]
    last_image_ready: Annotated[SignalR[int], _POLL]
    last_image_saved: Annotated[SignalR[int], _POLL]
    ready_for_next_image: Annotated[SignalR[bool], _POLL]
    image_width: SignalR[int]
    image_height: SignalR[int]
    image_type: SignalR[str]
    saving_directory: SignalRW[str]
    saving_prefix: SignalRW[str]
    saving_suffix: SignalRW[str]
    saving_next_number: SignalRW[int]
    saving_index_format: SignalRW[str]
    saving_format: SignalRW[str]
    saving_mode: SignalRW[str]
    prepareAcq: TriggerableCommand  # noqa: N815 (LIMA's names)
    startAcq: TriggerableCommand  # noqa: N815
    stopAcq: TriggerableCommand  # noqa: N815

    def __init__(self, trl: str, support_events: bool = True, name: str = "") -> None:
        super().__init__(trl, support_events=support_events, name=name, auto_fill_signals=False)


class SimLimaDriver(LimaDriver):
    """:class:`LimaDriver` of :class:`SimLimaCCDs`, with the simulated detector's geometry."""

    detector_name: SignalR[str]
    roi: SignalR[Array1D[np.int64]]
    maxipix_gap: SignalR[int]


class _Plan:
    """What the trigger logic prepared: frames per ``start_acquiring``."""

    frames_per_start = 1


class LimaTriggerLogic(DetectorTriggerLogic):
    """Internal triggering: exposure ``acq_expo_time``, dead time ``latency_time``."""

    def __init__(self, driver: LimaDriver, plan: _Plan) -> None:
        self.driver = driver
        self.plan = plan

    def config_sigs(self) -> set[SignalR]:
        """Return the exposure and latency, shown in ``read_configuration``."""
        return {self.driver.acq_expo_time, self.driver.latency_time}

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        """Prepare ``num`` frames per start (livetime 0: keep ``acq_expo_time``)."""
        self.plan.frames_per_start = num
        if livetime:
            await self.driver.acq_expo_time.set(livetime)
        await self.driver.latency_time.set(deadtime)


class LimaAcquireLogic(DetectorAcquireLogic):
    """Issues ``startAcq`` once per frame, each when the previous frame is ready."""

    def __init__(self, driver: LimaDriver, plan: _Plan) -> None:
        self.driver = driver
        self.plan = plan
        self.task: asyncio.Task[None] | None = None

    async def start_acquiring(self) -> None:
        """Start the prepared number of frames (in a task: the frames follow)."""
        self.task = asyncio.create_task(self._start_frames(self.plan.frames_per_start))

    async def _start_frames(self, n: int) -> None:
        first = await self.driver.last_image_ready.get_value() + 1
        for index in range(first, first + n):
            await wait_for_value(self.driver.ready_for_next_image, True, timeout=None)
            await self.driver.startAcq.trigger()
            await wait_for_value(self.driver.last_image_ready, _at_least(index), None)

    async def wait_for_idle(self) -> None:
        """Wait for the frames started; re-raise a failure of the detector."""
        if self.task:
            await self.task
        if await self.driver.acq_status.get_value() == "Fault":
            error = await self.driver.acq_status_fault_error.get_value()
            raise RuntimeError(f"{self.driver.name}: acquisition failed: {error}")

    async def ensure_stopped(self) -> None:
        """Cancel frames not started yet and stop the acquisition (``stopAcq``)."""
        if self.task:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        await stop_acquisition(self.driver)


async def stop_acquisition(driver: LimaDriver, timeout: float = 10.0) -> None:
    """``stopAcq``, then wait until the acquisition has ended (``acq_status`` not Running).

    ``acq_status`` is read from the device here, not from its events: a change event
    still on its way would say Ready before the acquisition has started or ended.
    """
    await driver.stopAcq.trigger()
    proxy = driver.get_proxy()
    if proxy is None:  # a mock device
        return
    async with asyncio.timeout(timeout):
        while (await proxy.read_attribute("acq_status")).value == "Running":  # type: ignore[misc]
            await asyncio.sleep(0.02)


def _frames_saved(last_image_saved: int) -> int:
    return last_image_saved + 1


class LimaDataLogic(DetectorDataLogic):
    """Sets LIMA's HDF5 saving, ``prepareAcq``, and describes the file as a stream.

    The file is ``<directory><filename><saving_next_number as %04d>.h5`` of the path
    provider's answer (LIMA's name); its frames are ``/entry/data/data``.
    """

    def __init__(self, path_provider: PathProvider, driver: LimaDriver) -> None:
        self.path_provider = path_provider
        self.driver = driver

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        """Set the saving, arm the detector (``prepareAcq``), describe its file."""
        driver = self.driver
        info = self.path_provider(datakey_name)
        await asyncio.gather(
            driver.saving_directory.set(str(info.directory_path)),
            driver.saving_prefix.set(info.filename),
            driver.saving_suffix.set(".h5"),
            driver.saving_index_format.set("%04d"),
            driver.saving_format.set("HDF5"),
            driver.saving_mode.set("AUTO_FRAME"),
            driver.acq_trigger_mode.set("INTERNAL_TRIGGER_MULTI"),
            driver.acq_nb_frames.set(0),
        )
        number, ny, nx, image_type = await asyncio.gather(
            driver.saving_next_number.get_value(),
            driver.image_height.get_value(),
            driver.image_width.get_value(),
            driver.image_type.get_value(),
        )
        if image_type not in IMAGE_DTYPES:
            raise ValueError(f"{driver.name}: image_type {image_type!r} is not supported")
        await driver.prepareAcq.trigger()
        filename = f"{info.filename}{number:04d}.h5"
        frames = StreamResourceInfo(
            data_key=datakey_name,
            shape=(ny, nx),
            chunk_shape=(1, ny, nx),
            dtype_numpy=IMAGE_DTYPES[image_type],
            parameters={"dataset": DATA_PATH},
        )
        return StreamResourceDataProvider(
            uri=f"{info.directory_uri}{filename}",
            resources=[frames],
            mimetype="application/x-hdf5",
            collections_written_signal=derived_signal_r(
                _frames_saved, last_image_saved=driver.last_image_saved
            ),
        )

    async def stop(self) -> None:
        """End the acquisition: LIMA closes the file."""
        await stop_acquisition(self.driver)

    def get_hinted_fields(self, datakey_name: str) -> Sequence[str]:
        """Return the hinted field: the frames."""
        return [datakey_name]


class LimaDetector(StandardDetector):
    """A LIMA detector (Tango ``LimaCCDs``) saving HDF5 frames, for ophyd-async scans.

    Parameters
    ----------
    trl : str
        Tango resource locator of the ``LimaCCDs`` device.
    path_provider : PathProvider
        Directory and file prefix of each acquisition's file (the directory as the
        detector server sees it).
    support_events : bool
        Use the server's change events (else poll every 0.05 s).
    config_sigs : sequence of SignalR
        Extra signals for ``read_configuration``.
    name : str
        Device name, also the data key of the frames.

    Attributes
    ----------
    driver : LimaDriver
        The Tango device's signals and commands.
    """

    driver_class: type[LimaDriver] = LimaDriver

    def __init__(
        self,
        trl: str,
        path_provider: PathProvider,
        *,
        support_events: bool = True,
        config_sigs: Sequence[SignalR] = (),
        name: str = "",
    ) -> None:
        self.driver = self.driver_class(trl, support_events=support_events)
        plan = _Plan()
        self.add_detector_logics(
            LimaTriggerLogic(self.driver, plan),
            LimaAcquireLogic(self.driver, plan),
            LimaDataLogic(path_provider, self.driver),
        )
        self.add_config_signals(*self._driver_config(), *config_sigs)
        super().__init__(name=name)

    def _driver_config(self) -> tuple[SignalR, ...]:
        """Driver signals in ``read_configuration`` besides the trigger logic's."""
        return ()


class SimLimaDetector(LimaDetector):
    """A :class:`LimaDetector` of a :class:`SimLimaCCDs`, with the simulated geometry.

    Its configuration also carries ``detector_name``, ``roi`` and ``maxipix_gap``, from
    which consumers rebuild the gap mask.

    Parameters are those of :class:`LimaDetector`.
    """

    driver: SimLimaDriver
    driver_class = SimLimaDriver

    def _driver_config(self) -> tuple[SignalR, ...]:
        return (self.driver.detector_name, self.driver.roi, self.driver.maxipix_gap)
