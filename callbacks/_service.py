"""The live inpainting as a service: fed by bluesky's 0MQ proxy from a background thread."""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
from typing import TYPE_CHECKING, Any

from bcdi_online import ServiceError
from bcdi_online._redact import redact
from bcdi_online.tiled_output import end_orphaned_runs

from ._router import LiveInpainting
from ._transport import SafeRemoteDispatcher, is_loopback, msgpack_deserializer

if TYPE_CHECKING:
    from ._sharing import RunSharing

logger = logging.getLogger(__name__)


class LiveService:
    """Listen to a ``bluesky-0MQ-proxy`` and hand every document to :class:`LiveInpainting`.

    The dispatcher (:class:`SafeRemoteDispatcher`: msgpack, one bad message never stops
    it) runs its event loop in a daemon thread, so the owner (``bcdi-online serve``, the
    Tango device server) keeps its own thread for signals or requests. The first
    :meth:`start` ends the runs an earlier instance of the same service (``live.owner``)
    left ``running`` in Tiled (:func:`~bcdi_online.tiled_output.end_orphaned_runs`).
    Stopping ends the listening first, then waits for the runs in progress.

    Parameters
    ----------
    live : LiveInpainting
        The callback (model, Tiled client, fallback directory, owner).
    address : str
        The proxy's OUT address, ``host:port``.
    allow_pickle : bool
        Deserialise with pickle (bluesky's default ``Publisher``). Anyone who can publish
        to the proxy then runs code here: refused unless ``address`` is on this machine
        (loopback), and even then only for a proxy no one else can publish to.
    sharing : RunSharing, optional
        Share the runs with other processors (a Redis run queue): the documents go to
        it, and it hands ``live`` those of the runs this processor owns; stopping with
        ``interrupt`` hands the unfinished ones to another processor.

    Raises
    ------
    ServiceError
        If ``allow_pickle`` is asked for a proxy that is not on loopback.
    """

    def __init__(
        self,
        live: LiveInpainting,
        address: str,
        *,
        allow_pickle: bool = False,
        sharing: RunSharing | None = None,
    ) -> None:
        if allow_pickle and not is_loopback(address):
            raise ServiceError(
                f"pickle over 0MQ refused for {address!r}: anyone who can publish to that "
                "proxy could run code here; use the msgpack serializer (deploy/), pickle "
                "is allowed on a loopback address only"
            )
        self.live, self.address, self.allow_pickle = live, address, allow_pickle
        self.sharing = sharing
        self.error: str | None = None
        self.ended_at_start: list[dict[str, Any]] = []
        self.shutdown_report: dict[str, dict[str, Any]] = {}
        self._recovered = False
        self._dispatcher: SafeRemoteDispatcher | None = None
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        """Whether the dispatcher thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def dropped(self) -> int:
        """Messages the dispatcher dropped (undecodable, unknown name, refused)."""
        return 0 if self._dispatcher is None else self._dispatcher.dropped

    def start(self) -> None:
        """Start listening (a fresh dispatcher each time); no-op when already listening."""
        if self.listening:
            return
        self.error = None
        self._end_orphaned_runs()
        deserializer = pickle.loads if self.allow_pickle else msgpack_deserializer
        self._dispatcher = SafeRemoteDispatcher(self.address, deserializer=deserializer)
        self._dispatcher.subscribe(self.sharing or self.live)
        if self.sharing is not None:
            self.sharing.start()
        self._thread = threading.Thread(
            target=self._listen, args=(self._dispatcher,), name="bcdi-0mq", daemon=True
        )
        self._thread.start()

    def _end_orphaned_runs(self) -> None:
        live = self.live
        if self._recovered or live.owner is None or live.client is None:
            return
        try:
            self.ended_at_start = end_orphaned_runs(
                live.client, live.owner, instance=live.instance
            )
            self._recovered = True
        except Exception as err:  # Tiled down: try again at the next start
            logger.warning("cannot look for runs left running: %s", redact(err))

    def _listen(self, dispatcher: SafeRemoteDispatcher) -> None:
        try:
            dispatcher.start()
        except asyncio.CancelledError:
            pass  # stop() cancelled the poll
        except Exception as err:
            logger.exception("0MQ dispatcher on %s failed", self.address)
            self.error = redact(f"{type(err).__name__}: {err}")

    def stop(self, grace: float, *, interrupt: bool = False) -> list[str]:
        """Stop listening, wait up to ``grace`` seconds for runs in progress.

        Parameters
        ----------
        grace : float
            Seconds the runs in progress get to finish and upload.
        interrupt : bool
            Then end those still in progress (shutdown): ``interrupted`` (or their own
            status if only the upload was pending), ended in their result
            files; the last ``min(5, grace / 5)`` seconds of the grace period are kept for
            that. What happened to each run is in :attr:`shutdown_report`.

        Returns
        -------
        list of str
            Uids of runs not finished when the grace period ran out (empty if all
            finished).
        """
        dispatcher, thread = self._dispatcher, self._thread
        if dispatcher is not None and thread is not None and thread.is_alive():
            loop = dispatcher.loop

            def cancel() -> None:  # the poll task: start() returns, the loop closes
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            try:
                loop.call_soon_threadsafe(cancel)
            except RuntimeError:  # the loop closed meanwhile: nothing to stop
                pass
            thread.join(10.0)
        if self.sharing is not None:
            self.sharing.stop_claiming()
        margin = min(5.0, 0.2 * grace) if interrupt else 0.0  # to write the files in time
        left = [] if self.live.wait(grace - margin) else self.runs_in_progress()
        if left and interrupt:
            self.shutdown_report = self.live.interrupt(
                f"the service stopped after a {grace:g} s grace period before the run was "
                "processed; replay it with `bcdi-online replay <uid>`"
            )
        if self.sharing is not None and interrupt:  # the unfinished runs: to another processor
            self.sharing.close()
        return left

    def runs_in_progress(self) -> list[str]:
        """Uids of the runs being processed or uploaded."""
        return [uid for uid, health in self.live.health().items() if health["status"] == "running"]
