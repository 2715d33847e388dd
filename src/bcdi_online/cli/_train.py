"""``bcdi-online train``: one option per :class:`~bcdi_online.training.TrainConfig` field."""

from __future__ import annotations

import argparse
import dataclasses
import re


def _field_help(doc: str) -> dict[str, str]:
    """Per-field descriptions from a numpydoc ``Attributes`` section."""
    helps: dict[str, str] = {}
    name = None
    for line in doc.splitlines():
        match = re.match(r"^    (\w+) : ", line)
        if match:
            name = match.group(1)
            helps[name] = ""
        elif name and line.startswith("        "):
            helps[name] = (helps[name] + " " + line.strip()).strip()
    # reST markup reads badly in a terminal: :func:`name` and ``name`` -> name
    return {k: re.sub(r"(:\w+:)?`+([^`]+)`+", r"\2", v) for k, v in helps.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one option per training setting, plus ``--no-resume``."""
    from ..training import TrainConfig

    helps = _field_help(TrainConfig.__doc__ or "")
    for field in dataclasses.fields(TrainConfig):
        default = field.default
        text = helps.get(field.name, "").replace("%", "%%")
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=type(default),
            default=default,
            help=f"{text} (default: {default})",
        )
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="start afresh even if OUT_DIR/last.pt exists",
    )


def run(args: argparse.Namespace) -> int:
    """Train and print the best checkpoint's path."""
    from ..training import TrainConfig, train

    config = TrainConfig(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)}
    )
    best = train(config, resume=not args.no_resume)
    print(f"best checkpoint: {best}")
    return 0
