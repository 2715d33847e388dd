"""Does the reconstructed crystal fill the gap better than the model? Amplitudes compared.

Run::

    python benchmarks/reconstruction_fill.py [--per-group 1] [--widths 6 12 38] [--out DIR]

A phase retrieval that converges fits every measured voxel at once, and its own far
field, ``|FFT(obj)|^2`` scaled to the data (``PhasingResult.intensity``), is defined on
the gap voxels too: a fill that is consistent with a finite, compact crystal. For
each real-space case (:func:`bcdi_online.evaluation.real_space_cases`) this phases the
centred block, as the real-space evaluation does, with the recommended practice (the
model's fill as the start of free gap voxels, then least total variation), and scores
on the block's gap voxels, against the noise-free intensity, the model's fill (with the
overshoot guard, as shipped) and the reconstruction's intensity: amplitude error
(relative RMS of the amplitudes, beside the Poisson floor of the gap-free counts),
filled/true peak maximum and photon total. Also the reconstruction's phase error
against the true crystal and the scan-end reconstruction's own verdict
(``converged`` or why not), which needs no truth. Writes
``reconstruction_fill.md`` and ``.jsonl`` to ``--out`` (default
``benchmarks/results/real_space``).
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
    amplitude_error,
    crop_centre,
    gap_ratios,
    reference_object,
)
from bcdi_online.inpainting import GapInpainter
from bcdi_online.phasing import compare, peak_in_gap, phase_retrieval
from bcdi_online.phasing._scan_end import _judge

#: The phased block, as in ``reconstruct_case``.
CROP = (64, 96, 96)
#: (label, treatment): what is phased (the recommended practice, as at scan end).
PHASINGS = (("model start + TV", "fill_start_tv"),)


def _scores(filled: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    return {"amplitude_error": amplitude_error(filled, expected, mask)} | gap_ratios(
        filled, expected, mask
    )


def _table(rows: list[dict[str, Any]]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
        groups["all"].append(row)
    sources = ["model fill"] + [f"{label} recon" for label, _ in PHASINGS]
    lines = [
        "| gap | n | Poisson floor | "
        + " | ".join(f"{s}: amplitude error, peak, photons" for s in sources)
        + " | "
        + " | ".join(f"{label}: phase error (successes)" for label, _ in PHASINGS)
        + " |",
        "|---|---|---|" + "---|" * (len(sources) + len(PHASINGS)),
    ]
    for group, members in sorted(groups.items(), key=lambda item: item[0] == "all"):
        cells = [f"{np.median([m['floor'] for m in members]):.3f}"]
        for source in sources:
            values = [m["sources"][source] for m in members]
            cells.append(
                f"{np.median([v['amplitude_error'] for v in values]):.3f}, "
                f"{np.median([v['peak_ratio'] for v in values]):.2f}, "
                f"{np.median([v['photon_ratio'] for v in values]):.2f}"
            )
        for label, _ in PHASINGS:
            errors = [m["phase_error"][label] for m in members]
            wins = sum(e < SUCCESS_PHASE_ERROR for e in errors)
            cells.append(f"{np.median(errors):.3f} ({wins}/{len(errors)})")
        lines.append(f"| {group} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _median(values: list[float]) -> str:
    return f"{np.median(values):.3f}" if values else "-"


def _converged_table(rows: list[dict[str, Any]], key: str) -> str:
    """Model fill against each reconstruction where the phasing succeeded (``key``
    ``"success"``: by its phase error against the truth), judged itself converged
    (``"verdict"``: the scan-end reconstruction's test, which needs no truth) or, in
    addition, the peak was measured (``"refilled"``: what ``refine_fill`` refills)."""
    lines = [
        f"| phasing | cases ({key}) | recon better than model fill (amplitude error) "
        "| model fill, median | recon, median |",
        "|---|---|---|---|---|",
    ]
    for label, _ in PHASINGS:
        if key == "success":
            won = [r for r in rows if r["success"][label]]
        elif key == "verdict":
            won = [r for r in rows if r["verdict"][label] == "converged"]
        else:  # what the product refills: converged, and the peak measured
            won = [r for r in rows if r["verdict"][label] == "converged" and not r["peak_in_gap"]]
        model = [r["sources"]["model fill"]["amplitude_error"] for r in won]
        recon = [r["sources"][f"{label} recon"]["amplitude_error"] for r in won]
        better = sum(b < a for a, b in zip(model, recon, strict=True))
        lines.append(f"| {label} | {len(won)} | {better} | {_median(model)} | {_median(recon)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_options(parser, per_group=1, positions=False)
    args = parser.parse_args()
    started = time.perf_counter()
    inpainter = GapInpainter(device="cpu")
    rows = []
    for case in chosen_cases(args):
        mask = crop_centre(np.broadcast_to(case.mask, case.data.shape), CROP)
        expected = crop_centre(case.expected, CROP)
        data = crop_centre(case.data, CROP)
        fill = crop_centre(inpainter(case.data, case.mask), CROP)
        truth = reference_object(case.obj, CROP)
        row: dict[str, Any] = {
            "case": case.name,
            "group": case.group,
            "floor": amplitude_error(crop_centre(case.truth, CROP), expected, mask),
            "sources": {"model fill": _scores(fill, expected, mask)},
            "phase_error": {},
            # refine_fill's test: no refill where the peak may lie in the gap
            "peak_in_gap": peak_in_gap(data.astype(np.float32), mask)[0],
        }
        for label, treatment in PHASINGS:
            result = phase_retrieval(data, mask, treatment=treatment, fill=fill, device="cpu")
            row["sources"][f"{label} recon"] = _scores(result.intensity, expected, mask)
            row["phase_error"][label] = compare(result.obj, truth).phase_error
            # what the scan-end reconstruction would say of it, without the truth
            row.setdefault("verdict", {})[label] = _judge(result) or "converged"
            row.setdefault("success", {})[label] = bool(
                row["phase_error"][label] < SUCCESS_PHASE_ERROR
            )
        rows.append(row)
        recon = row["sources"]["model start + TV recon"]["amplitude_error"]
        print(
            f"{case.name:28s} floor {row['floor']:.3f}  model "
            f"{row['sources']['model fill']['amplitude_error']:.3f}  recon {recon:.3f}  "
            f"phase {row['phase_error']['model start + TV']:.3f} "
            f"{row['verdict']['model start + TV']}",
            flush=True,
        )
    elapsed = time.perf_counter() - started
    command = command_line()
    write_rows(args.out / "reconstruction_fill.jsonl", rows)
    report = (
        "# The reconstruction's own far field as a gap fill, against the model's fill\n\n"
        f"`{command}` ({elapsed / 60:.1f} min on 2 CPU cores; the centred {CROP} block, "
        "gap voxels of the block, against the noise-free intensity). Cells: median "
        "amplitude error (relative RMS), filled/true peak maximum, filled/true photons.\n\n"
        + _table(rows)
        + "\n\nWhere the phasing succeeded (phase error < "
        + f"{SUCCESS_PHASE_ERROR} rad):\n\n"
        + _converged_table(rows, "success")
        + "\n\nWhere the reconstruction judged itself converged (the scan-end test: "
        "the starts agree, the support shrank onto a crystal; no truth needed):\n\n"
        + _converged_table(rows, "verdict")
        + "\n\nWhat `refine_fill` refills (converged, and the Bragg peak measured: "
        "`peak_in_gap` false):\n\n" + _converged_table(rows, "refilled") + "\n"
    )
    (args.out / "reconstruction_fill.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
