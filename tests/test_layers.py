"""The import contracts of pyproject.toml hold, and a broken one is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "lint_imports.py"

pytest.importorskip("importlinter", reason="import-linter is a test extra")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_import_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 broken" in result.stdout


def test_an_engine_module_importing_bluesky_breaks_a_contract(tmp_path) -> None:
    for part in ("src", "callbacks", "sim_devices"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "src" / "bcdi_online" / "model" / "_leak.py").write_text("import bluesky\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "bcdi_online.model._leak -> bluesky" in result.stdout
