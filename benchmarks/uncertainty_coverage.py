"""How often the shipped fill uncertainty's band holds the truth, with the overshoot guard.

Run::

    python benchmarks/uncertainty_coverage.py [--per-group 4] [--per-case 2] [--out DIR]

The shipped calibration (``gap_unet_uncertainty.json``) was fitted on the validation
family of scans, whose gaps run within 12 px of the peak's centre. This measures its
68 % and 95 % bands on the fills the product writes today (``GapInpainter`` with the
default :class:`~bcdi_online.inpainting.OvershootGuard`): on the real-space cases
(:func:`bcdi_online.evaluation.real_space_cases`: 6, 12 and 38 px gaps, single and
crossed, through the peak's centre and off it) and on the held-out validation set, per
group, and without the guard beside it. Writes ``uncertainty_coverage.md`` and
``.json`` to ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bcdi_online.evaluation import real_space_cases, validation_set
from bcdi_online.inpainting import FillUncertainty, GapInpainter

LEVELS = (0.68, 0.95)
#: Noise-free counts from which a gap voxel counts as bright (the peak and its first
#: fringes: the amplitudes phase retrieval fits).
BRIGHT = 100.0


def _inside(
    uncertainty: FillUncertainty, filled: np.ndarray, case: Any, level: float
) -> tuple[int, int, int, int]:
    """(inside, total) over all gap voxels, then over the bright ones."""
    sigma = uncertainty(filled, case.mask, level=level)
    gap = np.broadcast_to(case.mask, filled.shape)
    err = np.abs(np.log1p(case.expected) - np.log1p(np.clip(filled, 0, None)))
    inside = gap & (err <= sigma)
    bright = gap & (case.expected >= BRIGHT)
    return (int(inside.sum()), int(gap.sum()), int((inside & bright).sum()), int(bright.sum()))


def _cases(per_group: int, per_case: int) -> list[tuple[str, str, Any]]:
    """(set, group, case) of the real-space cases and the validation set."""
    out = [("real-space", case.group, case) for case in real_space_cases(per_group=per_group)]
    for case in validation_set(per_case=per_case):
        out.append(("validation", f"{case.width} px {'cross' if case.cross else 'single'}", case))
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["set"], row["group"])].append(row)
        groups[(row["set"], "all")].append(row)
    lines = [
        "| set | gap | n | 68 % band: guard (no guard) | 95 % band: guard (no guard) "
        f"| bright voxels (>= {BRIGHT:g} counts) | 68 %, bright | 95 %, bright |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def pooled(group: list[dict[str, Any]], key: str, kind: str = "") -> str:
        total = sum(r[f"gap_voxels{kind}"] for r in group)
        if total == 0:
            return "-"
        return f"{sum(r[f'inside_{key}{kind}'] for r in group) / total:.3f}"

    for (name, group), members in sorted(groups.items(), key=lambda item: item[0]):
        cells = [
            f"{pooled(members, f'{lv}_guard')} ({pooled(members, f'{lv}_plain')})"
            for lv in ("68", "95")
        ]
        bright = [
            f"{pooled(members, f'{lv}_guard', '_bright')} "
            f"({pooled(members, f'{lv}_plain', '_bright')})"
            for lv in ("68", "95")
        ]
        n_bright = sum(r["gap_voxels_bright"] for r in members)
        lines.append(
            f"| {name} | {group} | {len(members)} | {cells[0]} | {cells[1]} | {n_bright} "
            f"| {bright[0]} | {bright[1]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-group", type=int, default=4)
    parser.add_argument("--per-case", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    started = time.perf_counter()
    uncertainty = FillUncertainty.load()
    fillers = {
        "guard": GapInpainter(device="cpu"),
        "plain": GapInpainter(device="cpu", guard=None),
    }
    rows = []
    for set_name, group, case in _cases(args.per_group, args.per_case):
        row: dict[str, Any] = {"set": set_name, "group": group, "case": case.name}
        for variant, inpainter in fillers.items():
            filled = inpainter(case.data, case.mask)
            for level in LEVELS:
                inside, total, inside_bright, bright = _inside(uncertainty, filled, case, level)
                key = f"{int(level * 100)}_{variant}"
                row.update({f"inside_{key}": inside, f"inside_{key}_bright": inside_bright})
                row.update({"gap_voxels": total, "gap_voxels_bright": bright})
        rows.append(row)
        share = row["inside_68_guard"] / row["gap_voxels"]
        print(
            f"{set_name:11s} {case.name:28s} 68 %: {share:.3f}, "
            f"bright {row['inside_68_guard_bright']}/{row['gap_voxels_bright']}"
        )
    elapsed = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    command = (
        f"python benchmarks/uncertainty_coverage.py --per-group {args.per_group} "
        f"--per-case {args.per_case}"
    )
    (args.out / "uncertainty_coverage.json").write_text(
        json.dumps({"command": command, "wall_s": round(elapsed, 1), "rows": rows}, indent=1)
        + "\n"
    )
    (args.out / "uncertainty_coverage.md").write_text(
        "# Coverage of the shipped fill uncertainty, with and without the overshoot guard\n\n"
        f"`{command}` ({elapsed / 60:.1f} min on 2 CPU cores). Fraction of gap voxels whose "
        "noise-free intensity lies inside the stated band (pooled over the voxels of the "
        f"group; bright: noise-free counts >= {BRIGHT:g}); a calibrated band holds 0.68 and "
        "0.95.\n\n" + _table(rows) + "\n"
    )
    print(_table(rows))
    print(f"{elapsed:.0f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
