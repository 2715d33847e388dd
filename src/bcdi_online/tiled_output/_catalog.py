"""Find corrected runs in a catalog of Bluesky runs, and read their status."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._settings import DEFAULT_GROUP, STATUSES

_EXIT_TO_STATUS = {"success": "complete", "abort": "aborted"}


def corrected_status(metadata: dict[str, Any]) -> str:
    """Return the status of a corrected run (one of :data:`STATUSES`) from its Tiled metadata.

    ``running`` while it has no stop document; then the stop's ``bcdi_online.status``
    (or, for a stop written by another program, its ``exit_status``).

    Parameters
    ----------
    metadata : dict
        The run's metadata (``start``, ``stop``), e.g. ``run.metadata``.
    """
    stop = metadata.get("stop")
    if not stop:
        return "running"
    status = (stop.get("bcdi_online") or {}).get("status")
    return status if status in STATUSES else _EXIT_TO_STATUS.get(stop.get("exit_status"), "failed")


def corrected_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Return a corrected run's ``bcdi_online`` block: the stop's once ended, else the start's.

    With ``status`` (see :func:`corrected_status`), ``raw_uid``, ``result_uid``,
    provenance and, once ended, ``error``, ``processing`` statistics and timings.
    """
    block = (metadata.get("stop") or {}).get("bcdi_online") or (
        (metadata.get("start") or {}).get("bcdi_online") or {}
    )
    return {**block, "status": corrected_status(metadata)}


def find_corrected(catalog: Any, raw_uid: str, *, status: str | None = None) -> Any:
    """Return the corrected run of a raw run, found with Tiled's own search.

    Searches ``start.original_run_uid``. Among several processings of the run, the
    latest ``complete`` one wins, else the latest of any status.

    Parameters
    ----------
    catalog : tiled.client container
        Catalog of Bluesky runs holding the corrected runs (where the processor writes).
    raw_uid : str
        Uid of the raw run.
    status : str, optional
        Only runs with this status (e.g. ``"complete"``).

    Returns
    -------
    BlueskyRun or None
        The run (``run["primary"]["corrected"]`` the frames, ``run["gap_mask"]
        ["gap_mask"]`` the mask, ``run.metadata``), None if there is none.
    """
    from tiled.queries import Key

    found = catalog.search(Key("start.original_run_uid") == str(raw_uid))
    runs = []
    for key, run in found.items():
        run_status = corrected_status(run.metadata)
        if status is None or run_status == status:
            runs.append(
                (run_status == "complete", run.metadata["start"].get("time", 0.0), key, run)
            )
    if not runs:
        return None
    return max(runs, key=lambda item: item[:3])[3]


def corrected_products(catalog: Any, run: Any) -> Any:
    """Return the container of a corrected run's products (``fill_sigma``, ``crystal``).

    Parameters
    ----------
    catalog : tiled.client container
        The catalog holding the run.
    run : BlueskyRun
        A corrected run (:func:`find_corrected`).

    Returns
    -------
    tiled.client container or None
        ``<catalog>/bcdi_online/<result uid>``, None while it has no product.
    """
    uid = run.metadata["start"]["uid"]
    if DEFAULT_GROUP not in catalog or uid not in catalog[DEFAULT_GROUP]:
        return None
    return catalog[DEFAULT_GROUP][uid]


def read_corrected(
    catalog: Any, raw_uid: str, *, status: str | None = None
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """Read the corrected scan of a raw run: its frames and its ``bcdi_online`` metadata.

    Parameters
    ----------
    catalog : tiled.client container
        The catalog holding the corrected runs.
    raw_uid : str
        Uid of the raw run.
    status : str, optional
        Only a run with this status.

    Returns
    -------
    tuple of ((n_frames, ny, nx) float32 ndarray, dict) or None
        The frames (empty when the run has none) and :func:`corrected_metadata`; None
        if there is no such run.
    """
    run = find_corrected(catalog, raw_uid, status=status)
    if run is None:
        return None
    metadata = corrected_metadata(run.metadata)
    if "primary" not in run or "corrected" not in run["primary"]:  # no frame declared
        return np.zeros((0, 0, 0), np.float32), metadata
    return np.asarray(run["primary"]["corrected"].read()), metadata
