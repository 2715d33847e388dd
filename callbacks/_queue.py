"""The run queue several processors share: a Redis stream read by one consumer group.

A RunEngine-side :class:`~bcdi_online.callbacks.RunAnnouncer` adds one entry per run
(``XADD``: the start document's uid). Each processor is a consumer of one group: an
entry is delivered to exactly one of them (``XREADGROUP``) and stays in the group's
pending-entries list, owned by it, until it acknowledges it (``XACK``) once the run's
result is stored. While it works the owner resets the entry's idle time
(``XCLAIM ... JUSTID``, the heartbeat); an entry idle longer than the takeover bound
belongs to a silent processor and another one takes it (``XAUTOCLAIM``). Redis does
each of these atomically; the three that must only act on an entry the caller still
owns (heartbeat, acknowledgement, hand-back) are short Lua scripts, so that a
processor which lost its run can neither steal it back nor acknowledge it.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bcdi_online import ServiceError
from bcdi_online._redact import redact, register_secret

logger = logging.getLogger(__name__)

DEFAULT_STREAM = "bcdi_online:runs"
"""Redis key of the run queue (a stream); its consumer group is :data:`GROUP`."""
GROUP = "bcdi_online"
"""The consumer group of the processors."""
MAXLEN = 100_000
"""Entries kept in the stream (approximately, ``XADD MAXLEN ~``): months of runs."""

# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, then entry ids. The owner of an entry
# is the second field of its XPENDING row. Returns, for each id, the owner now ("" for an
# entry no longer pending); the caller's own entries get their idle time reset.
_HEARTBEAT = """
local owners = {}
for i = 3, #ARGV do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  local owner = ''
  if #row == 1 then owner = row[1][2] end
  if owner == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  end
  owners[#owners + 1] = owner
end
return owners
"""
# ARGV[1] group, ARGV[2] consumer, ARGV[3] id, ARGV[4] "ack" or an idle time in ms.
# Acknowledge the entry, or make it look idle for that long (taken at once by another
# processor's XAUTOCLAIM), only if the caller owns it; returns 1 if it did.
_SETTLE = """
local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #row == 0 or row[1][2] ~= ARGV[2] then return 0 end
if ARGV[4] == 'ack' then return redis.call('XACK', KEYS[1], ARGV[1], ARGV[3]) end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""


@dataclass(frozen=True)
class QueueEntry:
    """One announced run, as a processor received it.

    Attributes
    ----------
    entry_id : str
        The stream entry's id (``<ms>-<seq>``; its first part is when it was announced).
    uid : str
        The run's start-document uid ("" if the entry was trimmed from the stream).
    deliveries : int
        How many processors have owned it so far, this one included.
    fields : dict
        Everything the announcer recorded (``uid``, ``scan_id``, ``plan_name``, ...).
    """

    entry_id: str
    uid: str
    deliveries: int = 1
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def announced(self) -> float:
        """Epoch seconds at which the run was announced (from the entry id)."""
        return int(self.entry_id.split("-", 1)[0]) / 1000.0


def connect_redis(url: str, *, timeout: float = 5.0, retries: int = 2) -> Any:
    """Connect a ``redis.Redis`` client to ``url`` (strings decoded), checked with a PING.

    Parameters
    ----------
    url : str
        ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
    timeout : float
        Seconds for a connection and for a reply (blocking reads add their own block).
    retries : int
        Retries of a command that could not reach Redis, 0.1 s apart at first (redis-py's
        default, 10 with back-off up to 10 s, would hold a heartbeat past its bound).

    Raises
    ------
    ServiceError
        If Redis cannot be reached or refuses the password (the message never shows it).
    """
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    register_secret(urlsplit(url).password)
    client = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), retries),
    )
    try:
        client.ping()
    except redis.RedisError as err:
        client.close()
        raise ServiceError(
            f"cannot reach the run queue at {redact(url)}: {type(err).__name__}: {redact(err)}"
        ) from None
    return client


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RunQueue:
    """The run queue of one processor (a consumer), or of an announcer.

    Parameters
    ----------
    client : redis.Redis
        Connection (``decode_responses=True``), e.g. :func:`connect_redis`.
    stream : str
        Key of the stream.
    consumer : str
        This processor's name in the group (unique among the processors: the
        ``serve --name``); "" for an announcer.
    """

    def __init__(self, client: Any, stream: str = DEFAULT_STREAM, consumer: str = "") -> None:
        self.client, self.stream, self.consumer = client, stream, consumer
        self.claims = f"{stream}:claims"
        """Stream on which each owner says which run it took (for the others' buffers)."""
        self._waiting: Any = None  # the connection of claim_new, and its reply timeout
        self._waiting_timeout = 0.0
        self._waiting_id: int | None = None
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._settle = client.register_script(_SETTLE)
        self._group_ready = False

    @classmethod
    def from_url(
        cls, url: str, stream: str = DEFAULT_STREAM, consumer: str = "", **options: Any
    ) -> RunQueue:
        """Connect to ``url`` (:func:`connect_redis`, with ``options``) and make the queue."""
        return cls(connect_redis(url, **options), stream, consumer)

    def close(self) -> None:
        """Close the connections to Redis."""
        if self._waiting is not None:
            self._waiting.close()
        self.client.close()

    def wake(self) -> None:
        """End a :meth:`claim_new` waiting in another thread now (it returns no run)."""
        if self._waiting_id is not None:
            self.client.client_unblock(self._waiting_id)

    def _reader(self, block: float) -> Any:
        """Return a connection of its own for blocking reads of ``block`` s at most."""
        import redis

        pool = self.client.connection_pool
        timeout = block + (pool.connection_kwargs.get("socket_timeout") or 5.0)
        if self._waiting is None or self._waiting_timeout < timeout:
            if self._waiting is not None:
                self._waiting.close()
            kwargs = {**pool.connection_kwargs, "socket_timeout": timeout}
            self._waiting = redis.Redis(
                connection_pool=redis.ConnectionPool(pool.connection_class, **kwargs),
                single_connection_client=True,
            )
            self._waiting_timeout = timeout
        return self._waiting

    def ensure_group(self) -> None:
        """Create the stream and its group, from the stream's first entry, if missing."""
        if self._group_ready:
            return
        import redis

        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
        self._group_ready = True

    # -- announcer --------------------------------------------------------------------

    def announce(self, uid: str, **fields: str) -> str:
        """Add run ``uid`` to the queue; return the entry id."""
        self.ensure_group()
        values = {"uid": uid, "host": socket.gethostname(), **fields}
        return _text(
            self.client.xadd(self.stream, values, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
        )

    # -- processor: taking runs -------------------------------------------------------

    def claim_new(self, block: float, count: int = 1) -> list[QueueEntry]:
        """Take runs never delivered before, up to ``count``, waiting up to ``block`` s.

        Redis hands a new entry to the consumer that has waited longest: with ``block``
        longer than the time between runs, the processors with room take turns (short
        blocks, all timing out and waiting again in step, would favour some of them).
        The wait holds a connection of its own, whose reply timeout allows for it.
        """
        self.ensure_group()
        reader = self._reader(block)
        self._waiting_id = reader.client_id()  # for wake()
        reply = reader.xreadgroup(
            GROUP, self.consumer, {self.stream: ">"}, count=count, block=max(1, int(block * 1e3))
        )
        return [QueueEntry(_text(i), f.get("uid", ""), 1, f) for _, rows in reply for i, f in rows]

    def claim_mine(self) -> list[QueueEntry]:
        """Take back the runs this consumer owned before (a restart under the same name)."""
        self.ensure_group()
        reply = self.client.xreadgroup(GROUP, self.consumer, {self.stream: "0"}, count=1000)
        entries = [(_text(i), f or {}) for _, rows in reply for i, f in rows]
        return self._with_deliveries(entries)

    def take_stale(self, idle: float, count: int) -> list[QueueEntry]:
        """Take up to ``count`` runs whose owner has not heartbeaten for ``idle`` seconds.

        ``XAUTOCLAIM`` moves them to this consumer atomically (two processors never take
        the same one) and counts the delivery.
        """
        self.ensure_group()
        entries: list[tuple[str, dict[str, str]]] = []
        cursor = "0-0"
        while len(entries) < count:
            reply = self.client.xautoclaim(
                self.stream, GROUP, self.consumer, int(idle * 1e3), cursor, count - len(entries)
            )
            cursor = _text(reply[0])
            entries += [(_text(i), f or {}) for i, f in reply[1] if f]
            if cursor == "0-0":
                break
        return self._with_deliveries(entries)

    def _with_deliveries(self, entries: list[tuple[str, dict[str, str]]]) -> list[QueueEntry]:
        out = []
        for entry_id, fields in entries:
            rows = self.client.xpending_range(self.stream, GROUP, entry_id, entry_id, 1)
            deliveries = int(rows[0]["times_delivered"]) if rows else 1
            out.append(QueueEntry(entry_id, fields.get("uid", ""), deliveries, fields))
        return out

    # -- processor: holding and settling runs -----------------------------------------

    def heartbeat(self, entry_ids: list[str]) -> dict[str, str]:
        """Reset the idle time of the entries this consumer still owns.

        Returns
        -------
        dict
            The owner now of each entry that is no longer this consumer's (another
            processor's name, or "" if it was acknowledged or trimmed).
        """
        if not entry_ids:
            return {}
        owners = self._heartbeat(keys=[self.stream], args=[GROUP, self.consumer, *entry_ids])
        return {
            entry_id: _text(owner)
            for entry_id, owner in zip(entry_ids, owners, strict=True)
            if _text(owner) != self.consumer
        }

    def ack(self, entry_id: str) -> bool:
        """Acknowledge a run whose result is stored; False if this consumer lost it."""
        args = [GROUP, self.consumer, entry_id, "ack"]
        return bool(self._settle(keys=[self.stream], args=args))

    def hand_back(self, entry_id: str, idle: float) -> bool:
        """Give an unfinished run back: it looks ``idle`` s idle, another takes it at once."""
        args = [GROUP, self.consumer, entry_id, str(int(idle * 1e3))]
        return bool(self._settle(keys=[self.stream], args=args))

    # -- who took what ------------------------------------------------------------------

    def now(self) -> float:
        """Redis's clock, in epoch seconds (the clock of the entry ids)."""
        seconds, microseconds = self.client.time()
        return float(seconds) + microseconds / 1e6

    def say_claimed(self, uid: str, entry_id: str, how: str) -> None:
        """Tell the other processors that this one owns run ``uid`` (``how`` it got it)."""
        values = {"uid": uid, "owner": self.consumer, "entry": entry_id, "how": how}
        self.client.xadd(self.claims, values, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]

    def recent_claims(self, count: int) -> tuple[str, list[dict[str, str]]]:
        """Return the id to read on from, and the last ``count`` claims, oldest first."""
        rows = self.client.xrevrange(self.claims, count=count)
        last = _text(rows[0][0]) if rows else "0-0"
        return last, [fields for _, fields in reversed(rows)]

    def read_claims(self, after: str, block: float) -> tuple[str, list[dict[str, str]]]:
        """Claims made after id ``after``, waiting up to ``block`` s; the last id read."""
        reply = self.client.xread({self.claims: after}, count=1000, block=int(block * 1e3))
        rows = [(_text(i), f) for _, entries in reply for i, f in entries]
        return (rows[-1][0] if rows else after), [fields for _, fields in rows]

    def pending(self) -> list[dict[str, Any]]:
        """List every run taken and not yet acknowledged (health reports, tests).

        Returns
        -------
        list of dict
            ``entry_id``, ``owner``, ``idle_s``, ``deliveries``.
        """
        rows = self.client.xpending_range(self.stream, GROUP, "-", "+", 10_000)
        return [
            {
                "entry_id": _text(row["message_id"]),
                "owner": _text(row["consumer"]),
                "idle_s": row["time_since_delivered"] / 1e3,
                "deliveries": int(row["times_delivered"]),
            }
            for row in rows
        ]
