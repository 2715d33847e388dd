"""After a run is stored: its fill uncertainty and its crystal, published beside it in Tiled."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bcdi_online import PhasingError
from bcdi_online.inpainting import FillUncertainty
from bcdi_online.phasing import (
    RECOMMENDED_TREATMENT,
    SCAN_END_REGION,
    Recipe,
    ScanReconstruction,
    crystal_figure,
    reconstruct_scan,
    refine_fill,
)
from bcdi_online.tiled_output import CorrectedRunWriter

logger = logging.getLogger(__name__)

FILL_SIGMA = "fill_sigma"
"""Key of the fill uncertainty in the run container."""
CRYSTAL = "crystal"
"""Key of the crystal container in the run container."""
CRYSTAL_SPEC = "BcdiCrystal"
"""Tiled spec of the crystal container."""
CRYSTAL_DIMS = ("z", "y", "x")
"""Dimension names of the crystal arrays (real space, on the phased grid)."""
FIGURE_DIMS = ("row", "column", "rgba")
"""Dimension names of the crystal's picture (central slices, an RGBA image)."""
REFINED_FILL = "refined_fill"
"""Key, in the crystal container, of the phased region of the scan with its gap refilled
from the converged crystal's far field (:func:`bcdi_online.phasing.refine_fill`)."""


@dataclass(frozen=True)
class ScanEndSettings:
    """What the live path adds to a run once its corrected scan is stored in Tiled."""

    crystal: bool = False
    """Reconstruct the crystal of every ``complete`` run (:func:`reconstruct_scan`)."""
    uncertainty: FillUncertainty | None = None
    """Calibration of the fill uncertainty written beside every stored corrected scan
    with all its frames (``complete``, ``aborted``); None: not written."""
    device: str | None = None
    """Torch device of the reconstruction."""
    region_shape: tuple[int, int, int] = SCAN_END_REGION
    """Box phased around the Bragg peak (scan voxels), 64 x 64 x 64 by default on every
    device (see :data:`bcdi_online.phasing.SCAN_END_REGION`)."""
    binning: tuple[int, int, int] = (1, 1, 1)
    """Bin factors in the box. Binning shrinks the field of view and with it the
    oversampling: 64 x 128 x 128 binned 1 x 2 x 2 called 5 wrong crystals converged out
    of 12 with the gap off the peak, and its refill was worse than the model's fill on 6
    of 12; cropped to 64 x 64 x 64, at the same cost, 1 and 1
    (``benchmarks/scan_end_preview.py``)."""
    n_starts: int = 4
    """Random starts of the reconstruction."""
    recipe: Recipe | None = None
    """Phasing recipe (None: the engine's default)."""


def _plain(value: Any) -> Any:
    """Metadata-safe copy: non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return None
    return value


def publish_scan_end(
    writer: CorrectedRunWriter,
    mask: np.ndarray,
    settings: ScanEndSettings,
    status: str,
    last_frame: float | None,
) -> dict[str, Any]:
    """Compute and publish the fill uncertainty and the crystal of a stored run.

    Never raises and never changes the run's status: an error is logged and reported
    (``error`` of the part concerned). A reconstruction that does not converge, or
    fails, is published as metadata only (``converged: false``, ``reason``).

    Parameters
    ----------
    writer : CorrectedRunWriter
        The run's writer, closed, its result in Tiled.
    mask : (ny, nx) bool ndarray
        Gap mask.
    settings : ScanEndSettings
    status : str
        The run's final status.
    last_frame : float, optional
        ``time.monotonic()`` when the scan's last frame arrived.

    Returns
    -------
    dict
        ``fill_sigma`` and ``crystal`` reports (path, seconds, verdict or error), for
        the run's health.
    """
    report: dict[str, Any] = {}
    if writer.saved_to != "tiled" or status not in ("complete", "aborted"):
        return report
    volume = writer.result()
    sigma = None
    if settings.uncertainty is not None:
        try:
            sigma, report[FILL_SIGMA] = _publish_sigma(writer, volume, mask, settings.uncertainty)
        except Exception as err:
            logger.exception("run %s: fill uncertainty not published", writer.raw_uid)
            report[FILL_SIGMA] = {"error": f"{type(err).__name__}: {err}"}
    if settings.crystal and status == "complete":
        try:
            report[CRYSTAL] = _publish_crystal(writer, volume, mask, sigma, settings, last_frame)
        except Exception as err:
            logger.exception("run %s: crystal not published", writer.raw_uid)
            report[CRYSTAL] = {"error": f"{type(err).__name__}: {err}"}
    return report


def _publish_sigma(
    writer: CorrectedRunWriter,
    volume: np.ndarray,
    mask: np.ndarray,
    uncertainty: FillUncertainty,
) -> tuple[np.ndarray, dict[str, Any]]:
    started = time.perf_counter()
    sigma = uncertainty(volume, mask)
    computed = time.perf_counter() - started
    calibration = uncertainty.provenance
    metadata = {
        "units": "log1p(counts)",
        "level": 0.68,
        "meaning": "the expected intensity lies in expm1(log1p(corrected) +- fill_sigma) "
        "with probability 0.68; 0 on measured voxels (and on bad pixels, which the "
        "gap calibration does not cover)",
        "calibration": {
            key: calibration[key]
            for key in ("model_sha256", "command", "coverage_68", "coverage_95")
            if key in calibration
        },
        "compute_s": computed,
    }
    path = writer.publish(
        FILL_SIGMA, {FILL_SIGMA: (sigma, ("frame", "y", "x"))}, metadata=_plain(metadata)
    )
    return sigma, {"path": path, "compute_s": computed, "seconds": time.perf_counter() - started}


def _rendered(result: ScanReconstruction, raw_uid: str) -> np.ndarray:
    """Return :func:`crystal_figure` of a reconstruction as an RGBA image, ``(rows, cols, 4)``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = crystal_figure(result, title=f"run {raw_uid[:8]}")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba(), dtype=np.uint8).copy()


def _publish_crystal(
    writer: CorrectedRunWriter,
    volume: np.ndarray,
    mask: np.ndarray,
    sigma: np.ndarray | None,
    settings: ScanEndSettings,
    last_frame: float | None,
) -> dict[str, Any]:
    arrays: dict[str, tuple[np.ndarray, tuple[str, ...]]] | None = None
    started = time.perf_counter()
    try:
        result = reconstruct_scan(
            volume,
            mask,
            fill_sigma=sigma,
            treatment=RECOMMENDED_TREATMENT,
            region_shape=settings.region_shape,
            binning=settings.binning,
            recipe=settings.recipe,
            n_starts=settings.n_starts,
            device=settings.device,
        )
    except Exception as err:  # reported as a reconstruction that did not converge
        logger.exception("run %s: scan-end reconstruction failed", writer.raw_uid)
        metadata: dict[str, Any] = {
            "converged": False,
            "reason": f"the reconstruction failed: {type(err).__name__}: {err}",
            "treatment": RECOMMENDED_TREATMENT,
            "binning": list(settings.binning),
            "seconds": time.perf_counter() - started,
        }
    else:
        metadata = result.figures_of_merit()
        if result.converged:
            arrays = {
                "modulus": (result.modulus, CRYSTAL_DIMS),
                "phase": (result.phase, CRYSTAL_DIMS),
                "support": (result.support, CRYSTAL_DIMS),
                "figure": (_rendered(result, writer.raw_uid), FIGURE_DIMS),
            }
            # the phased region, its gap refilled from the crystal's own far field
            try:
                arrays[REFINED_FILL] = (refine_fill(volume, mask, result), ("frame", "y", "x"))
                metadata[REFINED_FILL] = {"published": True, "reason": ""}
            except PhasingError as err:  # the peak in the gap: the model's fill stands
                metadata[REFINED_FILL] = {"published": False, "reason": str(err)}
    metadata.update(
        n_starts=settings.n_starts,
        device=settings.device or "cpu",
        latency_s=None if last_frame is None else time.monotonic() - last_frame,
    )
    metadata = _plain(metadata)
    path = writer.publish(CRYSTAL, arrays, metadata=metadata, spec=CRYSTAL_SPEC)
    logger.info(
        "run %s: crystal at %s, %s",
        writer.raw_uid,
        path,
        "converged" if metadata["converged"] else f"NOT converged: {metadata['reason']}",
    )
    return {"path": path, **metadata}
