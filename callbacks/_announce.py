"""The RunEngine side of sharing runs: put each run on the processors' queue."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from bcdi_online._redact import redact

from ._queue import DEFAULT_STREAM, RunQueue

logger = logging.getLogger(__name__)


class RunAnnouncer:
    """Announce every run to the ``bcdi-online serve`` processors sharing a Redis queue.

    Subscribe it to each RunEngine, as ``TiledWriter``: at each start document it adds
    the run's uid to the stream (one ``XADD``, ~1 ms on a local network, bounded by
    ``timeout``), where exactly one processor takes it. Subscribe it before the 0MQ
    ``Publisher``, so that the run is on the queue before its documents reach the
    processors. A non-critical callback: it never raises into the RunEngine; a run it
    could not announce is logged and counted (:attr:`failed`), its raw data still go to
    Tiled, and :meth:`announce` can queue it later (``live=False``).

    Parameters
    ----------
    queue : RunQueue
        The queue (``consumer`` unused).

    Examples
    --------
    In an acquisition profile (not run here: it needs a Redis server)::

        RE.subscribe(TiledWriter(client, batch_size=1))
        RE.subscribe(RunAnnouncer.from_url("redis://beamline-redis:6379/0"))
        RE.subscribe(Publisher("127.0.0.1:5577", serializer=msgpack_serializer))
    """

    def __init__(self, queue: RunQueue) -> None:
        self.queue = queue
        self.announced: OrderedDict[str, str] = OrderedDict()
        """Entry id of each run announced by this instance, by run uid (the last 1000)."""
        self.failed: dict[str, str] = {}
        """Why each run that could not be announced was not, by run uid."""

    @classmethod
    def from_url(
        cls, url: str, *, stream: str = DEFAULT_STREAM, timeout: float = 1.0
    ) -> RunAnnouncer:
        """Connect to Redis at ``url`` (``redis://host:port/db``) and make the announcer.

        An announcement is one attempt of at most ``timeout`` seconds: the RunEngine
        waits for it (never for retries).

        Raises
        ------
        ServiceError
            If Redis cannot be reached (at set-up, not during a scan).
        """
        return cls(RunQueue.from_url(url, stream, timeout=timeout, retries=0))

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Take a RunEngine document; announce a run at its start document. Never raises."""
        if name != "start":
            return
        keys = ("scan_id", "plan_name", "time")
        fields: dict[str, str] = {key: str(doc[key]) for key in keys if key in doc}
        self.announce(str(doc.get("uid")), fields=fields)

    def announce(
        self, uid: str, *, live: bool = True, fields: dict[str, str] | None = None
    ) -> str | None:
        """Put run ``uid`` on the queue; its entry id, or None if Redis refused (logged).

        Parameters
        ----------
        uid : str
            The run's start-document uid.
        live : bool
            Whether its documents are still to come over 0MQ (a run starting); False
            queues a run already in Tiled (one the processors missed): its processor
            reads it from there at once. A run that already has a stored result is
            acknowledged as is (to process it again, with another model:
            ``bcdi-online replay``).
        fields : dict, optional
            Recorded with it (``scan_id``, ``plan_name``, ...).
        """
        try:
            entry = self.queue.announce(uid, live="1" if live else "0", **(fields or {}))
        except Exception as err:  # the RunEngine must not see it
            reason = redact(f"{type(err).__name__}: {err}")
            self.failed[uid] = reason
            logger.error("run %s not announced to the processors: %s", uid, reason)
            return None
        self.announced[uid] = entry
        if len(self.announced) > 1000:
            self.announced.popitem(last=False)
        self.failed.pop(uid, None)
        return entry
