"""bcdi-online: online inpainting of detector gaps in Bragg CDI rocking scans."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ._errors import (
    BcdiOnlineError,
    ConfigurationError,
    ConfigurationTypeError,
    GapMaskError,
    InputDataError,
    ModelError,
    PhasingError,
    ReplayError,
    ServiceError,
    SimulationError,
    StorageFullError,
    UnknownDetectorError,
)

try:
    __version__ = version("bcdi-online")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BcdiOnlineError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "GapInpainter",
    "GapMaskError",
    "InputDataError",
    "ModelError",
    "PhasingError",
    "ReplayError",
    "ServiceError",
    "ServiceSettings",
    "SimulationError",
    "StorageFullError",
    "UnknownDetectorError",
    "__version__",
    "inpaint",
]


def __getattr__(name: str) -> Any:
    """Import the engine (and torch) or the service settings (pydantic) when first used."""
    if name in ("inpaint", "GapInpainter"):
        from . import inpainting

        return getattr(inpainting, name)
    if name == "ServiceSettings":  # pydantic-settings: only for the service side
        from ._settings import ServiceSettings

        return ServiceSettings
    raise AttributeError(f"module 'bcdi_online' has no attribute {name!r}")
