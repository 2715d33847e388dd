"""The ``bcdi-online`` command line: one subcommand per small module.

Add a subcommand by writing a module with ``add_arguments(parser)`` and ``run(args) -> int``
and listing it in :data:`COMMANDS` (``_main.py``).
"""

from __future__ import annotations

from ._main import COMMANDS, Command, build_parser, main

__all__ = ["COMMANDS", "Command", "build_parser", "main"]
