"""Score the model and the baselines on the held-out validation set; write the model card table.

Run::

    python benchmarks/validate_model.py [--weights PATH] [--per-case 2] [--out benchmarks/results]

Writes ``validation.json`` (one row per volume and method) and ``validation.md`` (the
summary table that goes in the model card) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from bcdi_online.evaluation import (
    biharmonic,
    inverse_distance_weighting,
    linear_interpolation,
    score_methods,
    validation_set,
)
from bcdi_online.inpainting import GapInpainter


def summarise(rows: list[dict]) -> str:
    """Markdown table: per (width, cross) group and method, mean metrics and wins vs biharmonic."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["width"], row["cross"], row["method"])].append(row)
    lines = [
        "| gap | method | strict PCC | oracle | strict / oracle | paper PCC | photon error "
        "| s / volume |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (width, cross, method), group in sorted(groups.items()):

        def mean(key: str, group: list[dict] = group) -> float:
            return float(np.mean([r[key] for r in group]))

        gap = f"{width} px {'cross' if cross == 'True' else 'single'}"
        lines.append(
            f"| {gap} | {method} | {mean('strict_pcc'):.4f} | {mean('oracle_pcc'):.4f} | "
            f"{mean('pcc_ratio'):.4f} | {mean('paper_pcc'):.4f} | {mean('photon_error'):.3f} | "
            f"{mean('seconds'):.2f} |"
        )
    by_case: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows:
        by_case[row["case"]][row["method"]] = row["strict_pcc"]
    wins = sum(scores["model"] > scores["biharmonic"] for scores in by_case.values())
    lines.append("")
    lines.append(f"Model strict PCC > biharmonic on {wins} of {len(by_case)} volumes.")
    return "\n".join(lines)


def main() -> None:
    """Run the validation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="checkpoint (default: shipped)")
    parser.add_argument("--per-case", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    inpainter = GapInpainter(model=args.weights, device="cpu")
    methods = {
        "model": inpainter,
        "linear": linear_interpolation,
        "biharmonic": biharmonic,
        "idw": inverse_distance_weighting,
    }
    rows = score_methods(methods, validation_set(per_case=args.per_case))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "validation.json").write_text(json.dumps(rows, indent=1))
    table = summarise(rows)
    (out / "validation.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
