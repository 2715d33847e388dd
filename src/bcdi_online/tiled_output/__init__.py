"""Corrected scans to Tiled: the only engine module that imports a Tiled client.

One container per raw run, ``<client>/bcdi_online/<raw_uid>``, holds ``corrected``
``(n_frames, ny, nx)`` float32 (grown slab by slab while the scan runs), ``gap_mask``
``(ny, nx)`` bool and provenance metadata. Writes are retried with back-off; if Tiled
has not taken a finished run's result within a bounded time it goes to a local HDF5
file whose path is recorded. A restarted service gives a final status to the runs an
earlier instance left ``running`` (:func:`end_orphaned_runs`).
"""

from __future__ import annotations

from ._fallback import FALLBACK_DIR_ENV, default_fallback_dir, read_fallback, write_fallback
from ._recovery import end_orphaned_runs
from ._settings import (
    DEFAULT_GROUP,
    FINAL_STATUSES,
    SPEC,
    STATUSES,
    RetryPolicy,
    bound_client_retries,
)
from ._writer import CorrectedScanWriter

__all__ = [
    "DEFAULT_GROUP",
    "FALLBACK_DIR_ENV",
    "FINAL_STATUSES",
    "SPEC",
    "STATUSES",
    "CorrectedScanWriter",
    "RetryPolicy",
    "bound_client_retries",
    "default_fallback_dir",
    "end_orphaned_runs",
    "read_fallback",
    "write_fallback",
]
