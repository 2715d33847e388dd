"""What the overshoot guard does to the shipped model's fill, through the peak and off it.

Run::

    python benchmarks/guard_effect.py [--per-group 4] [--per-case 2] [--out DIR]

Fills the real-space cases (:func:`bcdi_online.evaluation.real_space_cases`: gaps of 6,
12 and 38 px, single and crossed, through the Bragg peak's centre or 1-2 fringes off
it), the validation set and the validation set with measurement effects with the
shipped model without the guard, and takes the guard's bound from the engine itself
(a stand-in predictor that overshoots everything is bounded to exactly the bound);
the guarded fill is the lower of the two, which is what ``GapInpainter`` returns with
the guard (checked on the first case). Scores both with
:func:`bcdi_online.evaluation.evaluate` and applies the bound to the noise-free truth
too: what the guard would take from a perfect fill ("truth clipped", relative RMS on
the gap voxels, beside the Poisson floor). Writes ``guard_effect.md`` and ``.json`` to
``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bcdi_online.evaluation import (
    amplitude_error,
    evaluate,
    real_space_cases,
    validation_set,
)
from bcdi_online.inpainting import DEFAULT_GUARD, GapInpainter

#: What the stand-in predictor puts everywhere: far above any bound.
UNBOUNDED = 1e30


def _unbounded(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return torch.full_like(patches, UNBOUNDED)


def _cases(per_group: int, per_case: int) -> list[tuple[str, str, Any]]:
    """(set, group, case) for every case of the three sets."""
    out = []
    for case in real_space_cases(per_group=per_group):
        out.append(("real-space", case.group, case))
    for name, effects in (("validation", False), ("validation, effects", True)):
        for case in validation_set(per_case=per_case, measurement_effects=effects):
            group = f"{case.width} px {'cross' if case.cross else 'single'}"
            out.append((name, group, case))
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["set"], row["group"])].append(row)
    lines = [
        "| set | gap | n | strict PCC | paper PCC vs noise-free | amplitude error "
        "| peak ratio, median (max) | photon ratio, median (max) | truth clipped (max) "
        "| Poisson floor | frames guarded |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def pair(group: list[dict[str, Any]], key: str, fmt: str) -> str:
        a, b = (np.mean([r[f"{key}_{v}"] for r in group]) for v in ("plain", "guard"))
        return f"{a:{fmt}} -> {b:{fmt}}"

    def ratio(group: list[dict[str, Any]], key: str) -> str:
        parts = []
        for v in ("plain", "guard"):
            values = [r[f"{key}_{v}"] for r in group]
            parts.append(f"{np.median(values):.2f} ({max(values):.2f})")
        return " -> ".join(parts)

    for (name, label), group in sorted(groups.items()):
        lines.append(
            f"| {name} | {label} | {len(group)} | {pair(group, 'strict_pcc', '.4f')} "
            f"| {pair(group, 'paper_pcc_noise_free', '.4f')} "
            f"| {pair(group, 'amplitude_error', '.3f')} | {ratio(group, 'peak_ratio')} "
            f"| {ratio(group, 'photon_ratio')} | {max(r['truth_clipped'] for r in group):.3f} "
            f"| {np.mean([r['amplitude_floor'] for r in group]):.3f} "
            f"| {np.mean([r['frames_guarded'] for r in group]):.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-group", type=int, default=4, help="real-space crystals per group")
    parser.add_argument("--per-case", type=int, default=2, help="validation volumes per case")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    plain = GapInpainter(device="cpu", guard=None)
    bound = GapInpainter(_unbounded)
    rows = []
    for number, (name, group, case) in enumerate(_cases(args.per_group, args.per_case)):
        gap = np.broadcast_to(case.mask, case.data.shape)
        filled = plain(case.data, case.mask)
        limit = bound(case.data, case.mask)
        guarded = np.where(gap, np.minimum(filled, limit), filled)
        if number == 0:  # the lower of the two is what the engine returns with the guard
            engine = GapInpainter(device="cpu")(case.data, case.mask)
            np.testing.assert_allclose(engine, guarded, rtol=1e-5, atol=1e-3)
        truth = np.where(gap, np.minimum(case.expected, limit), case.expected)
        row: dict[str, Any] = {"set": name, "group": group, "case": case.name}
        for label, volume in (("plain", filled), ("guard", guarded)):
            metrics = evaluate(volume, case.truth, case.mask, case.expected)
            row.update({f"{key}_{label}": value for key, value in metrics.items()})
        row["amplitude_floor"] = row.pop("amplitude_floor_plain")
        row.pop("amplitude_floor_guard")
        row["truth_clipped"] = amplitude_error(truth, case.expected, case.mask)
        row["frames_guarded"] = float(np.mean((limit[:, case.mask] < UNBOUNDED / 2).any(axis=1)))
        rows.append(row)
        print(
            f"{name:20s} {case.name:28s} amplitude error "
            f"{row['amplitude_error_plain']:.3f} -> {row['amplitude_error_guard']:.3f}",
            flush=True,
        )
    table = _table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "guard": repr(DEFAULT_GUARD),
        "per_group": args.per_group,
        "per_case": args.per_case,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }
    (args.out / "guard_effect.json").write_text(json.dumps(report, indent=1))
    (args.out / "guard_effect.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
