"""Read a corrected scan back with its crystal's refill: the volume for an imposing phasing."""

from __future__ import annotations

from typing import Any

import numpy as np

from bcdi_online.tiled_output import corrected_products, find_corrected

from ._scan_end import CRYSTAL, REFINED_FILL


def read_refilled(catalog: Any, raw_uid: str) -> tuple[np.ndarray, dict[str, Any]] | None:
    """Read a raw run's complete corrected scan, its gap refilled by its crystal where it could.

    The corrected frames (the model's fill in the gap) with the phased region replaced
    by the crystal's ``refined_fill`` where the scan-end reconstruction published one
    (converged, the Bragg peak measured). What to give a phasing program that takes
    every voxel as measured (``docs/explanations/real-space.md``); ``bcdi-online
    inpaint --refill`` writes the same for a scan file.

    Parameters
    ----------
    catalog : tiled.client container
        The catalog holding the corrected runs and their products.
    raw_uid : str
        Uid of the raw run.

    Returns
    -------
    tuple of ((n_frames, ny, nx) float32 ndarray, dict) or None
        The volume and ``{"refilled": bool, "region": [z0, z1, y0, y1, x0, x1] or None,
        "reason": why not refilled ("" when it was)}``; None if the raw run has no
        ``complete`` corrected run.
    """
    run = find_corrected(catalog, raw_uid, status="complete")
    if run is None:
        return None
    volume = np.array(run["primary"]["corrected"].read(), dtype=np.float32)
    products = corrected_products(catalog, run)
    if products is None or CRYSTAL not in products:
        return volume, {"refilled": False, "region": None, "reason": "no crystal was made"}
    crystal = products[CRYSTAL]
    note = crystal.metadata.get(REFINED_FILL) or {}
    if REFINED_FILL not in crystal:
        reason = note.get("reason") or crystal.metadata.get("reason") or "no refill published"
        return volume, {"refilled": False, "region": None, "reason": reason}
    z0, z1, y0, y1, x0, x1 = crystal.metadata["region"]
    volume[z0:z1, y0:y1, x0:x1] = crystal[REFINED_FILL].read()
    return volume, {"refilled": True, "region": [z0, z1, y0, y1, x0, x1], "reason": ""}
