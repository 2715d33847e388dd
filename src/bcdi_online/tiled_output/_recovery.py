"""A restarted service ends the runs an earlier instance of it left ``running`` in Tiled."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from .._redact import redact
from ._fallback import default_fallback_dir, read_fallback
from ._settings import DEFAULT_GROUP

logger = logging.getLogger(__name__)


def _fallback_of(metadata: dict[str, Any], fallback_dir: Path) -> tuple[Path, dict] | None:
    """Return the fallback file of this processing and its metadata, if one was written."""
    uid, processing = str(metadata.get("raw_uid")), str(metadata.get("processing_uid"))
    for name in (f"bcdi_online_{uid}.h5", f"bcdi_online_{uid}-{processing[:8]}.h5"):
        path = fallback_dir / name
        if path.is_file():
            try:
                saved = read_fallback(path)[2]
            except Exception as err:  # unreadable: not a result to point at
                logger.warning("fallback file %s unreadable: %s", path, err)
                continue
            if saved.get("processing_uid") == processing:
                return path, saved
    return None


def end_orphaned_runs(
    client: Any,
    owner: str,
    *,
    instance: str | None = None,
    group: str = DEFAULT_GROUP,
    fallback_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Give a final status to the runs service ``owner`` left ``running`` (a crash, a kill).

    A run whose result an earlier instance wrote to its local fallback file takes the
    status of that file (and its ``local_fallback`` path); any other becomes
    ``interrupted``, with the reason in ``error`` (``bcdi-online replay`` redoes it).
    Runs of other owners, and of this ``instance``, are left alone.

    Parameters
    ----------
    client : tiled.client container
        Parent of ``group``.
    owner : str
        The service's name (metadata ``service.owner``).
    instance : str, optional
        The running instance (metadata ``service.instance``), never touched.
    group : str
        Container of the corrected scans.
    fallback_dir : str or Path, optional
        The service's fallback directory (default :func:`default_fallback_dir`).

    Returns
    -------
    list of dict
        ``key``, ``raw_uid``, ``status`` (the new one) of each run changed.
    """
    from tiled.queries import Key

    if group not in client:
        return []
    fallback_dir = Path(fallback_dir) if fallback_dir else default_fallback_dir()
    found = client[group].search(Key("status") == "running").search(Key("service.owner") == owner)
    changed = []
    for key, node in list(found.items()):
        metadata = dict(node.metadata)
        service = metadata.get("service") or {}
        if instance is not None and service.get("instance") == instance:
            continue
        saved = _fallback_of(metadata, fallback_dir)
        if saved is not None:
            path, file_metadata = saved
            update = {
                "status": file_metadata.get("status", "interrupted"),
                "local_fallback": str(path),
                "error": file_metadata.get("error"),
                "processing": file_metadata.get("processing", metadata.get("processing")),
            }
        else:
            update = {
                "status": "interrupted",
                "error": (
                    f"service {owner!r} (instance {str(service.get('instance'))[:8]}) "
                    "stopped while the run was in progress; replay it with "
                    f"`bcdi-online replay {metadata.get('raw_uid')}`"
                ),
            }
        update["finished"] = time.time()
        try:
            node.replace_metadata(metadata={**metadata, **update}, drop_revision=True)
        except Exception as err:  # one run's record must not stop the others
            logger.warning("cannot update %s/%s: %s", group, key, redact(err))
            continue
        logger.warning(
            "run %s: left running by an earlier instance, now %s", key, update["status"]
        )
        changed.append(
            {"key": key, "raw_uid": metadata.get("raw_uid"), "status": update["status"]}
        )
    return changed
