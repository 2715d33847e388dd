"""bcdi-online: online inpainting of detector gaps in Bragg CDI rocking scans."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._errors import (
    BcdiOnlineError,
    GapMaskError,
    InputDataError,
    ModelError,
    SimulationError,
    UnknownDetectorError,
)

try:
    __version__ = version("bcdi-online")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BcdiOnlineError",
    "GapMaskError",
    "InputDataError",
    "ModelError",
    "SimulationError",
    "UnknownDetectorError",
    "__version__",
]
