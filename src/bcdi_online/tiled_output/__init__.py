"""Corrected scans to Tiled: the only engine module that imports a Tiled client.

One container per raw run, ``<client>/bcdi_online/<raw_uid>``, holds ``corrected``
``(n_frames, ny, nx)`` float32 (grown slab by slab while the scan runs), ``gap_mask``
``(ny, nx)`` bool and provenance metadata. Writes are retried with back-off; if Tiled
stays down the result goes to a local HDF5 file whose path is recorded.
"""

from __future__ import annotations

from ._fallback import FALLBACK_DIR_ENV, default_fallback_dir, read_fallback, write_fallback
from ._settings import DEFAULT_GROUP, SPEC, STATUSES, RetryPolicy
from ._writer import CorrectedScanWriter

__all__ = [
    "DEFAULT_GROUP",
    "FALLBACK_DIR_ENV",
    "SPEC",
    "STATUSES",
    "CorrectedScanWriter",
    "RetryPolicy",
    "default_fallback_dir",
    "read_fallback",
    "write_fallback",
]
