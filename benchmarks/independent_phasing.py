"""What another phasing program makes of bcdi-online's output, imposed as measured data.

Run::

    python benchmarks/independent_phasing.py [--per-group 2] [--widths 6 12 38] \
        [--positions centre off] [--starts 3] [--out DIR]

A user (or a reviewer) may hand bcdi-online's filled volume to their own phasing program
as if every voxel were measured. This phases, with APS's cohere-core (an engine
independent of ours: numpy back end, ER/HIO with Gaussian shrink-wrap,
``3*(20*ER+180*HIO)+40*ER``, no mask; ``--starts`` seeded random starts, the one with
cohere's lowest final error kept, as a user would), the 64 x 64 x 64 box around the Bragg
peak that the live path's CPU preview phases, for each real-space case
(:func:`bcdi_online.evaluation.real_space_cases`), filled three ways: the gap-free counts
(the reference), the corrected scan (the model's fill, with the overshoot guard, as the
live path streams it) and, where the scan-end crystal converged with the peak measured,
that crystal's refill (``crystal/refined_fill``, :func:`bcdi_online.phasing.refine_fill`).
Scores: phase and modulus error against the simulated crystal as the box sees it
(:func:`bcdi_online.evaluation.region_reference`). Writes ``independent_phasing.md``
and ``.jsonl`` to ``--out`` (default ``benchmarks/results/real_space``). Needs
cohere-core (in the test extras).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cohere_core.controller.phasing as cohere_phasing
import cohere_core.lib.nplib as nplib
import numpy as np
from _real_space_runs import add_case_options, chosen_cases, command_line, write_rows

from bcdi_online import PhasingError
from bcdi_online.evaluation import SUCCESS_PHASE_ERROR, region_reference
from bcdi_online.inpainting import GapInpainter
from bcdi_online.phasing import compare, reconstruct_scan, refine_fill

#: cohere's schedule and support rule.
COHERE = {
    "algorithm_sequence": "3*(20*ER+180*HIO)+40*ER",
    "shrink_wrap_trigger": [1, 20],
    "shrink_wrap_type": "GAUSS",
    "shrink_wrap_threshold": 0.2,
    "shrink_wrap_gauss_sigma": 1.0,
    "initial_support_area": [0.5, 0.5, 0.5],
}
#: The box phased: the live path's CPU preview.
BOX = (64, 64, 64)
INPUTS = ("gap-free", "corrected (model fill)", "crystal refill")


def _cohere(counts: np.ndarray, folder: Path, starts: int) -> np.ndarray:
    """cohere's best reconstruction of ``counts`` (every voxel taken as measured).

    ``starts`` seeded random starts (cohere seeds from the clock otherwise); the one with
    the lowest final error (cohere's own figure of merit) is returned, in our convention.
    """
    data_file = folder / "amplitudes.npy"
    np.save(data_file, np.sqrt(np.clip(counts, 0, None).astype(np.float64)))
    results = []
    for seed in range(max(starts, 1)):
        rng = np.random.default_rng(seed)
        nplib.nplib.random = staticmethod(
            lambda shape, rng=rng, **_: rng.random(shape) + 1j * rng.random(shape)
        )
        with contextlib.redirect_stdout(io.StringIO()):
            rec = cohere_phasing.create_rec(dict(COHERE), str(data_file), "np", -1, debug=True)
            rec.iterate()
        results.append((float(rec.errs[-1]), np.asarray(rec.get_image())))
    # cohere's forward transform is the inverse FFT: its object is our object's conjugate
    return np.conj(min(results, key=lambda result: result[0])[1])


def _table(rows: list[dict[str, Any]]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
        groups["all"].append(row)
    lines = [
        "| gap | n | "
        + " | ".join(f"{name}: successes, median phase error" for name in INPUTS[:2])
        + " | refills | on those: corrected, successes, median | crystal refill, "
        "successes, median | refill better than corrected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group, members in sorted(groups.items(), key=lambda item: item[0] == "all"):
        cells = []
        for name in INPUTS[:2]:
            errors = [m["inputs"][name]["phase_error"] for m in members]
            cells.append(
                f"{sum(e < SUCCESS_PHASE_ERROR for e in errors)}, {np.median(errors):.3f}"
            )
        refilled = [m for m in members if INPUTS[2] in m["inputs"]]
        cells.append(str(len(refilled)))
        for name in INPUTS[1:]:
            errors = [m["inputs"][name]["phase_error"] for m in refilled]
            cells.append(
                f"{sum(e < SUCCESS_PHASE_ERROR for e in errors)}, {np.median(errors):.3f}"
                if errors
                else "-"
            )
        better = sum(
            m["inputs"][INPUTS[2]]["phase_error"] < m["inputs"][INPUTS[1]]["phase_error"]
            for m in refilled
        )
        cells.append(f"{better}/{len(refilled)}")
        lines.append(f"| {group} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_options(parser, per_group=2)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    inpainter = GapInpainter(device="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in chosen_cases(args):
            filled = inpainter(case.data, case.mask)
            crystal = reconstruct_scan(filled, case.mask, region_shape=BOX, device="cpu")
            z0, z1, y0, y1, x0, x1 = crystal.region
            box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
            volumes = {INPUTS[0]: case.truth[box], INPUTS[1]: filled[box]}
            with contextlib.suppress(PhasingError):  # no refill: not converged, peak in gap
                volumes[INPUTS[2]] = refine_fill(filled, case.mask, crystal)
            truth = region_reference(case.obj, crystal.region)
            row: dict[str, Any] = {"case": case.name, "group": case.group, "inputs": {}}
            for name, volume in volumes.items():
                scores = compare(_cohere(volume, Path(tmp), args.starts), truth)
                row["inputs"][name] = {
                    "phase_error": scores.phase_error,
                    "modulus_error": scores.modulus_error,
                }
            rows.append(row)
            print(
                case.name,
                "  ".join(f"{k}: {v['phase_error']:.3f}" for k, v in row["inputs"].items()),
                flush=True,
            )
    elapsed = time.perf_counter() - started
    command = command_line()
    write_rows(args.out / "independent_phasing.jsonl", rows)
    report = (
        "# An independent phasing (cohere-core) of bcdi-online's output, imposed as data\n\n"
        f"`{command}` ({elapsed / 60:.1f} min on 2 CPU cores). The {BOX} box around the "
        "peak; phase error inside the support (rad) against the simulated crystal as the "
        f"box sees it; success: < {SUCCESS_PHASE_ERROR} rad. cohere: "
        f"`{COHERE['algorithm_sequence']}`, no mask, the best of {args.starts} seeded "
        "starts by cohere's final error.\n\n" + _table(rows) + "\n"
    )
    (args.out / "independent_phasing.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
