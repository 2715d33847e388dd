"""A restarted service ends the corrected runs an earlier instance of it left open in Tiled."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from .._redact import redact
from ._documents import EXIT_STATUS
from ._result_file import read_result_file

logger = logging.getLogger(__name__)


def _file_metadata(path: str | None) -> dict[str, Any]:
    """Return the final metadata the run's result file holds (empty if none or unreadable)."""
    if not path or not Path(path).is_file():
        return {}
    try:
        return read_result_file(path)[2]
    except Exception as err:  # unreadable: not a result to point at
        logger.warning("result file %s unreadable: %s", path, err)
        return {}


def _write_stop(node: Any, block: dict[str, Any]) -> None:
    """Write the stop document of an open corrected run, its ``bcdi_online`` = ``block``."""
    block["finished"] = time.time()
    stop = {
        "uid": str(uuid.uuid4()),
        "time": block["finished"],
        "run_start": node.metadata["start"]["uid"],
        "exit_status": EXIT_STATUS.get(block["status"], "fail"),
        "reason": str(block.get("error") or ""),
        "num_events": {},
        "bcdi_online": block,
    }
    node.update_metadata(metadata={"stop": stop}, drop_revision=True)


def end_open_runs(client: Any, raw_uid: str, reason: str) -> list[str]:
    """End ``interrupted`` every corrected run of ``raw_uid`` still open (no stop document).

    For a processor taking over a run whose owner went silent: the partial result of the
    owner is retired, so that only the taker's can end ``complete``.

    Parameters
    ----------
    client : tiled.client container
        The catalog of corrected runs.
    raw_uid : str
        Uid of the raw run.
    reason : str
        The stop's ``reason`` and ``bcdi_online.error``.

    Returns
    -------
    list of str
        Uids of the corrected runs ended.
    """
    from tiled.queries import Key

    ended = []
    for key, node in list(client.search(Key("start.original_run_uid") == raw_uid).items()):
        if node.metadata.get("stop"):
            continue
        block = dict(node.metadata["start"].get("bcdi_online") or {})
        _write_stop(node, {**block, "status": "interrupted", "error": reason})
        ended.append(str(key))
    return ended


def end_orphaned_runs(
    client: Any, owner: str, *, instance: str | None = None
) -> list[dict[str, Any]]:
    """Write the stop document of the corrected runs service ``owner`` left open (a kill).

    A run whose result file an earlier instance finished takes the status of that file
    (``local_fallback`` its path: the file holds the result); any other becomes
    ``interrupted``, with the reason (``bcdi-online replay`` redoes it). Runs of other
    owners, and of this ``instance``, are left alone.

    Parameters
    ----------
    client : tiled.client container
        The catalog of corrected runs.
    owner : str
        The service's name (start document ``bcdi_online.service.owner``).
    instance : str, optional
        The running instance (``bcdi_online.service.instance``), never touched.

    Returns
    -------
    list of dict
        ``key``, ``raw_uid``, ``status`` (the new one) of each run ended.
    """
    from tiled.queries import Key

    found = client.search(Key("start.bcdi_online.service.owner") == owner)
    changed = []
    for key, node in list(found.items()):
        metadata = dict(node.metadata)
        if metadata.get("stop"):
            continue
        block = dict(metadata["start"].get("bcdi_online") or {})
        service = block.get("service") or {}
        if instance is not None and service.get("instance") == instance:
            continue
        saved = _file_metadata(block.get("result_file"))
        if saved.get("status") not in (None, "running"):
            block.update(saved, local_fallback=block.get("result_file"))
        else:
            block.update(
                status="interrupted",
                error=(
                    f"service {owner!r} (instance {str(service.get('instance'))[:8]}) "
                    "stopped while the run was in progress; replay it with "
                    f"`bcdi-online replay {block.get('raw_uid')}`"
                ),
            )
        try:
            _write_stop(node, block)
        except Exception as err:  # one run's record must not stop the others
            logger.warning("cannot end corrected run %s: %s", key, redact(err))
            continue
        logger.warning(
            "corrected run %s: left open by an earlier instance, now %s", key, block["status"]
        )
        changed.append({"key": key, "raw_uid": block.get("raw_uid"), "status": block["status"]})
    return changed
