"""``bcdi-online inpaint``: fill the detector gaps of a scan file, write a copy with the result.

The output is a copy of the input file with one more NXdata group,
``/entry/data_inpainted`` (float32 ``data``, measured voxels as in the input, gap voxels
predicted; attributes: model path and SHA-256, package version, timings). With
``--refill``, the crystal is reconstructed from it as at a live scan's end and, where it
converged with the Bragg peak measured, ``/entry/data_refilled`` holds the same scan with
the phased box's gap refilled from the crystal's far field
(:func:`bcdi_online.phasing.refine_fill`): the volume to give a phasing program that
takes every voxel as measured. The input file is only read. When it holds the
simulator's truth, the strict PCC of the model and of linear interpolation against it is
printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._options import add_model_options, check_device, guard, model_path

logger = logging.getLogger(__name__)

#: Name of the NXdata group added under ``/entry``.
GROUP = "data_inpainted"
#: ... and of the one ``--refill`` adds where the crystal refills the gap.
REFILLED = "data_refilled"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``inpaint`` to ``parser``."""
    parser.add_argument(
        "scan",
        type=Path,
        metavar="SCAN.h5",
        help="scan file with /entry/instrument/detector/{data,pixel_mask} (e.g. from simulate)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output file, a copy of SCAN.h5 plus /entry/data_inpainted "
        "(default: SCAN_inpainted.h5 beside the input)",
    )
    add_model_options(parser)
    parser.add_argument(
        "--png",
        action="store_true",
        help="also write OUT.png: central slices of measured, inpainted (and truth)",
    )
    parser.add_argument(
        "--refill",
        action="store_true",
        help="also reconstruct the crystal (the live scan end's practice and box) and, where "
        f"it converged with the Bragg peak measured, write /entry/{REFILLED}: the gap of "
        "the phased box refilled from the crystal's far field (for a phasing program that "
        "takes every voxel as measured)",
    )


def _inpaint(inpainter: Any, data: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Inpaint frame slab by frame slab with a progress bar; return the volume and windows."""
    from rich.console import Console
    from rich.progress import Progress

    if not mask.any():
        logger.warning("the scan has no dead pixel: nothing to inpaint")
        return np.asarray(data, dtype=np.float32).copy(), 0
    stream = inpainter.stream(mask)
    step = inpainter.plan.depth
    n_frames = len(data)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("inpainting", total=n_frames)
        for start in range(0, n_frames, step):
            stream.add_frames(data[start : start + step])
            progress.update(task, completed=min(start + step, n_frames))
        filled = stream.finish()
    return filled, int(stream.windows_done)


def _scores(
    data: np.ndarray,
    mask: np.ndarray,
    filled: np.ndarray,
    truth: np.ndarray,
    expected: np.ndarray,
) -> dict[str, float]:
    """Strict PCC of the model and of linear interpolation, and the oracle, against truth."""
    from .._errors import InputDataError
    from ..evaluation import linear_interpolation, oracle_pcc, strict_pcc

    if truth.shape != data.shape or expected.shape != data.shape:
        raise InputDataError(
            f"truth {truth.shape} / expected {expected.shape} do not match data {data.shape}"
        )
    return {
        "strict_pcc_model": strict_pcc(filled, truth, mask, expected),
        "strict_pcc_linear": strict_pcc(linear_interpolation(data, mask), truth, mask, expected),
        "oracle_pcc": oracle_pcc(truth, mask, expected),
    }


def _refill(
    filled: np.ndarray, mask: np.ndarray, device: str | None
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Reconstruct the crystal of a filled scan; return the scan refilled from it (or None).

    The second value describes the reconstruction (region, verdict, seconds) and, when
    nothing was refilled, why.
    """
    from .._errors import BcdiOnlineError
    from ..phasing import reconstruct_scan, refine_fill

    started = time.perf_counter()
    try:
        crystal = reconstruct_scan(filled, mask, device=device)
    except BcdiOnlineError as err:  # e.g. too few frames to phase: the inpainting stands
        return None, {
            "refill_reason": f"the reconstruction failed: {err}",
            "refill_seconds": time.perf_counter() - started,
        }
    info: dict[str, Any] = {
        "refill_region": list(crystal.region),
        "refill_converged": crystal.converged,
        "refill_peak_in_gap": crystal.peak_in_gap,
        "refill_seconds": crystal.seconds,
    }
    try:
        region = refine_fill(filled, mask, crystal)
    except BcdiOnlineError as err:  # not converged, or the peak may lie in the gap
        return None, info | {"refill_reason": str(err)}
    z0, z1, y0, y1, x0, x1 = crystal.region
    refilled = filled.copy()
    refilled[z0:z1, y0:y1, x0:x1] = region
    return refilled, info | {"refill_reason": ""}


def _write(source: Path, out: Path, groups: dict[str, tuple[np.ndarray, dict[str, Any]]]) -> None:
    """Copy ``source`` to ``out`` and add the NXdata ``groups`` under ``/entry``.

    ``groups`` maps a name to its ``data`` and attributes; all or nothing.
    """
    import h5py
    import hdf5plugin

    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    try:
        shutil.copyfile(source, part)
        with h5py.File(part, "r+") as f:
            entry = f["entry"]
            for name in (GROUP, REFILLED):  # the input is itself an output: replace results
                if name in entry:
                    del entry[name]
            for name, (volume, attrs) in groups.items():
                group = entry.create_group(name)
                group.attrs["NX_class"] = "NXdata"
                group.attrs["signal"] = "data"
                _, ny, nx = volume.shape
                dataset = group.create_dataset(
                    "data",
                    data=volume.astype(np.float32, copy=False),
                    chunks=(1, ny, nx),
                    **hdf5plugin.Bitshuffle(cname="lz4"),
                )
                dataset.attrs["units"] = "counts"
                for key, value in attrs.items():
                    group.attrs[key] = value
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    """Inpaint ``args.scan``, write ``args.out`` (and its PNG), print a summary."""
    from .. import __version__
    from .._errors import InputDataError
    from ..inpainting import GapInpainter
    from ..model import model_sha256
    from ..simulation import plot_central_slices, read_scan, read_truth

    started = time.perf_counter()
    source = Path(args.scan)
    out = args.out or source.with_name(f"{source.stem}_inpainted.h5")
    if source.exists() and out.exists() and out.samefile(source):
        raise InputDataError(f"--out {str(out)!r} is the input file, which is never modified")
    scan = read_scan(source, with_truth=False)
    truth = read_truth(source)
    weights = model_path(args.model)
    check_device(args.device)
    inpainter = GapInpainter(
        weights,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        guard=guard(args),
    )
    device = getattr(inpainter.predictor, "device", args.device)
    t0 = time.perf_counter()
    filled, windows = _inpaint(inpainter, scan.data, scan.mask)
    inpaint_s = time.perf_counter() - t0
    attrs: dict[str, Any] = {
        "source_file": str(source.resolve()),
        "model_path": str(weights.resolve()),
        "model_sha256": model_sha256(weights),
        "package_version": __version__,
        "device": str(device),
        "batch_size": inpainter.batch.value,  # after any out-of-memory halving
        "precision": args.precision,
        "guard": repr(inpainter.guard),
        "windows": windows,
        "seconds": inpaint_s,
    }
    scores: dict[str, float] = {}
    if truth is not None:
        try:
            scores = _scores(scan.data, scan.mask, filled, *truth)
        except InputDataError as err:  # e.g. the gap misses the peak: nothing to score
            print(f"strict PCC   not scored: {err}")
        attrs.update(scores)
    groups = {GROUP: (filled, attrs)}
    refill: dict[str, Any] = {}
    if args.refill:
        refilled, refill = _refill(filled, scan.mask, None if device is None else str(device))
        attrs.update(refill)
        if refilled is not None:
            groups[REFILLED] = (refilled, {"source_group": GROUP, **refill})
            if truth is not None:  # the gap's amplitudes, both ways, against the truth
                from ..evaluation import amplitude_error

                scores["amplitude_error_inpainted"] = amplitude_error(filled, truth[1], scan.mask)
                scores["amplitude_error_refilled"] = amplitude_error(refilled, truth[1], scan.mask)
                attrs.update(scores)
    _write(source, out, groups)
    png = None
    if args.png:
        volumes = {"measured (gaps)": scan.data, "inpainted": filled}
        if truth is not None:
            volumes["truth"] = truth[0]
        # slices through the peak, which the measured data may miss when a gap crosses it
        peak = volumes["truth" if truth is not None else "inpainted"]
        z, y, x = (int(i) for i in np.unravel_index(np.argmax(peak), peak.shape))
        png = plot_central_slices(
            volumes,
            out.with_suffix(".png"),
            center=(z, y, x),
            title=f"{source.name}: central slices, log scale",
        )
    n_frames, ny, nx = scan.data.shape
    print(f"input        {source} ({n_frames}, {ny}, {nx}), {scan.mask.mean():.2%} dead pixels")
    print(f"model        {weights} (sha256 {attrs['model_sha256'][:12]}) on {device}")
    print(f"windows      {windows} (batch size {inpainter.batch.value}, {args.precision})")
    if "strict_pcc_model" in scores:
        print(
            f"strict PCC   model {scores['strict_pcc_model']:.4f}, linear interpolation "
            f"{scores['strict_pcc_linear']:.4f} (oracle {scores['oracle_pcc']:.4f}) vs truth"
        )
    if refill:
        if REFILLED in groups:
            z0, z1, y0, y1, x0, x1 = refill["refill_region"]
            verdict = f"box [{z0}:{z1}, {y0}:{y1}, {x0}:{x1}] refilled from the crystal"
        else:
            verdict = f"none: {refill['refill_reason']}"
        print(f"refill       {verdict} ({refill['refill_seconds']:.1f} s)")
        if "amplitude_error_refilled" in scores:
            print(
                f"amplitude    error on the gap {scores['amplitude_error_inpainted']:.3f} "
                f"inpainted, {scores['amplitude_error_refilled']:.3f} refilled vs truth"
            )
    written = ", ".join(f"{out}:/entry/{name}" for name in groups)
    print(f"wrote        {written}" + (f" and {png}" if png is not None else ""))
    total_s = time.perf_counter() - started
    print(f"time         {inpaint_s:.2f} s inpainting, {total_s:.2f} s total")
    return 0
