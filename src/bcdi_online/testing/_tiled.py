"""An embedded Tiled server for demos, benchmarks and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiled_server(root: Path, *readable: Path) -> Any:
    """Start an embedded Tiled server for Bluesky runs; stop it with ``.close()``.

    Parameters
    ----------
    root : Path
        Its catalog and data go to ``root / "tiled"``.
    *readable : Path
        Folders of the files runs register (the detector's, the corrected scans'
        result files), readable storage so that ``stream_resource`` files are served
        in place.

    Returns
    -------
    tiled.server.SimpleTiledServer
        Running; ``.uri`` holds its address with the API key. Runs can be exported as
        Bluesky documents (``application/json-seq``, bluesky-tiled-plugins' exporter),
        which replay needs.
    """
    from bluesky_tiled_plugins.exporters import json_seq_exporter
    from tiled.media_type_registration import default_serialization_registry
    from tiled.server import SimpleTiledServer

    default_serialization_registry.register(
        "BlueskyRun", "application/json-seq", json_seq_exporter
    )
    return SimpleTiledServer(directory=Path(root) / "tiled", readable_storage=list(readable))
