"""``bcdi-online make-training-data``: simulate crystals, store training patches."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .._errors import ConfigurationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``make-training-data`` to ``parser``."""
    parser.add_argument(
        "--volumes", type=int, default=600, help="simulated crystals (default: 600)"
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (default: 0)")
    parser.add_argument(
        "--volume-shape",
        type=int,
        nargs=3,
        default=(64, 96, 96),
        metavar=("D", "H", "W"),
        help="nominal simulation grid, jittered by up to +25%% per axis (default: 64 96 96)",
    )
    parser.add_argument(
        "--patches",
        type=int,
        nargs=2,
        default=(8, 3),
        metavar=("N32", "N64"),
        help="patches of width 32 and 64 cut from each crystal (default: 8 3)",
    )
    parser.add_argument(
        "--effects-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of crystals measured through a sheared detector frame with partial "
        "coherence (default: 0)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="simulate in N worker processes, each crystal from its own seed (data independent "
        "of N, different from the default); 0: in this process, one random stream, as earlier "
        "versions (default: 0)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/train_patches.h5"),
        help="output HDF5 file (default: runs/train_patches.h5)",
    )


def run(args: argparse.Namespace) -> int:
    """Generate the training set and print where it went."""
    import h5py

    from ..training import generate_training_set

    if args.volumes < 1:
        raise ConfigurationError(f"--volumes {args.volumes} must be >= 1")
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = generate_training_set(
        args.out,
        n_volumes=args.volumes,
        volume_shape=tuple(args.volume_shape),
        patches_per_volume=tuple(args.patches),
        seed=args.seed,
        effects_fraction=args.effects_fraction,
        workers=args.workers,
    )
    with h5py.File(path, "r") as f:
        counts = {w: len(f[f"counts_{w}"]) for w in (32, 64)}
    print(
        f"wrote {path}: {counts[32]} patches of width 32, {counts[64]} of width 64 "
        f"from {args.volumes} crystals in {time.perf_counter() - started:.1f} s"
    )
    return 0
