"""The callback to subscribe: a ``RunRouter`` making one :class:`LiveGapInpainter` per run."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from event_model import RunRouter

from bcdi_online import ServiceError
from bcdi_online._redact import redact, register_secret
from bcdi_online.inpainting import MAX_BAD_FRACTION, FillUncertainty, GapInpainter
from bcdi_online.tiled_output import CorrectedRunWriter

from ._health import RunHealth
from ._run import LiveGapInpainter
from ._scan_end import ScanEndSettings

logger = logging.getLogger(__name__)

FRAMES_FROM = ("files", "tiled")
"""Where :class:`LiveInpainting` reads frames announced by stream datums."""


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
    one :class:`LiveGapInpainter` per run; each stores its corrected scan as a Bluesky
    run of its own (:class:`~bcdi_online.tiled_output.CorrectedRunWriter`: frames to a
    result file as they are computed, documents to ``TiledWriter``), found from the raw
    uid with :func:`~bcdi_online.tiled_output.find_corrected`. It never raises into the
    RunEngine and never blocks it.

    Parameters
    ----------
    client : tiled.client container or None
        Catalog where corrected runs go; None: result files only.
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
    fallback_dir : str or Path, optional
        Directory of the result files (the corrected frames, which Tiled must be able
        to read; the whole result when Tiled is down).
    fallback_after : float
        Seconds a finished run waits for Tiled before its result file alone stands
        for it.
    keep_runs : int
        Finished runs kept in :attr:`runs` for :meth:`health`.
    model_metadata : dict, optional
        Output ``model`` metadata (e.g. ``{"name", "sha256"}``) when ``model`` is a
        ready :class:`GapInpainter`, whose checkpoint path is unknown here.
    owner : str, optional
        Name of the service (``bcdi-online serve``, a Tango device) recorded with each
        run (metadata ``service``), so that a restarted service can end the runs an
        earlier instance left ``running`` (:meth:`LiveService.start`).
    max_bad_fraction : float
        Bad voxels (NaN, inf, negative) allowed per frame, as a fraction of its
        measured pixels; they are dead for that frame and filled. Above: ``failed``.
    run_timeout : float, optional
        Seconds without a document before a run whose stop document never came ends
        ``interrupted`` (default 4 h, longer than a beam refill pause; None: never).
    file_timeout : float
        Seconds to wait for announced frames to be written to a detector file (or to
        reach Tiled).
    crystal : bool, optional
        Reconstruct the crystal of every ``complete`` run once its corrected scan is in
        Tiled, and publish it beside it (``<run>/crystal``, see :class:`ScanEndSettings`);
        default: on when the model runs on CUDA. It phases the 64 x 64 x 64 box around
        the peak.
    fill_uncertainty : FillUncertainty or bool, optional
        Write the fill's uncertainty beside the corrected volume (``<run>/fill_sigma``).
        Default (None or True): the calibration shipped for the shipped weights, when
        the model is those weights (for another model it would not be calibrated: not
        written unless a calibration is given); False: never.
    scan_end : ScanEndSettings, optional
        Reconstruction settings (region, binning, starts, recipe, device); its
        ``crystal`` and ``uncertainty`` are set from the two options above.
    frames_from : {"files", "tiled"}
        Where frames announced by ``stream_datum`` documents are read: ``"files"``, the
        detector's files (through bluesky-tiled-plugins' consolidators and Tiled's
        adapters, as Tiled serves them); ``"tiled"``, the raw run's array in Tiled as
        TiledWriter stores it, for a host without the detector's file system.
    raw_catalog : tiled.client container, optional
        Where TiledWriter saves the raw runs (default ``client``), for
        ``frames_from="tiled"``.

    Examples
    --------
    With a RunEngine ``RE``, a detector ``det`` and a rocking axis ``eta`` (not run
    here: it needs a Tiled server; ``bcdi-online demo`` is the whole, runnable
    version)::

        live = LiveInpainting.from_uri("http://localhost:8000", api_key=key)
        RE.subscribe(live)
        RE(scan([det], eta, -0.5, 0.5, 128))
        live.wait(60)
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
        fallback_dir: str | Path | None = None,
        fallback_after: float = 60.0,
        keep_runs: int = 16,
        model_metadata: dict[str, Any] | None = None,
        owner: str | None = None,
        max_bad_fraction: float = MAX_BAD_FRACTION,
        run_timeout: float | None = 4 * 3600.0,
        file_timeout: float = 10.0,
        crystal: bool | None = None,
        fill_uncertainty: FillUncertainty | bool | None = None,
        scan_end: ScanEndSettings | None = None,
        frames_from: str = "files",
        raw_catalog: Any = None,
    ) -> None:
        if frames_from not in FRAMES_FROM:
            raise ValueError(f"frames_from must be one of {FRAMES_FROM}, got {frames_from!r}")
        raw_catalog = client if raw_catalog is None else raw_catalog
        if frames_from == "tiled" and raw_catalog is None:
            raise ValueError('frames_from="tiled" needs a Tiled client or raw_catalog')
        self.frames_from, self.raw_catalog = frames_from, raw_catalog
        if isinstance(model, GapInpainter):
            self.inpainter, info = model, model_info(model.predictor)
        else:
            self.inpainter, info = GapInpainter(model, device=device), model_info(model)
        info = model_metadata or info
        self.client, self.field, self.mask = client, field, mask
        self.stream_name, self.queue_size, self.keep_runs = stream_name, queue_size, keep_runs
        self.owner, self.instance = owner, uuid.uuid4().hex
        self.metadata = {
            "model": info,
            "window_plan": dataclasses.asdict(self.inpainter.plan),
            "batch_size": self.inpainter.batch_size,
            "service": {
                "owner": owner,
                "instance": self.instance,
                "host": socket.gethostname(),
                "pid": os.getpid(),
            },
        }
        self.scan_end = self._scan_end_settings(crystal, fill_uncertainty, scan_end, info)
        self.worker_options = {
            "max_bad_fraction": max_bad_fraction,
            "run_timeout": run_timeout,
            "file_timeout": file_timeout,
            "scan_end": self.scan_end,
        }
        self.metadata["scan_end"] = {
            "crystal": self.scan_end.crystal,
            "fill_uncertainty": self.scan_end.uncertainty is not None,
        }
        self._writer_factory = functools.partial(
            CorrectedRunWriter,
            client,
            results_dir=fallback_dir,
            fallback_after=fallback_after,
        )
        self.runs: OrderedDict[str, LiveGapInpainter] = OrderedDict()
        self._router = RunRouter([self._factory])
        self._routing = threading.Lock()  # documents from several threads (0MQ, replays)

    def _scan_end_settings(
        self,
        crystal: bool | None,
        uncertainty: FillUncertainty | bool | None,
        settings: ScanEndSettings | None,
        model: dict[str, Any],
    ) -> ScanEndSettings:
        settings = settings or ScanEndSettings()
        device = settings.device or str(getattr(self.inpainter.predictor, "device", "cpu"))
        if crystal is None:
            crystal = device.startswith("cuda")
        if uncertainty is None or uncertainty is True:
            shipped = FillUncertainty.load()
            mine = model.get("sha256")
            uncertainty = shipped if mine == shipped.provenance.get("model_sha256") else None
            if uncertainty is None:
                logger.info("no fill uncertainty: no calibration for model %s", model)
        return dataclasses.replace(
            settings, crystal=crystal, uncertainty=uncertainty or None, device=device
        )

    @classmethod
    def from_uri(cls, uri: str, *, api_key: str | None = None, **kwargs: Any) -> LiveInpainting:
        """Connect to a Tiled server (``tiled.client.from_uri``) and make the callback.

        Parameters
        ----------
        uri : str
            Tiled URI, e.g. ``http://localhost:8000``.
        api_key : str, optional
            Tiled API key (default ``$TILED_API_KEY``, as the Tiled client reads it).
        **kwargs
            Passed to :class:`LiveInpainting`.

        Raises
        ------
        ServiceError
            If Tiled cannot be reached or refuses the key (the message never shows it).
        """
        return cls(connect_tiled(uri, api_key), **kwargs)

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
                frames_from=self.frames_from,
                raw_catalog=self.raw_catalog,
                **self.worker_options,
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
        """Take a document from the RunEngine (any thread, one at a time); never raises."""
        try:
            with self._routing:
                self._router(name, doc)
        except Exception:
            logger.exception("live inpainting: %s document not handled", name)

    def health(self) -> dict[str, RunHealth]:
        """Health of each kept run, by run uid (see :meth:`LiveGapInpainter.health`)."""
        return {uid: run.health() for uid, run in list(self.runs.items())}

    def interrupt(self, reason: str) -> dict[str, dict[str, Any]]:
        """End every run in progress now: ``interrupted``, saved to the local file.

        For a service shutting down (SIGTERM after the grace period): no more frames are
        processed; each run's final frames so far end in its result file (a run whose
        processing was done, only its upload pending, keeps its status).

        Returns
        -------
        dict
            By run uid: ``status``, ``saved_to`` (``"fallback"``, ``"tiled"`` or None)
            and ``local_fallback`` / ``error``.
        """
        outcome = {}
        for uid, run in list(self.runs.items()):
            worker = run.worker
            if worker is None or run.wait(0):
                continue
            saving = worker.stats["phase"] == "saving"  # processed: keep its status
            run.interrupt(reason)
            writer = worker.writer
            final = int(worker.stats["frames_final"])  # not the provisional frames
            where = (
                writer.save_now()
                if saving
                else writer.save_now("interrupted", upto=final, error=reason)
            )
            outcome[uid] = {
                "status": writer.status,
                "saved_to": where,
                "local_fallback": writer.local_fallback and str(writer.local_fallback),
                "error": writer.save_error,
            }
        return outcome

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every kept run to be processed and uploaded; True if all are done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for run in list(self.runs.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not run.wait(left):
                return False
        return True


def connect_tiled(uri: str, api_key: str | None = None) -> Any:
    """``tiled.client.from_uri(uri, api_key=...)`` with one-line, key-free errors.

    Raises
    ------
    ServiceError
        If the server cannot be reached, needs a key, or refuses the one given.
    """
    import httpx
    from tiled.client import from_context
    from tiled.client.context import Context

    register_secret(api_key)
    where = redact(uri)
    try:  # tiled.client.from_uri, with the connection closed when it fails
        context, path = Context.from_any_uri(uri, api_key=api_key)
        try:
            return from_context(context, node_path_parts=path)
        except BaseException:
            context.close()
            raise
    except httpx.HTTPStatusError as err:
        code = err.response.status_code
        if code in (401, 403):
            raise ServiceError(
                f"Tiled at {where} refused the API key ({code}): check $TILED_API_KEY or "
                "the --api-key-file"
            ) from None
        raise ServiceError(f"Tiled at {where} answered {code}: {redact(err)}") from None
    except httpx.HTTPError as err:
        raise ServiceError(
            f"cannot reach Tiled at {where}: {type(err).__name__}: {redact(err)}"
        ) from None
    except RuntimeError as err:  # "This server requires API key authentication."
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ServiceError(f"Tiled at {where}: {redact(first)} (set $TILED_API_KEY)") from None
