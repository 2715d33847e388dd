"""Phase retrieval with the model's fill with and without the overshoot guard.

Run::

    python benchmarks/guard_real_space.py [--widths 38] [--layouts cross] \
        [--positions off] [--out DIR]

The real-space cases of the model card (``real_space_cases(per_group=4)``, seed
970000) of the given widths, layouts and positions (default: the 38 px crosses off
the peak, where the unguarded fill over-fills most) are filled by the shipped model
without and with the guard, and each fill is phased on the centred 64^3 block with
"model imposed" and "model start + TV" (:func:`bcdi_online.evaluation.
reconstruct_case`, 4 starts, the default recipe, CPU). Writes
``guard_real_space.md`` and ``.json`` to ``--out`` (default
``benchmarks/results/real_space``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bcdi_online.evaluation import (
    PRACTICES,
    REAL_SPACE_SEED,
    fill_scores,
    real_space_cases,
    reconstruct_case,
)
from bcdi_online.inpainting import DEFAULT_GUARD, GapInpainter

#: Cases of one width in ``real_space_cases(per_group=4)``: 2 layouts x 2 positions x 4.
_PER_WIDTH = 16
_WIDTHS = (6, 12, 38)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[38], choices=_WIDTHS)
    parser.add_argument("--layouts", nargs="+", default=["cross"], choices=["single", "cross"])
    parser.add_argument("--positions", nargs="+", default=["off"], choices=["centre", "off"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/real_space"))
    args = parser.parse_args(argv)
    practices = [p for p in PRACTICES if p.name in ("model imposed", "model start + TV")]
    fillers = {
        "no guard": GapInpainter(device="cpu", guard=None),
        "guard": GapInpainter(device="cpu"),
    }
    started = time.perf_counter()
    rows, fills = [], []
    for width in args.widths:
        seed = REAL_SPACE_SEED + _PER_WIDTH * _WIDTHS.index(width)  # the same crystals
        for case in real_space_cases(per_group=4, widths=(width,), seed=seed):
            layout = "cross" if case.cross else "single"
            if layout not in args.layouts or case.position not in args.positions:
                continue
            for name, filler in fillers.items():
                filled = filler(case.data, case.mask)
                for row in fill_scores(case, {"model": filled}):
                    fills.append({**row, "fill": name})
                for row in reconstruct_case(
                    case, {"model": filled}, practices=practices, crop=(64, 64, 64)
                ):
                    rows.append({**row, "fill": name})
                    print(
                        f"{case.name:24s} {name:8s} {row['practice']:18s} "
                        f"phase error {row['phase_error']:.3f} rad",
                        flush=True,
                    )
    lines = [
        "| case | fill | amplitude error | peak ratio | photon ratio | "
        + " | ".join(f"{p.name}: phase error (rad)" for p in practices)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(practices),
    ]
    for fill in fills:
        errors = [
            next(
                r["phase_error"]
                for r in rows
                if r["case"] == fill["case"]
                and r["fill"] == fill["fill"]
                and r["practice"] == p.name
            )
            for p in practices
        ]
        lines.append(
            f"| {fill['case']} | {fill['fill']} | {fill['amplitude_error']:.3f} "
            f"| {fill['peak_ratio']:.2f} | {fill['photon_ratio']:.2f} | "
            + " | ".join(f"{e:.3f}" for e in errors)
            + " |"
        )
    for p in practices:
        for name in fillers:
            errors = [
                r["phase_error"] for r in rows if r["fill"] == name and r["practice"] == p.name
            ]
            lines.append(
                f"\n{p.name}, {name}: median phase error {np.median(errors):.3f} rad, "
                f"{sum(e < 0.2 for e in errors)}/{len(errors)} below 0.2 rad"
            )
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "guard": repr(DEFAULT_GUARD),
        "widths": args.widths,
        "layouts": args.layouts,
        "positions": args.positions,
        "seconds": time.perf_counter() - started,
        "fills": fills,
        "rows": rows,
    }
    (args.out / "guard_real_space.json").write_text(json.dumps(report, indent=1))
    (args.out / "guard_real_space.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
