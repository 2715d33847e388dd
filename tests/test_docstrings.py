"""The examples in the package's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import bcdi_online


def _modules_with_examples() -> list[str]:
    """Dotted names of the package's modules whose source holds a ``>>>`` example."""
    names = []
    for package in ("bcdi_online", "bcdi_online.callbacks", "bcdi_online.sim_devices"):
        root = Path(importlib.import_module(package).__file__).parent
        for path in sorted(root.glob("*.py")):
            if ">>>" in path.read_text():
                names.append(f"{package}.{path.stem}".replace(".__init__", ""))
    for path in sorted(Path(bcdi_online.__file__).parent.glob("*/*.py")):
        if ">>>" in path.read_text():
            names.append(f"bcdi_online.{path.parent.name}.{path.stem}")
    return sorted(set(names))


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert "bcdi_online.inpainting._inpainter" in MODULES
    assert "bcdi_online.phasing._engine" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.attempted > 0 and result.failed == 0, result
