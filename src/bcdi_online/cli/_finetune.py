"""``bcdi-online finetune``: adapt the model to one measured scan, save the adapted checkpoint.

Self-supervised (:func:`bcdi_online.training.finetune`): stripes like detector gaps are
hidden in gap-free patches of the scan and the model learns to restore the measured
counts there. The error on held-out patches is printed before and after, beside the
linear pre-fill's. That error does not predict the real gap's: on simulated scans with
known truth, fine-tuning lowered the real gap's strict PCC on 6 of 8 volumes
(``benchmarks/finetune_effect.py``); check an adapted model before using it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ._options import add_model_options, check_device, model_path, non_negative_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``finetune`` to ``parser``."""
    parser.add_argument(
        "scan",
        type=Path,
        metavar="SCAN.h5",
        help="scan file with /entry/instrument/detector/{data,pixel_mask}",
    )
    add_model_options(parser, batch_size=False)
    parser.add_argument(
        "--steps", type=non_negative_int, default=200, help="optimiser steps (default: 200)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of patch draws (default: 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("finetuned.pt"),
        help="adapted checkpoint (default: finetuned.pt)",
    )


def run(args: argparse.Namespace) -> int:
    """Fine-tune, save ``args.out``, print the errors before and after."""
    from .._errors import InputDataError
    from ..model import load_model, model_sha256, save_model
    from ..simulation import read_scan
    from ..training import finetune

    started = time.perf_counter()
    weights = model_path(args.model)
    out = Path(args.out)
    if out.exists() and weights.exists() and out.samefile(weights):
        raise InputDataError(f"--out {str(out)!r} is the starting checkpoint; choose another")
    scan = read_scan(args.scan, with_truth=False)
    check_device(args.device)
    model = load_model(weights, args.device)
    report = finetune(model, scan.data, scan.mask, steps=args.steps, seed=args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(
        model,
        out,
        finetuned_from=str(weights.resolve()),
        finetuned_from_sha256=model_sha256(weights),
        finetune_scan=str(Path(args.scan).resolve()),
        finetune_steps=report.steps,
        finetune_seed=args.seed,
        finetune_error_before=report.before,
        finetune_error_after=report.after,
        finetune_error_linear=report.linear,
    )
    print(f"scan         {args.scan} {tuple(scan.data.shape)}")
    print(f"model        {weights} on {next(model.parameters()).device}")
    print(
        f"patches      {report.n_train} for training, {report.n_val} held out; "
        f"{report.steps} steps"
    )
    print("gap error    mean |error| on hidden stripes of held-out patches (normalised log)")
    print(f"  before     {report.before:.4f}")
    print(f"  after      {report.after:.4f}")
    print(f"  linear     {report.linear:.4f} (linear pre-fill, for comparison)")
    print("caution      this is not the real gap's error; on simulated scans fine-tuning")
    print("             lowered it on 6 of 8 (benchmarks/finetune_effect.py): check first")
    print(f"wrote        {out}")
    print(f"time         {time.perf_counter() - started:.1f} s")
    return 0
