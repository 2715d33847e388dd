"""Inference-time variants of the shipped model on the validation set (none adopted).

Run::

    python benchmarks/inference_variants.py [--measurement-effects] [--out DIR]

Scores the shipped weights on the 24 held-out validation volumes (strict PCC per gap
group, photon error, wins over biharmonic) with the default engine and with:

* test-time flips: predictions averaged over flips of the rocking axis (2 passes) or
  of all three window axes (8 passes), in the model's normalised log space;
* more measured context across thin gaps (``WindowPlan(context=19)``, ``26``: 12 px gaps
  get 48- and 64-wide windows);
* more window overlap along the rocking and stripe axes (``WindowPlan(overlap=0.5)``).

Writes ``inference_variants.md`` and ``.json`` to ``--out`` (default
``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bcdi_online.evaluation import biharmonic, relative_photon_error, strict_pcc, validation_set
from bcdi_online.inpainting import GapInpainter, WindowPlan
from bcdi_online.model import GapUNet, denormalise, load_model, normalise

GROUPS = ("w6-single", "w6-cross", "w12-single", "w12-cross", "w38-single", "w38-cross")


class FlipAveraged:
    """Predictor averaging the model over flips of the window axes (test-time augmentation).

    Parameters
    ----------
    model : GapUNet
        The model, on the CPU.
    flips : sequence of tuple of int
        Window axes (0 rocking, 1 along the stripe, 2 across it) flipped per pass.
    """

    def __init__(self, model: GapUNet, flips: Sequence[tuple[int, ...]]) -> None:
        self.model, self.flips = model.eval(), list(flips)
        self.size_multiple = model.size_multiple

    def __call__(self, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Counts predicted for ``(B, D, H, W)`` patches, averaged over the flips."""
        with torch.inference_mode():
            x, scale = normalise(patches, masks)
            total = torch.zeros_like(x[:, :1])
            for axes in self.flips:
                dims = [axis + 2 for axis in axes]
                y = self.model(x.flip(dims) if dims else x)
                total += y.flip(dims) if dims else y
            return denormalise(total / len(self.flips), scale)


def variants(model: GapUNet) -> dict[str, GapInpainter]:
    """The engines compared, by name."""
    all_flips = [c for r in range(4) for c in itertools.combinations((0, 1, 2), r)]
    return {
        "default": GapInpainter(model, device="cpu"),
        "flip rocking (2 passes)": GapInpainter(FlipAveraged(model, [(), (0,)])),
        "flip all axes (8 passes)": GapInpainter(FlipAveraged(model, all_flips)),
        "context 19": GapInpainter(model, device="cpu", plan=WindowPlan(context=19)),
        "context 26": GapInpainter(model, device="cpu", plan=WindowPlan(context=26)),
        "overlap 0.5": GapInpainter(model, device="cpu", plan=WindowPlan(overlap=0.5)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurement-effects", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    cases = validation_set(per_case=2, measurement_effects=args.measurement_effects)
    reference = {
        c.name: strict_pcc(biharmonic(c.data, c.mask), c.truth, c.mask, c.expected) for c in cases
    }
    results = {}
    for name, engine in variants(load_model(None, "cpu")).items():
        started, rows = time.perf_counter(), []
        for case in cases:
            filled = engine(case.data, case.mask)
            rows.append(
                {
                    "case": case.name,
                    "strict_pcc": strict_pcc(filled, case.truth, case.mask, case.expected),
                    "photon_error": relative_photon_error(filled, case.truth, case.mask),
                }
            )
        results[name] = {
            "seconds": time.perf_counter() - started,
            "wins_over_biharmonic": sum(r["strict_pcc"] > reference[r["case"]] for r in rows),
            "rows": rows,
        }
        print(name, f"{results[name]['seconds']:.1f} s", flush=True)
    suffix = "_effects" if args.measurement_effects else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"inference_variants{suffix}.json").write_text(json.dumps(results, indent=1))
    lines = [
        "| variant | " + " | ".join(GROUPS) + " | wins / 24 | s (24 volumes) |",
        "|---" * (len(GROUPS) + 3) + "|",
    ]
    for name, result in results.items():
        cells = []
        for group in GROUPS:
            rows = [r for r in result["rows"] if r["case"].startswith(group)]
            pcc = np.mean([r["strict_pcc"] for r in rows])
            photons = np.mean([r["photon_error"] for r in rows])
            cells.append(f"{pcc:.4f} ({photons:.2f})")
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {result['wins_over_biharmonic']} | {result['seconds']:.0f} |"
        )
    table = "\n".join(lines) + "\n\nCells: mean strict PCC (mean relative photon error).\n"
    (args.out / f"inference_variants{suffix}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
