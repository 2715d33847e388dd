"""The callback to subscribe: a ``RunRouter`` making one :class:`LiveGapInpainter` per run."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from event_model import RunRouter

from bcdi_online.inpainting import GapInpainter
from bcdi_online.tiled_output import DEFAULT_GROUP, CorrectedScanWriter, RetryPolicy

from ._run import LiveGapInpainter

logger = logging.getLogger(__name__)


def model_info(model: Any) -> dict[str, Any]:
    """Name and SHA-256 of the model behind ``model`` (as :class:`GapInpainter` accepts it)."""
    from bcdi_online.model import DEFAULT_WEIGHTS, model_sha256

    if model is None or isinstance(model, str | Path):
        path = Path(model) if model is not None else DEFAULT_WEIGHTS
        return {"name": path.name, "sha256": model_sha256(path)}
    name = getattr(model, "__qualname__", None) or type(model).__qualname__
    return {"name": str(name), "sha256": None}


class LiveInpainting:
    """Live gap inpainting of every run: subscribe it to a RunEngine.

    Mirrors ``bluesky_tiled_plugins.TiledWriter``: an ``event_model.RunRouter`` makes
    one :class:`LiveGapInpainter` per run; each writes its corrected frames to
    ``<client>/<group>/<raw_uid>`` (default ``bcdi_online/<raw_uid>``) as they become
    final. It never raises into the RunEngine and never blocks it.

    Parameters
    ----------
    client : tiled.client container or None
        Where corrected scans go; None writes local HDF5 files only.
    model : path, GapUNet, predictor, GapInpainter or None
        The model (loaded once, default the shipped weights) or a ready inpainter.
    device : str, optional
        Torch device of the model.
    field : str, optional
        Detector data key; default the single 2D data key of the stream.
    mask : (ny, nx) bool ndarray, optional
        Gap mask, if it is not in the documents (see :class:`LiveGapInpainter`).
    stream_name : str
        Event stream of the frames.
    queue_size : int
        Per-run queue length before the overflow policy (see :class:`InpaintWorker`).
    group : str
        Container of the corrected scans under ``client``.
    fallback_dir : str or Path, optional
        Local HDF5 files when Tiled stays down.
    retry : RetryPolicy, optional
        Back-off of Tiled writes.
    keep_runs : int
        Finished runs kept in :attr:`runs` for :meth:`health`.
    model_metadata : dict, optional
        Output ``model`` metadata (e.g. ``{"name", "sha256"}``) when ``model`` is a
        ready :class:`GapInpainter`, whose checkpoint path is unknown here.

    Examples
    --------
    >>> live = LiveInpainting.from_uri("http://localhost:8000", api_key="secret")  # doctest: +SKIP
    >>> RE.subscribe(live)                                                        # doctest: +SKIP
    >>> RE(scan([det], eta, -0.5, 0.5, 128)); live.wait(60)                      # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        *,
        model: Any = None,
        device: str | None = None,
        field: str | None = None,
        mask: np.ndarray | None = None,
        stream_name: str = "primary",
        queue_size: int = 64,
        group: str = DEFAULT_GROUP,
        fallback_dir: str | Path | None = None,
        retry: RetryPolicy | None = None,
        keep_runs: int = 16,
        model_metadata: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(model, GapInpainter):
            self.inpainter, info = model, model_info(model.predictor)
        else:
            self.inpainter, info = GapInpainter(model, device=device), model_info(model)
        info = model_metadata or info
        self.client, self.field, self.mask = client, field, mask
        self.stream_name, self.queue_size, self.keep_runs = stream_name, queue_size, keep_runs
        self.metadata = {
            "model": info,
            "window_plan": dataclasses.asdict(self.inpainter.plan),
            "batch_size": self.inpainter.batch_size,
        }
        self._writer_factory = functools.partial(
            CorrectedScanWriter, client, group=group, fallback_dir=fallback_dir, retry=retry
        )
        self.runs: OrderedDict[str, LiveGapInpainter] = OrderedDict()
        self._router = RunRouter([self._factory])

    @classmethod
    def from_uri(cls, uri: str, *, api_key: str | None = None, **kwargs: Any) -> LiveInpainting:
        """Connect to a Tiled server (``tiled.client.from_uri``) and make the callback.

        Parameters
        ----------
        uri : str
            Tiled URI, e.g. ``http://localhost:8000``.
        api_key : str, optional
            Tiled API key.
        **kwargs
            Passed to :class:`LiveInpainting`.
        """
        from tiled.client import from_uri

        return cls(from_uri(uri, api_key=api_key), **kwargs)

    def _factory(self, name: str, start: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        try:
            callback = LiveGapInpainter(
                start,
                inpainter=self.inpainter,
                writer_factory=self._writer_factory,
                field=self.field,
                mask=self.mask,
                stream_name=self.stream_name,
                queue_size=self.queue_size,
                metadata=self.metadata,
            )
        except Exception:
            logger.exception("live inpainting cannot follow run %s", start.get("uid"))
            return [], []
        self.runs[callback.uid] = callback
        while len(self.runs) > self.keep_runs:
            uid, oldest = next(iter(self.runs.items()))
            if not oldest.wait(0):
                break
            del self.runs[uid]
        return [callback], []

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Take a document from the RunEngine; never raises."""
        try:
            self._router(name, doc)
        except Exception:
            logger.exception("live inpainting: %s document not handled", name)

    def health(self) -> dict[str, dict[str, Any]]:
        """Health of each kept run, by run uid (see :meth:`LiveGapInpainter.health`)."""
        return {uid: run.health() for uid, run in list(self.runs.items())}

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every kept run to be processed and uploaded; True if all are done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for run in list(self.runs.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not run.wait(left):
                return False
        return True
