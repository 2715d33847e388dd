"""A classic ophyd (v1) simulated BCDI detector writing HDF5, with resource/datum documents."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ophyd import Component, Signal
from ophyd.status import Status

from ._hdf import FrameFile
from ._source import CrystalSource
from ._v1 import CrystalConfig


class _DatumSignal(Signal):
    """The frame's datum id; its descriptor says the frame is external (``FILESTORE:``)."""

    def __init__(self, *args: Any, frame_shape: tuple[int, int] = (1, 1), **kwargs: Any):
        super().__init__(*args, value="", **kwargs)
        self.frame_shape = frame_shape

    def describe(self) -> dict[str, dict[str, Any]]:
        return {
            self.name: {
                "source": f"SIM:{self.name}",
                "dtype": "array",
                "shape": list(self.frame_shape),
                "dtype_numpy": np.dtype(np.uint32).str,
                "external": "FILESTORE:",
            }
        }


class SimBcdiDetectorV1HDF5(CrystalConfig):
    """Simulated area detector of an ophyd v1 beamline writing its frames to HDF5.

    As ophyd's areaDetector HDF5 plugin does: staging opens ``<directory>/<uuid>.h5``
    (SWMR, frames at ``/entry/data/data``, NeXus pixel mask) and emits a legacy
    ``resource`` document (spec ``AD_HDF5``, ``frame_per_point`` 1); each trigger takes
    the frame of ``source`` at the motor's position, appends it to the file and emits a
    ``datum`` (``point_number``: the frame's index in the file) whose id the event
    carries as ``<name>_image``. Configuration as :class:`SimBcdiDetectorV1`.

    Parameters
    ----------
    source : CrystalSource
        The simulated crystal and detector region.
    motor : ophyd positioner
        The rocking motor (anything with a ``position``).
    directory : path-like
        Where the detector writes its files.
    name : str
        Device name.
    **kwargs
        Passed to :class:`ophyd.Device`.
    """

    image = Component(_DatumSignal, kind="hinted")

    def __init__(
        self,
        source: CrystalSource,
        motor: Any,
        *,
        directory: str | Path,
        name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.source, self.motor, self.directory = source, motor, Path(directory)
        self.image.frame_shape = source.frame_shape
        self.show_source(source)
        self.file: FrameFile | None = None
        self._resource_uid = ""
        self._asset_docs: deque[tuple[str, dict[str, Any]]] = deque()

    def stage(self) -> list[Any]:
        """Open a new file and announce it (``resource``)."""
        staged = super().stage()
        self._resource_uid = str(uuid.uuid4())
        name = f"{self._resource_uid}.h5"
        self.file = FrameFile(self.directory / name, self.source.mask)
        self._asset_docs.append(
            (
                "resource",
                {
                    "uid": self._resource_uid,
                    "spec": "AD_HDF5",
                    "root": str(self.directory),
                    "resource_path": name,
                    "resource_kwargs": {"frame_per_point": 1},
                    "path_semantics": "posix",
                },
            )
        )
        return staged

    def trigger(self) -> Status:
        """Take a frame, append it to the file, announce it (``datum``)."""
        if self.file is None:
            raise RuntimeError(f"{self.name} is not staged")
        index = self.file.frames_written
        self.file.append(self.source.acquire(float(self.motor.position)))
        datum_id = f"{self._resource_uid}/{index}"
        self._asset_docs.append(
            (
                "datum",
                {
                    "resource": self._resource_uid,
                    "datum_id": datum_id,
                    "datum_kwargs": {"point_number": index},
                },
            )
        )
        self.image.put(datum_id)
        status = Status(obj=self)
        status.set_finished()
        return status

    def collect_asset_docs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Hand out the resource and datum documents not handed out yet."""
        while self._asset_docs:
            yield self._asset_docs.popleft()

    def unstage(self) -> list[Any]:
        """Close the file."""
        if self.file is not None:
            self.file.close()
        return super().unstage()
