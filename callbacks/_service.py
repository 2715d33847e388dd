"""The live inpainting as a service: fed by bluesky's 0MQ proxy from a background thread."""

from __future__ import annotations

import asyncio
import logging
import threading

from bluesky.callbacks.zmq import RemoteDispatcher

from ._router import LiveInpainting

logger = logging.getLogger(__name__)


class LiveService:
    """Listen to a ``bluesky-0MQ-proxy`` and hand every document to :class:`LiveInpainting`.

    The dispatcher (``bluesky.callbacks.zmq.RemoteDispatcher``) runs its event loop in a
    daemon thread, so the owner (``bcdi-online serve``, the Tango device server) keeps its
    own thread for signals or requests. Stopping ends the listening first, then waits for
    the runs in progress to finish their uploads.

    Parameters
    ----------
    live : LiveInpainting
        The callback (model, Tiled client, fallback directory).
    address : str
        The proxy's OUT address, ``host:port``.
    """

    def __init__(self, live: LiveInpainting, address: str) -> None:
        self.live, self.address = live, address
        self.error: str | None = None
        self._dispatcher: RemoteDispatcher | None = None
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        """Whether the dispatcher thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start listening (a fresh dispatcher each time); no-op when already listening."""
        if self.listening:
            return
        self.error = None
        self._dispatcher = RemoteDispatcher(self.address)
        self._dispatcher.subscribe(self.live)
        self._thread = threading.Thread(
            target=self._listen, args=(self._dispatcher,), name="bcdi-0mq", daemon=True
        )
        self._thread.start()

    def _listen(self, dispatcher: RemoteDispatcher) -> None:
        try:
            dispatcher.start()
        except asyncio.CancelledError:
            pass  # stop() cancelled the poll
        except Exception as err:
            logger.exception("0MQ dispatcher on %s failed", self.address)
            self.error = f"{type(err).__name__}: {err}"

    def stop(self, grace: float) -> list[str]:
        """Stop listening, wait up to ``grace`` seconds for runs in progress.

        Returns
        -------
        list of str
            Uids of runs still ``running`` when the grace period ran out (empty if all
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
        if self.live.wait(grace):
            return []
        return self.runs_in_progress()

    def runs_in_progress(self) -> list[str]:
        """Uids of the runs being processed or uploaded."""
        return [uid for uid, health in self.live.health().items() if health["status"] == "running"]
