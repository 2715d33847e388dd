"""The installed package layout: every sub-package is listed, mapped folders import."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _on_disk() -> set[str]:
    found = {"bcdi_online"}
    for init in (ROOT / "src" / "bcdi_online").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT / "src")
        found.add(".".join(rel.parts))
    for top in ("callbacks", "sim_devices"):
        found.add(f"bcdi_online.{top}")
    return found


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == _on_disk()
    assert config["package-dir"]["bcdi_online.callbacks"] == "callbacks"
    assert config["package-dir"]["bcdi_online.sim_devices"] == "sim_devices"


def test_mapped_top_level_folders_import_as_subpackages() -> None:
    for name in ("bcdi_online.callbacks", "bcdi_online.sim_devices"):
        module = importlib.import_module(name)
        assert Path(module.__file__).parent.name == name.split(".")[-1]
