"""The installed package layout: every sub-package is listed, mapped folders import."""

from __future__ import annotations

import importlib
import subprocess
import sys
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


def test_tango_is_an_extra_and_the_tests_install_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("pytango") for dep in project["dependencies"])
    assert project["optional-dependencies"]["tango"] == ["pytango>=10.0"]
    assert "bcdi-online[tango]" in project["optional-dependencies"]["test"]


def test_sim_devices_import_their_tango_devices_on_first_use() -> None:
    code = (
        "import sys, bcdi_online.sim_devices as s; "
        "assert 'tango' not in sys.modules, 'imported eagerly'; "
        "s.SimLimaDetector; assert 'tango' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
