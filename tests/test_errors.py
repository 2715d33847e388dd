"""Every error the engine raises belongs to the package's hierarchy."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

import bcdi_online
from bcdi_online import BcdiOnlineError

ENGINE = Path(bcdi_online.__file__).parent
BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, Exception)
} - {"NotImplementedError", "StopIteration", "AttributeError", "ModuleNotFoundError"}
# protocols, not errors: a module's lazy ``__getattr__`` raises AttributeError for unknown
# names, and a missing optional dependency (an extra) stays a ModuleNotFoundError


def _builtin_raises(path: Path, root: Path = ENGINE) -> list[str]:
    """``raise ValueError(...)``-like statements of a module, as 'file:line name'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id in BUILTIN_ERRORS:
                found.append(f"{path.relative_to(root)}:{node.lineno} {target.id}")
    return found


def test_the_engine_raises_no_bare_builtin_error() -> None:
    offenders = [hit for path in sorted(ENGINE.rglob("*.py")) for hit in _builtin_raises(path)]
    assert offenders == []


@pytest.mark.parametrize("name", [name for name in bcdi_online.__all__ if name.endswith("Error")])
def test_exported_errors_derive_from_the_base(name: str) -> None:
    error = getattr(bcdi_online, name)
    assert issubclass(error, BcdiOnlineError) and issubclass(error, Exception)


def test_the_check_finds_a_bare_raise(tmp_path) -> None:
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    raise ValueError('x')\n\ndef g():\n    raise\n")
    assert _builtin_raises(module, tmp_path) == ["probe.py:2 ValueError"]
