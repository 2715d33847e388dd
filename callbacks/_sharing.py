"""Several processors, one facility: each run processed by exactly one of them.

Every processor hears every document (0MQ) but processes only the runs it owns on the
shared Redis queue (:class:`RunQueue`); see docs/explanations/scaling.md for the
design and why Redis streams.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from bcdi_online._redact import redact
from bcdi_online.tiled_output import FINAL_STATUSES, corrected_status, end_open_runs

from ._buffer import RunBuffers, RunIndex
from ._queue import QueueEntry, RunQueue
from ._replay import find_run, replay_run
from ._router import LiveInpainting

logger = logging.getLogger(__name__)

CLAIM_WAIT = 10.0
"""Seconds one wait for a new run lasts (see :meth:`RunQueue.claim_new`)."""

# -- the only two functions that know where results are stored -------------------------------


def _completed_result(client: Any, raw_uid: str) -> str | None:
    """Return the uid of a stored corrected run of raw run ``raw_uid``, or None.

    Stored: any final status but ``interrupted`` (its processor died or was taken over
    before it acknowledged the run).
    """
    from tiled.queries import Key

    for key, run in client.search(Key("start.original_run_uid") == raw_uid).items():
        status = corrected_status(run.metadata)
        if status in FINAL_STATUSES and status != "interrupted":
            return str(key)
    return None


def _retire_partial_result(client: Any, raw_uid: str, reason: str) -> list[str]:
    """End ``interrupted`` every corrected run of ``raw_uid`` still open; return their uids.

    The taker's result is then the only one that can end ``complete``.
    """
    return end_open_runs(client, raw_uid, reason)


# ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Owned:
    """A run this processor owns: its queue entry and how it is being processed."""

    entry: QueueEntry
    how: str  # "new" (first delivery), "taken" (from a silent owner), "mine" (restart)
    live: bool  # followed from the 0MQ documents, else processed from Tiled
    started: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    lost_to: str | None = None


class RunSharing:
    """Process only the runs this processor owns on the shared queue; take over the others'.

    Subscribe it (instead of ``live``) to the 0MQ dispatcher (:class:`LiveService` does
    so when given it). Threads: one takes new runs (``XREADGROUP``) while fewer than
    ``max_runs`` are owned; one heartbeats the owned runs every ``takeover_after / 4``
    seconds and takes the runs of processors silent for ``takeover_after`` seconds
    (``XAUTOCLAIM``); one listens to the other processors' claims. Documents of runs
    nobody has taken yet are buffered (:class:`RunBuffers`); those of runs others took
    are dropped.

    A run taken new whose documents were all seen since its start, or are still to
    come, is followed live (if its start document does not come within
    ``takeover_after`` seconds, it is processed from Tiled). Any other (taken from a
    silent processor, left by an earlier instance of this one, announced before this
    one listened or with ``live=False``, not followable live) is processed from Tiled:
    once TiledWriter has stored its stop
    document, the dead owner's partial result is retired and the raw run is replayed
    (:func:`replay_run`). A run is acknowledged only once its result is stored (in Tiled
    or its result file alone); a run whose result was stored before its owner died is
    acknowledged without processing it again. A processor that finds its run taken
    (it was silent too long) interrupts it. On shutdown the unfinished runs are handed
    back: another processor takes them at once.

    Parameters
    ----------
    live : LiveInpainting
        The processing (model, Tiled client, fallback).
    queue : RunQueue
        The queue, with this processor's name as consumer.
    takeover_after : float
        Seconds without a heartbeat after which an owner's runs are taken over; also how
        long a run taken new may wait for its start document before it is processed from
        Tiled, and how long an undecided run stays buffered after its stop.
    max_runs : int
        Runs owned at once (live and from Tiled).
    max_deliveries : int
        Owners a run may have; one more gives up on it (acknowledged, result retired).
    stop_timeout : float, optional
        Seconds a run processed from Tiled may wait for its stop document there.
    buffer_bytes : int
        Bound on the buffered documents of undecided runs.
    raw_catalog : tiled.client container, optional
        Where TiledWriter stores the raw runs (default ``live.raw_catalog``).
    poll : float
        Seconds between two looks for a raw run's stop document in Tiled.
    """

    def __init__(
        self,
        live: LiveInpainting,
        queue: RunQueue,
        *,
        takeover_after: float = 30.0,
        max_runs: int = 4,
        max_deliveries: int = 3,
        stop_timeout: float | None = 4 * 3600.0,
        buffer_bytes: int = 256 * 2**20,
        raw_catalog: Any = None,
        poll: float = 0.5,
    ) -> None:
        self.live, self.queue, self.name = live, queue, queue.consumer
        self.takeover_after, self.max_runs = takeover_after, max_runs
        self.max_deliveries, self.stop_timeout, self.poll = max_deliveries, stop_timeout, poll
        self.raw_catalog = live.raw_catalog if raw_catalog is None else raw_catalog
        self.counts = {
            "taken_new": 0,
            "taken_over": 0,
            "acknowledged": 0,
            "handed_back": 0,
            "lost": 0,
            "given_up": 0,
            "unrouted_documents": 0,
            "queue_errors": 0,
        }
        self._lock = threading.RLock()
        self._room = threading.Condition(self._lock)
        self._owned: dict[str, _Owned] = {}
        self._others: OrderedDict[str, str] = OrderedDict()
        self._index = RunIndex()
        self._buffers = RunBuffers(buffer_bytes, takeover_after)
        self._claiming, self._closed = threading.Event(), threading.Event()
        self._listening_since = float("inf")
        self._threads: list[threading.Thread] = []
        self._jobs: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Take back this processor's own runs (the first time: a restart), start the threads.

        Raises
        ------
        redis.RedisError
            If the queue cannot be read.
        """
        if not self._threads:
            self.queue.ensure_group()
            self._listening_since = self.queue.now()  # documents announced before: missed
            for entry in self.queue.claim_mine():
                self._take(entry, "mine")
        self._claiming.set()
        self._closed.clear()
        self._threads = [t for t in self._threads if t.is_alive()]
        running = {t.name for t in self._threads}
        for target, name in (
            (self._take_new, "bcdi-queue-claim"),
            (self._keep, "bcdi-queue-heartbeat"),
            (self._listen_claims, "bcdi-queue-claims"),
        ):
            if name not in running:
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop_claiming(self) -> None:
        """Take no more runs; keep heartbeating the owned ones (the shutdown's grace)."""
        self._claiming.clear()
        with self._room:
            self._room.notify_all()
        self._queue_call(self.queue.wake)

    def close(self, timeout: float = 10.0) -> list[str]:
        """Stop; hand back the runs not finished (another processor takes them at once).

        Returns
        -------
        list of str
            Uids of the runs handed back.
        """
        self.stop_claiming()
        self._closed.set()
        deadline = time.monotonic() + timeout
        for job in list(self._jobs):
            job.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = list(self._owned.values())
            self._owned.clear()
        for owned in left:
            self._hand_back(owned)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [owned.entry.uid for owned in left]

    def state(self) -> dict[str, Any]:
        """Owned runs (uid: how taken, live or from Tiled, deliveries), counts, buffers."""
        with self._lock:
            owned = {
                uid: {"how": o.how, "live": o.live, "deliveries": o.entry.deliveries}
                for uid, o in self._owned.items()
            }
            return {
                "owned": owned,
                **self.counts,
                "buffered_runs": self._buffers.runs,
                "buffered_bytes": self._buffers.nbytes,
            }

    # -- documents from 0MQ --------------------------------------------------------------

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Take a document: to ``live`` if the run is ours, buffered if undecided; never raises."""
        try:
            with self._lock:
                run = self._index.run_of(name, doc)
                if run is None:
                    self.counts["unrouted_documents"] += 1
                    return
                owned = self._owned.get(run)
                if owned is not None and owned.live:
                    if name == "start" or owned.started.is_set():  # else: its start was lost
                        self._forward(owned, name, doc)
                elif owned is None and run not in self._others:
                    self._buffers.add(run, name, doc)
                if name == "stop":
                    self._index.forget(run)
        except Exception:
            logger.exception("run sharing: %s document not handled", name)

    def _forward(self, owned: _Owned, name: str, doc: dict[str, Any]) -> None:
        self.live(name, doc)
        if name == "start":
            owned.started.set()
        elif name == "stop":
            owned.stopped.set()

    # -- taking runs ---------------------------------------------------------------------

    def _has_room(self) -> bool:
        return len(self._owned) < self.max_runs

    def _take_new(self) -> None:
        while self._claiming.is_set():
            with self._room:
                while self._claiming.is_set() and not self._has_room():
                    self._room.wait(1.0)
            if not self._claiming.is_set():
                return
            for entry in self._queue_call(self.queue.claim_new, CLAIM_WAIT) or []:
                if self._claiming.is_set():
                    self._take(entry, "new")
                else:  # stopping meanwhile: to another processor
                    self._queue_call(self.queue.hand_back, entry.entry_id, self.takeover_after)

    def _keep(self) -> None:
        period = self.takeover_after / 4
        while not self._closed.wait(period):
            with self._lock:
                held = {o.entry.entry_id: o for o in self._owned.values()}
                self._buffers.expire()
            lost = self._queue_call(self.queue.heartbeat, list(held)) or {}
            for entry_id, owner in lost.items():
                self._lose(held[entry_id], owner)
            with self._lock:
                room = self.max_runs - len(self._owned) if self._claiming.is_set() else 0
            if room > 0:
                for entry in (
                    self._queue_call(self.queue.take_stale, self.takeover_after, room) or []
                ):
                    if entry.entry_id not in held:  # not one of ours that looked idle
                        self._take(entry, "taken")

    def _listen_claims(self) -> None:
        recent = self._queue_call(self.queue.recent_claims, 1000)
        after, claims = recent if recent else ("$", [])
        while True:
            with self._lock:
                for claim in claims:
                    if claim.get("owner") != self.name and claim.get("uid") not in self._owned:
                        self._others[claim["uid"]] = claim.get("owner", "")
                        self._buffers.drop(claim["uid"])
                while len(self._others) > 10_000:
                    self._others.popitem(last=False)
            if not self._claiming.is_set():
                return
            read = self._queue_call(self.queue.read_claims, after, 1.0)
            after, claims = read if read else (after, [])

    def _queue_call(self, method: Any, *args: Any) -> Any:
        """``method(*args)`` on Redis; None (logged, counted) if Redis fails, after a pause."""
        try:
            return method(*args)
        except Exception as err:
            self._count("queue_errors")
            logger.warning("run queue: %s failed: %s", method.__name__, redact(err))
            self._closed.wait(1.0)
            return None

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _take(self, entry: QueueEntry, how: str) -> None:
        """Own ``entry``'s run: follow it live, or process it from Tiled, in a job thread."""
        uid = entry.uid
        with self._lock:
            duplicate = not uid or uid in self._owned  # trimmed, or announced twice
        if duplicate:
            self._queue_call(self.queue.ack, entry.entry_id)
            return
        with self._lock:
            documents = self._buffers.take(uid) if how == "new" else None
            if how != "new":
                self._buffers.drop(uid)
            coming = (  # none of its documents seen yet, but they are still to come
                how == "new"
                and entry.fields.get("live") != "0"
                and entry.announced >= self._listening_since
                and uid not in self._buffers.not_live
            )
            owned = _Owned(entry, how, live=documents is not None or coming)
            self._owned[uid] = owned
            self._others.pop(uid, None)
            self.counts["taken_new" if how == "new" else "taken_over"] += 1
            for name, doc in documents or []:
                self._forward(owned, name, doc)
            job = threading.Thread(
                target=self._follow if owned.live else self._from_tiled,
                args=(owned,),
                name=f"bcdi-run-{uid[:8]}",
                daemon=True,
            )
            self._jobs = [j for j in self._jobs if j.is_alive()] + [job]
        logger.info(
            "run %s taken (%s, delivery %d): %s",
            uid,
            how,
            entry.deliveries,
            "live" if owned.live else "from Tiled",
        )
        self._queue_call(self.queue.say_claimed, uid, entry.entry_id, how)
        job.start()

    def _lose(self, owned: _Owned, owner: str) -> None:
        """Another processor took our run (we were silent too long): stop processing it."""
        with self._lock:
            if self._owned.get(owned.entry.uid) is not owned:
                return
            owned.lost_to = owner or "nobody (acknowledged)"
            run = self.live.runs.get(owned.entry.uid)
        self._count("lost")
        logger.error("run %s: taken over by %s; processing stopped", owned.entry.uid, owner)
        if run is not None:
            run.interrupt(f"taken over by {owner}")

    # -- processing a run ----------------------------------------------------------------

    def _ends(self, owned: _Owned) -> bool:
        return self._closed.is_set() or owned.lost_to is not None

    def _follow(self, owned: _Owned) -> None:
        """Wait for the end of a run followed live, then settle it."""
        uid = owned.entry.uid
        deadline = time.monotonic() + self.takeover_after
        while not owned.started.wait(0.2):
            if self._ends(owned):
                return self._settle(owned, stored=False)
            if time.monotonic() > deadline:
                with self._lock:  # its start document never came: from Tiled then
                    owned.live = owned.started.is_set()
                if not owned.live:
                    return self._from_tiled(owned)
        run = self.live.runs.get(uid)
        while run is not None and not owned.stopped.wait(0.5):
            if (run.worker is not None and run.worker.done) or self._ends(owned):
                break
        if run is not None:
            run.wait()
        self._settle(owned, stored=run is not None and _stored(dict(run.health())))

    def _from_tiled(self, owned: _Owned) -> None:
        """Process a run from its raw documents and frames in Tiled (a takeover)."""
        uid, client = owned.entry.uid, self.live.client
        try:
            if owned.entry.deliveries > self.max_deliveries:
                reason = f"given up after {owned.entry.deliveries - 1} processors failed it"
                _retire_partial_result(client, uid, reason)
                self._count("given_up")
                logger.error("run %s: %s", uid, reason)
                return self._settle(owned, stored=True)
            stored = _completed_result(client, uid)
            if stored is not None:
                logger.info("run %s: its result is already stored (%s)", uid, stored)
                return self._settle(owned, stored=True)
            retired = _retire_partial_result(client, uid, f"taken over by {self.name}")
            if retired:
                logger.warning("run %s: partial result %s retired", uid, retired)
            raw = self._stopped_raw_run(owned)
            health = None if raw is None else dict(replay_run(raw, self.live))
        except Exception as err:  # Tiled down, a run it cannot give back: another try later
            logger.error("run %s: not processed from Tiled: %s", uid, redact(err))
            health = None
        self._settle(owned, stored=_stored(health))

    def _stopped_raw_run(self, owned: _Owned) -> Any:
        """Return the raw run once its stop is in Tiled (None: shutdown, lost, timeout)."""
        uid = owned.entry.uid
        limit = self.stop_timeout
        deadline = None if limit is None else time.monotonic() + limit
        while not self._ends(owned):
            try:
                run = find_run(self.raw_catalog, uid)
                if run.metadata.get("stop"):
                    return run
            except Exception as err:  # not there yet, or Tiled down: look again
                logger.debug("run %s: raw run not ready in Tiled: %s", uid, redact(err))
            if deadline is not None and time.monotonic() > deadline:
                logger.error("run %s: no stop document in Tiled after %g s", uid, limit)
                return None
            self._closed.wait(self.poll)
        return None

    def _settle(self, owned: _Owned, *, stored: bool) -> None:
        """Acknowledge a stored run; hand back one that was not (another processor retries)."""
        with self._room:
            if self._owned.get(owned.entry.uid) is owned:
                del self._owned[owned.entry.uid]
            self._room.notify_all()
        uid, entry_id = owned.entry.uid, owned.entry.entry_id
        if owned.lost_to is not None:
            return
        if stored:
            if self._queue_call(self.queue.ack, entry_id):
                self._count("acknowledged")
            else:
                logger.warning("run %s: stored, but taken over before it was acknowledged", uid)
            return
        self._hand_back(owned)

    def _hand_back(self, owned: _Owned) -> None:
        if owned.lost_to is None and self._queue_call(
            self.queue.hand_back, owned.entry.entry_id, self.takeover_after
        ):
            self._count("handed_back")
            logger.warning("run %s handed back to the other processors", owned.entry.uid)


def _stored(health: dict[str, Any] | None) -> bool:
    """Whether a run's health says it ended with its result stored (or had none to store).

    ``interrupted`` (a shutdown, a lost run, no document for ``run_timeout``) is not
    stored: another processor does it again from Tiled.
    """
    status = (health or {}).get("status")
    if status == "ignored":
        return True
    return status not in (None, "interrupted") and bool((health or {}).get("saved_to"))
