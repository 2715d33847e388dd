"""``bcdi-online evaluate``: the model and the classical baselines on the validation set.

The held-out simulated scans of :func:`bcdi_online.evaluation.validation_set` are filled
by the model, linear interpolation, biharmonic and inverse-distance weighting, scored
with :func:`~bcdi_online.evaluation.score_methods` and tabulated with
:func:`~bcdi_online.evaluation.summarise` (as ``benchmarks/validate_model.py`` does).
Writes ``validation.json`` (provenance and one row per volume and method) and
``validation.md`` (the table) to ``--out``. With ``--real-space`` it phase-retrieves
instead (:mod:`._evaluate_real_space`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _evaluate_real_space
from ._options import add_model_options, check_device, guard, model_path, positive_int

if TYPE_CHECKING:
    import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``evaluate`` to ``parser``."""
    add_model_options(parser)
    parser.add_argument(
        "--per-case",
        type=positive_int,
        default=1,
        help="volumes per (width, single/cross, low/high counts) (default: 1, 12 volumes)",
    )
    parser.add_argument(
        "--widths",
        type=positive_int,
        nargs="+",
        default=[6, 12, 38],
        metavar="PX",
        help="gap widths in pixels (default: 6 12 38)",
    )
    parser.add_argument(
        "--measurement-effects",
        action="store_true",
        help="measure the same crystals through a sheared detector frame with partial "
        "coherence (a harder, out-of-training-distribution set for models trained without)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("evaluation"),
        help="output directory for validation.json and validation.md (default: evaluation)",
    )
    _evaluate_real_space.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Score every method on the validation set, write and print the table."""
    if args.real_space:
        return _evaluate_real_space.run(args)
    from rich.console import Console
    from rich.progress import Progress

    from .. import __version__
    from ..evaluation import (
        biharmonic,
        inverse_distance_weighting,
        linear_interpolation,
        score_methods,
        summarise,
        validation_set,
    )
    from ..inpainting import GapInpainter
    from ..model import model_sha256

    started = time.perf_counter()
    weights = model_path(args.model)
    check_device(args.device)
    inpainter = GapInpainter(
        weights,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        guard=guard(args),
    )
    methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "model": inpainter,
        "linear": linear_interpolation,
        "biharmonic": biharmonic,
        "idw": inverse_distance_weighting,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("simulating the validation scans", total=None)
        cases = validation_set(
            per_case=args.per_case,
            widths=args.widths,
            measurement_effects=args.measurement_effects,
        )
        progress.update(task, description="scoring", total=len(cases))
        for case in cases:
            rows += score_methods(methods, [case])
            progress.advance(task)
    table = summarise(rows)
    report = {
        "model_path": str(weights.resolve()),
        "model_sha256": model_sha256(weights),
        "package_version": __version__,
        "device": str(getattr(inpainter.predictor, "device", args.device)),
        "precision": args.precision,
        "guard": repr(inpainter.guard),
        "per_case": args.per_case,
        "widths": list(args.widths),
        "measurement_effects": args.measurement_effects,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }
    (out / "validation.json").write_text(json.dumps(report, indent=1))
    (out / "validation.md").write_text(table + "\n")
    print(table)
    print(f"\nwrote {out / 'validation.json'} and {out / 'validation.md'}")
    print(f"time  {report['seconds']:.1f} s for {len(cases)} volumes x {len(methods)} methods")
    return 0
