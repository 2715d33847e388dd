"""Replay archived raw runs from Tiled through the live callback (re-processing)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from databroker.replay import replay as replay_documents

from bcdi_online import ReplayError

from ._health import RunHealth
from ._router import LiveInpainting


def find_run(catalog: Any, uid: str) -> Any:
    """Look up the archived run ``uid`` in ``catalog`` (a Tiled container of runs).

    Parameters
    ----------
    catalog : tiled.client container
        Where ``TiledWriter`` saved the raw runs (e.g. ``tiled.client.from_uri(uri)``).
    uid : str
        Start-document uid of the run.

    Returns
    -------
    bluesky_tiled_plugins BlueskyRun

    Raises
    ------
    ReplayError
        If no such node exists or it is not a Bluesky run.
    """
    try:
        run = catalog[uid]
    except KeyError:
        raise ReplayError(f"no run {uid!r} in the Tiled catalog at {catalog.uri}") from None
    if not hasattr(run, "documents"):
        specs = [spec.name for spec in getattr(run, "specs", [])]
        raise ReplayError(f"{catalog.uri}/{uid} is not a Bluesky run (specs {specs})")
    return run


MAX_REPLAY_GAP = 60.0
"""Longest pause of a ``realtime`` replay, in seconds: document clocks jump (a wrong
NTP step, a host changed mid-scan), a replay must not sleep for a day because of it."""


def _paced(
    documents: Iterable[tuple[str, dict]], max_gap: float = MAX_REPLAY_GAP
) -> Iterator[tuple[str, dict]]:
    """Yield ``(name, doc)`` pairs with the spacing of their ``time`` fields.

    ``databroker.replay.replay`` paces documents itself but expects a ``time`` in every
    document other than (legacy) resource and datum ones; ophyd-async's
    ``stream_resource`` and ``stream_datum`` have none, so they pass here unpaced. A
    clock that jumps back is not waited for, one that jumps ahead at most ``max_gap``.
    """
    previous: float | None = None
    for name, doc in documents:
        stamp = doc.get("time")
        if isinstance(stamp, int | float):
            if previous is not None:
                time.sleep(min(max_gap, max(0.0, stamp - previous)))
            previous = stamp
        yield name, doc


def replay_run(
    run: Any, live: LiveInpainting, *, realtime: bool = False, timeout: float | None = None
) -> RunHealth:
    """Feed an archived run's documents to ``live`` and wait for its corrected volume.

    The documents come back from Tiled as ``TiledWriter`` stored them
    (``BlueskyRun.documents()``, ``application/json-seq``) and go through
    ``databroker.replay.replay``; ``live`` processes them as during the scan and stores
    the result as a new corrected run beside any earlier processing of the same run
    (:func:`~bcdi_online.tiled_output.find_corrected` prefers the latest complete one). Detector
    files referenced by ``stream_resource`` documents are read from their recorded path.

    Parameters
    ----------
    run : bluesky_tiled_plugins BlueskyRun
        The archived run (:func:`find_run`).
    live : LiveInpainting
        The callback (model, Tiled client, fallback directory).
    realtime : bool
        Keep the original spacing between documents (:func:`_paced`); default as fast
        as possible. Tiled gives an ophyd-async run's frames back as one
        ``stream_datum`` after all events, so those frames still arrive at the end.
    timeout : float, optional
        Seconds to wait for processing and upload after the last document.

    Returns
    -------
    dict
        The run's health (:meth:`LiveInpainting.health`): ``status``, ``tiled_path``,
        frames, windows, timings, errors.

    Raises
    ------
    ReplayError
        If the server cannot give the run back as documents, or processing did not end
        within ``timeout``.
    """
    uid = str(run.metadata["start"]["uid"])
    try:
        documents = iter(run.documents())
        replay_documents(_paced(documents) if realtime else documents, live, burst=True)
    except Exception as err:
        hint = (
            "; the Tiled server needs bluesky_tiled_plugins' json-seq exporter for "
            "BlueskyRun (deploy/tiled/config.yml)"
            if "406" in str(err)
            else ""
        )
        raise ReplayError(
            f"run {uid} cannot be read back as documents ({type(err).__name__}: {err}){hint}"
        ) from err
    followed = live.runs.get(uid)
    if followed is None:
        raise ReplayError(f"run {uid}: the live callback did not follow it")
    if not followed.wait(timeout):  # this run only: ``live`` may be following others
        raise ReplayError(f"run {uid}: processing not finished after {timeout} s")
    return followed.health()
