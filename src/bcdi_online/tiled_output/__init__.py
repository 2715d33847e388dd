"""Corrected scans to Tiled as Bluesky runs: the only engine module that imports a Tiled client.

Each processing of a raw run is a Bluesky run of its own (:class:`CorrectedRunWriter`):
its frames in a result file, its documents stored by bluesky-tiled-plugins'
``TiledWriter``; found from the raw uid with :func:`find_corrected`. Products derived
from it (fill uncertainty, crystal) go beside it, ``<client>/bcdi_online/<result uid>/``.
A restarted service ends the runs an earlier instance left open
(:func:`end_orphaned_runs`).
"""

from __future__ import annotations

from ._catalog import (
    corrected_metadata,
    corrected_products,
    corrected_status,
    find_corrected,
    read_corrected,
)
from ._fallback import FALLBACK_DIR_ENV, default_fallback_dir
from ._recovery import end_open_runs, end_orphaned_runs
from ._result_file import read_result_file
from ._settings import DEFAULT_GROUP, FINAL_STATUSES, STATUSES, bound_client_retries
from ._writer import CorrectedRunWriter

__all__ = [
    "DEFAULT_GROUP",
    "FALLBACK_DIR_ENV",
    "FINAL_STATUSES",
    "STATUSES",
    "CorrectedRunWriter",
    "bound_client_retries",
    "corrected_metadata",
    "corrected_products",
    "corrected_status",
    "default_fallback_dir",
    "end_open_runs",
    "end_orphaned_runs",
    "find_corrected",
    "read_corrected",
    "read_result_file",
]
