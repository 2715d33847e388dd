"""The README's two commands, and CI running exactly the test one."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"


def block(name: str) -> list[str]:
    """Command lines of the fenced block between ``<!-- name -->`` and ``<!-- /name -->``."""
    text = README.read_text()
    pattern = rf"^<!-- {name} -->\n```bash\n(.*?)```\n<!-- /{name} -->$"
    match = re.search(pattern, text, re.S | re.M)
    assert match, f"README.md has no ```bash block between <!-- {name} --> markers"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_test_command():
    assert block("test-command") == ['pip install torch==2.13.0 -e ".[test]" && python -m pytest']


def test_readme_main_command_uses_the_cli():
    (command,) = block("main-command")
    install, run = command.split(" && ")
    assert install == "pip install torch==2.13.0 -e ."
    args = shlex.split(run)
    assert args[0] == "bcdi-online"
    from bcdi_online.cli import build_parser

    parsed = build_parser(args[1]).parse_args(args[1:])  # a valid command line
    assert parsed.command == args[1]


def test_ci_reads_the_test_command_from_readme():
    script = CI.read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert "<!-- test-command -->" in script and "<!-- \\/test-command -->" in script
    assert "pip install torch==2.13.0\n" in script  # CPU torch before the package
    assert script.index("torch==2.13.0") < script.index('install -e ".[test]"')
    assert "status -eq 5" in script  # no collected tests is a failure
    assert os.access(CI, os.X_OK)


def test_ci_extracts_exactly_the_readme_command(tmp_path):
    # run the extraction part of .ci/run on the real README
    script = CI.read_text()
    start = script.index("test_command=$(")
    stop = script.index('echo "::: $test_command"')
    snippet = "set -euo pipefail\n" + script[start:stop] + 'printf "%s" "$test_command"\n'
    result = subprocess.run(
        ["bash", "-c", snippet], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == block("test-command")[0]
