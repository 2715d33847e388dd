"""Local HDF5 copy of a corrected scan, written when Tiled stays unreachable."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

logger = logging.getLogger(__name__)

FALLBACK_DIR_ENV = "BCDI_ONLINE_FALLBACK_DIR"
"""Environment variable overriding :func:`default_fallback_dir`."""


def default_fallback_dir() -> Path:
    """Fallback directory: ``$BCDI_ONLINE_FALLBACK_DIR``, else ``~/bcdi_online_fallback``."""
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


def write_fallback(
    path: str | Path,
    corrected: np.ndarray,
    gap_mask: np.ndarray,
    metadata: dict[str, Any],
) -> Path:
    """Write a corrected scan to an HDF5 file, atomically (temporary file, then rename).

    Layout: datasets ``/corrected`` ``(n_frames, ny, nx)`` float32 and ``/gap_mask``
    ``(ny, nx)`` bool; root attribute ``metadata`` holds the JSON of ``metadata``, and
    ``raw_uid`` / ``status`` are copied as plain attributes.

    Parameters
    ----------
    path : str or Path
        Output file; its directory is created if missing.
    corrected : (n_frames, ny, nx) ndarray
        Corrected frames (cast to float32).
    gap_mask : (ny, nx) bool ndarray
        Dead pixels.
    metadata : dict
        JSON-serialisable provenance (see :class:`CorrectedScanWriter`).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    OSError
        If the directory or the file cannot be written (nothing is left behind).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("corrected", data=np.asarray(corrected, np.float32))
            f.create_dataset("gap_mask", data=np.asarray(gap_mask, bool))
            f.attrs["metadata"] = json.dumps(jsonable(metadata))
            for key in ("raw_uid", "status"):
                if key in metadata:
                    f.attrs[key] = str(metadata[key])
        tmp.replace(path)
    except BaseException:  # a full disk: no half-written file left behind
        tmp.unlink(missing_ok=True)
        raise
    logger.warning("corrected scan written to local fallback file %s", path)
    return path


def read_fallback(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read a file written by :func:`write_fallback`.

    Returns
    -------
    corrected : (n_frames, ny, nx) float32 ndarray
    gap_mask : (ny, nx) bool ndarray
    metadata : dict
    """
    with h5py.File(path, "r") as f:
        return f["corrected"][()], f["gap_mask"][()], json.loads(f.attrs["metadata"])
