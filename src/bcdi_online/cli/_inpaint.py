"""``bcdi-online inpaint``: fill the detector gaps of a scan file, write a copy with the result.

The output is a copy of the input file with one more NXdata group,
``/entry/data_inpainted`` (float32 ``data``, measured voxels as in the input, gap voxels
predicted; attributes: model path and SHA-256, package version, timings). The input file
is only read. When it holds the simulator's truth, the strict PCC of the model and of
linear interpolation against it is printed.
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


def _write(source: Path, out: Path, filled: np.ndarray, attrs: dict[str, Any]) -> None:
    """Copy ``source`` to ``out`` and add ``/entry/data_inpainted``; all or nothing."""
    import h5py
    import hdf5plugin

    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    try:
        shutil.copyfile(source, part)
        with h5py.File(part, "r+") as f:
            entry = f["entry"]
            if GROUP in entry:  # the input is itself an inpainted file: replace the result
                del entry[GROUP]
            group = entry.create_group(GROUP)
            group.attrs["NX_class"] = "NXdata"
            group.attrs["signal"] = "data"
            _, ny, nx = filled.shape
            dataset = group.create_dataset(
                "data",
                data=filled.astype(np.float32, copy=False),
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
    _write(source, out, filled, attrs)
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
    if scores:
        print(
            f"strict PCC   model {scores['strict_pcc_model']:.4f}, linear interpolation "
            f"{scores['strict_pcc_linear']:.4f} (oracle {scores['oracle_pcc']:.4f}) vs truth"
        )
    print(f"wrote        {out}:/entry/{GROUP}" + (f" and {png}" if png is not None else ""))
    total_s = time.perf_counter() - started
    print(f"time         {inpaint_s:.2f} s inpainting, {total_s:.2f} s total")
    return 0
