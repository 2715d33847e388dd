"""What the real-space benchmarks share: their case options, the cases, a run's record."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bcdi_online.evaluation import RealSpaceCase, real_space_cases

#: Where the real-space benchmarks write their tables and rows.
RESULTS = Path(__file__).parent / "results" / "real_space"


def add_case_options(
    parser: argparse.ArgumentParser, *, per_group: int, positions: bool = True
) -> None:
    """Add ``--per-group``, ``--widths``, ``--positions`` (optional) and ``--out``."""
    parser.add_argument("--per-group", type=int, default=per_group)
    parser.add_argument("--widths", type=int, nargs="+", default=[6, 12, 38])
    if positions:
        parser.add_argument(
            "--positions", nargs="+", default=["centre", "off"], choices=["centre", "off"]
        )
    parser.add_argument("--out", type=Path, default=RESULTS)


def chosen_cases(args: argparse.Namespace) -> Iterator[RealSpaceCase]:
    """Yield the real-space cases the options name."""
    positions = getattr(args, "positions", ("centre", "off"))
    for case in real_space_cases(per_group=args.per_group, widths=args.widths):
        if case.position in positions:
            yield case


def command_line() -> str:
    """Return the command that ran this benchmark, as it would be typed again."""
    return "python " + shlex.join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write one JSON line per row to ``path`` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
