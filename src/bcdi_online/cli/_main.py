"""Entry point of ``bcdi-online``: subcommand registry, logging set-up, clean errors."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType

from .. import __version__
from .._errors import BcdiOnlineError
from .._redact import RedactingFormatter, redact

logger = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Command:
    """One subcommand.

    Attributes
    ----------
    name : str
        What the user types (``bcdi-online NAME``).
    help : str
        One line for ``bcdi-online --help``.
    module : str
        Module (relative to this package) defining ``add_arguments(parser)`` and
        ``run(args) -> int``. Imported only when its command runs, so that heavy
        dependencies (torch) do not slow down the others.
    """

    name: str
    help: str
    module: str


#: The subcommands, in ``--help`` order.
COMMANDS: list[Command] = [
    Command(
        "demo",
        "live demo: simulated scan, live inpainting, raw and corrected data in Tiled",
        "._demo",
    ),
    Command(
        "serve",
        "live inpainting as a service: documents from bluesky's 0MQ proxy, results to Tiled",
        "._serve",
    ),
    Command(
        "replay",
        "re-process archived raw runs from Tiled through the live callback",
        "._replay",
    ),
    Command("simulate", "simulate a gap-affected rocking scan and write it to HDF5", "._simulate"),
    Command(
        "inpaint",
        "fill the detector gaps of a scan file; write a copy with /entry/data_inpainted",
        "._inpaint",
    ),
    Command("finetune", "adapt the model to one measured scan (self-supervised)", "._finetune"),
    Command(
        "evaluate",
        "score the model and classical baselines on the simulated validation set",
        "._evaluate",
    ),
    Command(
        "make-training-data",
        "simulate crystals and store training patches (HDF5)",
        "._training_data",
    ),
    Command("train", "train (or resume training) the gap-filling U-Net", "._train"),
]


def _load(command: Command) -> ModuleType:
    return importlib.import_module(command.module, __package__)


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser.

    Parameters
    ----------
    selected : str, optional
        Name of the subcommand about to run: only its module is imported to add its
        arguments (the others appear in ``--help`` with their one-line description).
        None: import every subcommand (complete parser, e.g. for documentation).

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="bcdi-online",
        description="Online deep-learning inpainting of detector gaps in Bragg CDI scans.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        type=str.upper,
        choices=LOG_LEVELS,
        help="logging verbosity of bcdi_online (default: WARNING)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        if selected is None or command.name == selected:
            _load(command).add_arguments(sub)
        sub.set_defaults(_command=command)
    return parser


@contextlib.contextmanager
def _logging_to_stderr(level: str) -> Iterator[None]:
    """Send ``bcdi_online`` log records to stderr at ``level`` while the command runs."""
    package_logger = logging.getLogger("bcdi_online")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    old_level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(level)
    try:
        yield
    finally:  # main() may be called again in one process (tests, notebooks)
        package_logger.removeHandler(handler)
        package_logger.setLevel(old_level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bcdi-online``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success; 2 for bad arguments and for bad input the package
        refuses (its :class:`~bcdi_online.BcdiOnlineError`: a file, a model, a
        detector, a Tiled server that refuses the key); 1 when the command failed
        otherwise (an I/O error, runs that did not complete); 130 when interrupted.
        Errors are one line, without a traceback unless ``--log-level DEBUG``, and
        never show an API key.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    names = {command.name for command in COMMANDS}
    selected = next((a for a in args_list if a in names), None)
    parser = build_parser(selected)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse: --help, --version or a usage error
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    with _logging_to_stderr(args.log_level):
        try:
            return int(_load(args._command).run(args) or 0)
        except KeyboardInterrupt:
            print("bcdi-online: interrupted", file=sys.stderr)
            return 130
        except (BcdiOnlineError, OSError, ValueError) as err:
            logger.debug("%s failed", args.command, exc_info=True)
            message = " ".join(str(err).split()) or type(err).__name__  # one line
            print(f"bcdi-online {args.command}: error: {redact(message)}", file=sys.stderr)
            return 2 if isinstance(err, BcdiOnlineError) else 1
