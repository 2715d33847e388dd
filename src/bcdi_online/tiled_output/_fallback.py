"""Where result files go, and JSON types for metadata."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

FALLBACK_DIR_ENV = "BCDI_ONLINE_FALLBACK_DIR"
"""Environment variable overriding :func:`default_fallback_dir`."""


def default_fallback_dir() -> Path:
    """Results directory: ``$BCDI_ONLINE_FALLBACK_DIR``, else ``~/bcdi_online_fallback``."""
    env = os.environ.get(FALLBACK_DIR_ENV)
    return Path(env) if env else Path.home() / "bcdi_online_fallback"


def jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays (possibly nested in dicts/lists) to JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
