"""Score the model and the baselines on the held-out validation set; write the model card table.

Run::

    python benchmarks/validate_model.py [--weights PATH] [--per-case 2] [--out benchmarks/results]

Writes ``validation.json`` (one row per volume and method) and ``validation.md`` (the
summary table that goes in the model card) to ``--out``. ``bcdi-online evaluate`` does the
same; both tabulate with :func:`bcdi_online.evaluation.summarise`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bcdi_online.evaluation import (
    biharmonic,
    inverse_distance_weighting,
    linear_interpolation,
    score_methods,
    summarise,
    validation_set,
)
from bcdi_online.inpainting import GapInpainter


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
