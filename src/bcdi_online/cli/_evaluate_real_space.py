"""``bcdi-online evaluate --real-space``: what each gap practice does to the reconstructed crystal.

Every case of :func:`bcdi_online.evaluation.real_space_cases` is filled by the model
and by biharmonic inpainting, then phased once per practice
(:data:`bcdi_online.evaluation.PRACTICES`) and compared with the true crystal. Rows are
appended to ``real_space.jsonl`` as they are made, so an interrupted run resumes
(``--resume``) where it stopped; ``real_space.md`` holds the tables and ``figures/`` the
central slices of the first case of each group.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from ._options import check_device, guard, model_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of the real-space mode to ``evaluate``'s parser."""
    group = parser.add_argument_group("real space (with --real-space)")
    group.add_argument(
        "--real-space",
        action="store_true",
        help="phase-retrieve every case with every practice and score the crystals instead",
    )
    group.add_argument(
        "--per-group",
        type=int,
        default=2,
        help="crystals per (width, single/cross, centre/off) group (default: 2)",
    )
    group.add_argument(
        "--crop",
        type=int,
        nargs=3,
        default=[64, 64, 64],
        metavar=("NZ", "NY", "NX"),
        help="centred block of each 64 x 128 x 128 scan that is phased (default: 64 64 64)",
    )
    group.add_argument(
        "--starts", type=int, default=4, help="random starts per reconstruction (default: 4)"
    )
    group.add_argument(
        "--recipe",
        default=None,
        help="phasing recipe, e.g. 'HIO**300 RAAR**200 ER**150' (default: Recipe())",
    )
    group.add_argument(
        "--practices",
        nargs="+",
        default=None,
        metavar="NAME",
        help="subset of the practices (default: all)",
    )
    group.add_argument(
        "--figures", type=int, default=12, help="cases with a figure (default: 12, one per group)"
    )
    group.add_argument(
        "--resume", action="store_true", help="keep the rows already in --out and do the rest"
    )


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (empty if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    """Run the real-space evaluation and write its report."""
    from rich.console import Console

    from .. import __version__
    from ..evaluation import (
        PRACTICES,
        biharmonic,
        central_slices_figure,
        fill_scores,
        real_space_cases,
        reconstruct_case,
        reference_object,
        summarise_real_space,
    )
    from ..inpainting import FillUncertainty, GapInpainter
    from ..model import model_sha256
    from ..phasing import Recipe

    started = time.perf_counter()
    console = Console(stderr=True)
    check_device(args.device)
    weights = model_path(args.model)
    inpainter = GapInpainter(
        weights, device=args.device, batch_size=args.batch_size, guard=guard(args)
    )
    uncertainty = FillUncertainty.load()
    practices = [p for p in PRACTICES if args.practices is None or p.name in args.practices]
    if args.practices is not None and len(practices) != len(set(args.practices)):
        known = ", ".join(p.name for p in PRACTICES)
        raise ConfigurationError(f"--practices {args.practices}: known practices are {known}")
    recipe = Recipe.parse(args.recipe) if args.recipe else Recipe()
    crop = tuple(args.crop)
    out = Path(args.out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    rows_file, fills_file = out / "real_space.jsonl", out / "real_space_fills.jsonl"
    if not args.resume:
        rows_file.unlink(missing_ok=True)
        fills_file.unlink(missing_ok=True)
    done = {(r["case"], r["practice"]) for r in _read_rows(rows_file)}
    scored = {r["case"] for r in _read_rows(fills_file)}
    cases = real_space_cases(per_group=args.per_group, widths=args.widths)
    figured: set[str] = set()
    for number, case in enumerate(cases, 1):
        todo = [p for p in practices if (case.name, p.name) not in done]
        wants_figure = case.group not in figured and len(figured) < args.figures
        if wants_figure:
            figured.add(case.group)
        if not todo and case.name in scored:
            continue
        console.print(f"[{number}/{len(cases)}] {case.name}: {len(todo)} reconstructions")
        fills = {
            "model": inpainter(case.data, case.mask),
            "biharmonic": biharmonic(case.data, case.mask),
        }
        if case.name not in scored:
            with fills_file.open("a") as stream:
                for row in fill_scores(case, fills):
                    stream.write(json.dumps({**row, "group": case.group}) + "\n")
        sigma = uncertainty(fills["model"], case.mask)
        rows = reconstruct_case(
            case,
            fills,
            fill_sigma=sigma,
            practices=todo,
            crop=crop,
            recipe=recipe,
            n_starts=args.starts,
            device=args.device,
            keep_objects=wants_figure,
        )
        with rows_file.open("a") as stream:
            for row in rows:
                aligned = row.pop("aligned", None)
                stream.write(json.dumps(row) + "\n")
                if aligned is not None:
                    row["aligned"] = aligned
        if wants_figure and len(todo) == len(practices):
            figure = central_slices_figure(
                reference_object(case.obj, crop),
                {r["practice"]: r["aligned"] for r in rows},
                title=f"{case.name} ({case.params.shape}, {case.params.photon_budget:.0e} ph)",
            )
            figure.savefig(out / "figures" / f"{case.name}.png", dpi=90)
    rows, fill_rows = _read_rows(rows_file), _read_rows(fills_file)
    table = summarise_real_space(rows, fill_rows)
    report = {
        "model_sha256": model_sha256(weights),
        "package_version": __version__,
        "guard": repr(inpainter.guard),
        "per_group": args.per_group,
        "widths": list(args.widths),
        "crop": list(crop),
        "starts": args.starts,
        "recipe": [(s.algorithm, s.iterations, s.beta) for s in recipe.stages],
        "seconds_this_run": time.perf_counter() - started,
        "rows": rows,
        "fills": fill_rows,
    }
    (out / "real_space.json").write_text(json.dumps(report, indent=1))
    (out / "real_space.md").write_text(table)
    print(table)
    print(f"wrote {out / 'real_space.md'}, {out / 'real_space.json'} and {out / 'figures'}")
    return 0
