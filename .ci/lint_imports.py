"""Check the import contracts of pyproject.toml ([tool.importlinter]) with import-linter.

``callbacks/`` and ``sim_devices/`` become ``bcdi_online.callbacks`` /
``bcdi_online.sim_devices`` only through setuptools' ``package-dir`` mapping, which
import-linter's graph builder (grimp) cannot follow in an editable install: the package
is assembled as installed in a temporary folder and linted there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(root: Path = ROOT) -> int:
    """Lint the package of the checkout ``root``; return import-linter's exit status."""
    ignore = shutil.ignore_patterns("__pycache__")
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "bcdi_online"
        shutil.copytree(root / "src" / "bcdi_online", package, ignore=ignore)
        shutil.copytree(root / "callbacks", package / "callbacks", ignore=ignore)
        shutil.copytree(root / "sim_devices", package / "sim_devices", ignore=ignore)
        lint = Path(sys.executable).with_name("lint-imports")
        command = [str(lint) if lint.exists() else "lint-imports", str(root / "pyproject.toml")]
        env = {**os.environ, "PYTHONPATH": tmp}
        return subprocess.run(command, cwd=tmp, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))
