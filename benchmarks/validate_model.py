"""Score the model and the baselines on the held-out validation set (the model card's table).

Run::

    python benchmarks/validate_model.py [--model PATH] [--per-case 2] [--out benchmarks/results]

A thin front to ``bcdi-online evaluate`` (same options), writing ``validation.json`` and
``validation.md`` to ``benchmarks/results`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import sys

from bcdi_online.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args += ["--out", "benchmarks/results"]
    raise SystemExit(main(["evaluate", *args]))
