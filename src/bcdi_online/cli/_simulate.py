"""``bcdi-online simulate``: a simulated gap-affected rocking scan, its file and picture."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _roi_size(text: str) -> int | tuple[int, int]:
    """Parse ``256`` or ``256x512`` (height x width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"ROI size {text!r} is not N or HxW") from err
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise argparse.ArgumentTypeError(f"ROI size {text!r} is not N or HxW")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``simulate`` to ``parser``."""
    from ..simulation import SHAPES

    parser.add_argument(
        "--detector", default="maxipix_2x2", help="detector name (default: maxipix_2x2)"
    )
    parser.add_argument("--frames", type=int, default=128, help="rocking steps (default: 128)")
    parser.add_argument(
        "--roi", type=_roi_size, default=256, help="ROI size N or HxW in pixels (default: 256)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--crystal", choices=SHAPES, default=None, help="crystal habit (default: random)"
    )
    parser.add_argument(
        "--photons", type=float, default=None, help="photon budget of the volume (default: random)"
    )
    parser.add_argument(
        "--maxipix-gap",
        type=int,
        choices=(6, 4),
        default=6,
        help="MAXIPIX chip-gap width in pixels (default: 6)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("scan.h5"), help="output HDF5 file (default: scan.h5)"
    )
    parser.add_argument(
        "--no-png", action="store_true", help="do not write the central-slice picture"
    )


def run(args: argparse.Namespace) -> int:
    """Simulate, write ``args.out`` and its PNG beside it, print a summary."""
    import numpy as np

    from ..simulation import CrystalParams, plot_central_slices, simulate_scan, write_scan

    started = time.perf_counter()
    overrides = {
        key: value
        for key, value in (("shape", args.crystal), ("photon_budget", args.photons))
        if value is not None
    }
    params = (
        CrystalParams.random(np.random.default_rng(args.seed), **overrides) if overrides else None
    )
    scan = simulate_scan(
        args.detector,
        n_frames=args.frames,
        roi_size=args.roi,
        params=params,
        seed=args.seed,
        maxipix_gap=args.maxipix_gap,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    h5 = write_scan(args.out, scan)
    png = None
    if not args.no_png:
        png = plot_central_slices(
            {"measured (gaps)": scan.data, "truth": scan.truth},
            Path(args.out).with_suffix(".png"),
            title=f"{scan.detector}, {scan.params.shape} crystal, seed {args.seed}",
        )
    elapsed = time.perf_counter() - started
    y0, y1, x0, x1 = scan.roi
    print(f"detector     {scan.detector}")
    print(f"ROI          y {y0}:{y1}, x {x0}:{x1}")
    print(f"shape        {scan.data.shape} (frames, y, x)")
    print(f"crystal      {scan.params.shape}, oversampling {scan.params.oversampling:.2f}")
    print(
        f"photons      {float(scan.truth.sum()):.3g} in the ROI, "
        f"{float(scan.data.sum()):.3g} measured, max {int(scan.truth.max())} per pixel"
    )
    print(f"gap fraction {float(scan.mask.mean()):.2%} of the ROI pixels")
    print(f"wrote        {h5}" + (f" and {png}" if png is not None else ""))
    print(f"time         {elapsed:.2f} s")
    return 0
