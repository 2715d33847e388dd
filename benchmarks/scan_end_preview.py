"""The CPU preview of the scan-end crystal: bin the peak's box, or crop a smaller one?

Run::

    python benchmarks/scan_end_preview.py [--per-group 2] [--widths 6 12 38] \
        [--boxes binned cropped] [--positions centre off] [--stem NAME] [--out DIR]

On a CPU the scan-end reconstruction phases a 64^3 grid (about 11 s on 2 cores). It can
get there two ways from the 64 x 128 x 128 box around the Bragg peak: bin it 1 x 2 x 2
(finer real-space voxels, but half the field of view, so half the oversampling across
the frames) or crop the 64 x 64 x 64 box (the oversampling kept, voxels twice as
coarse). For each real-space case (:func:`bcdi_online.evaluation.real_space_cases`, the
model's fill with the overshoot guard as the live path makes it) this runs
:func:`bcdi_online.phasing.reconstruct_scan` both ways and reports, against the truth:
the phase error inside the support (against the simulated crystal as that grid sees
it), the scan-end verdict (``converged`` or not, which needs no truth) and, where
:func:`~bcdi_online.phasing.refine_fill` refills (converged, the peak measured), the
amplitude error of the refill on the region's gap against the model's fill.
``--boxes gpu`` scores the box the live path phases on a GPU (64 x 128 x 128, unbinned)
the same way. Writes ``STEM.md`` and ``.jsonl`` to ``--out`` (default
``benchmarks/results/real_space``, stem ``scan_end_preview``).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import numpy as np
from _real_space_runs import add_case_options, chosen_cases, command_line, write_rows

from bcdi_online.evaluation import (
    SUCCESS_PHASE_ERROR,
    RealSpaceCase,
    amplitude_error,
    region_reference,
)
from bcdi_online.inpainting import GapInpainter
from bcdi_online.phasing import compare, reconstruct_scan, refine_fill

#: name: (label, region_shape, binning): the two ways to a 64^3 grid, and the GPU's box.
BOXES = {
    "binned": ("binned 64x128x128 / 1x2x2", (64, 128, 128), (1, 2, 2)),
    "cropped": ("cropped 64x64x64", (64, 64, 64), (1, 1, 1)),
    "gpu": ("GPU box 64x128x128", (64, 128, 128), (1, 1, 1)),
}
Preview = tuple[str, tuple[int, int, int], tuple[int, int, int]]


def _preview(
    case: RealSpaceCase, filled: np.ndarray, region_shape: tuple[int, int, int], binning: tuple
) -> dict[str, Any]:
    started = time.perf_counter()
    result = reconstruct_scan(
        filled, case.mask, region_shape=region_shape, binning=binning, device="cpu"
    )
    seconds = time.perf_counter() - started
    z0, z1, y0, y1, x0, x1 = result.region
    box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
    gap = np.broadcast_to(case.mask, case.data.shape)[box]
    row: dict[str, Any] = {
        "seconds": seconds,
        "converged": result.converged,
        "peak_in_gap": result.peak_in_gap,
        "llk": result.llk,
        "phase_error": compare(
            result.obj, region_reference(case.obj, result.region, binning)
        ).phase_error,
        "model_fill": amplitude_error(filled[box], case.expected[box], gap),
    }
    if result.converged and not result.peak_in_gap:
        refill = refine_fill(filled, case.mask, result)
        row["refill"] = amplitude_error(refill, case.expected[box], gap)
    return row


def _table(rows: list[dict[str, Any]], previews: list[Preview]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
        groups["all"].append(row)
    head = "| gap | n | " + " | ".join(
        f"{label}: successes, converged, wrong but converged, median phase error"
        for label, _, _ in previews
    )
    lines = [head + " |", "|---|---|" + "---|" * len(previews)]
    for group, members in sorted(groups.items(), key=lambda item: item[0] == "all"):
        cells = []
        for label, _, _ in previews:
            runs = [m["previews"][label] for m in members]
            ok = [r["phase_error"] < SUCCESS_PHASE_ERROR for r in runs]
            wrong = sum(r["converged"] and not good for r, good in zip(runs, ok, strict=True))
            cells.append(
                f"{sum(ok)}, {sum(r['converged'] for r in runs)}, {wrong}, "
                f"{np.median([r['phase_error'] for r in runs]):.3f}"
            )
        lines.append(f"| {group} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _refill_table(rows: list[dict[str, Any]], previews: list[Preview]) -> str:
    lines = [
        "| preview | refills | better than the model's fill | model's fill, median "
        "| refill, median | worst refill / model's fill | seconds, median |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, _, _ in previews:
        runs = [r["previews"][label] for r in rows]
        refilled = [r for r in runs if "refill" in r]
        model = [r["model_fill"] for r in refilled]
        refill = [r["refill"] for r in refilled]
        better = sum(b < a for a, b in zip(model, refill, strict=True))
        worst = max((b / a for a, b in zip(model, refill, strict=True)), default=float("nan"))
        lines.append(
            f"| {label} | {len(refilled)} | {better} | {np.median(model):.3f} "
            f"| {np.median(refill):.3f} | {worst:.2f} "
            f"| {np.median([r['seconds'] for r in runs]):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_options(parser, per_group=2)
    parser.add_argument("--boxes", nargs="+", default=["binned", "cropped"], choices=BOXES)
    parser.add_argument("--stem", default="scan_end_preview")
    args = parser.parse_args()
    previews = [BOXES[name] for name in args.boxes]
    started = time.perf_counter()
    inpainter = GapInpainter(device="cpu")
    rows = []
    for case in chosen_cases(args):
        filled = inpainter(case.data, case.mask)
        row = {"case": case.name, "group": case.group, "previews": {}}
        for label, region_shape, binning in previews:
            row["previews"][label] = _preview(case, filled, region_shape, binning)
        rows.append(row)
        print(
            case.name,
            "  ".join(
                f"{label}: {p['phase_error']:.3f} {'converged' if p['converged'] else '-'}"
                f" refill {p.get('refill', float('nan')):.3f} (model {p['model_fill']:.3f})"
                for label, p in row["previews"].items()
            ),
            flush=True,
        )
    elapsed = time.perf_counter() - started
    command = command_line()
    write_rows(args.out / f"{args.stem}.jsonl", rows)
    report = (
        "# The scan-end crystal: which box is phased\n\n"
        f"`{command}` ({elapsed / 60:.1f} min on 2 CPU cores). Phase error inside the "
        "support against the simulated crystal as each grid sees it; success: < "
        f"{SUCCESS_PHASE_ERROR} rad; converged: the scan-end verdict (no truth needed).\n\n"
        + _table(rows, previews)
        + "\n\nThe refill (`refine_fill`: converged, the Bragg peak measured) on the "
        "region's gap voxels, amplitude error against the noise-free intensity:\n\n"
        + _refill_table(rows, previews)
        + "\n"
    )
    (args.out / f"{args.stem}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
