"""``bcdi-online demo`` end to end on a small scan (real Tiled server, RunEngine, devices)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from bcdi_online.cli import main
from bcdi_online.model import GapUNet, save_model


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return save_model(GapUNet(base_channels=4), tmp_path / "tiny.pt")


def test_demo_writes_summary_figure_and_tiled_catalog(tmp_path: Path, tiny_model: Path) -> None:
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--frames",
            "36",
            "--roi",
            "64",
            "--model",
            str(tiny_model),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["frames"] == 36
    assert summary["frame_shape"] == [64, 64]
    assert summary["windows"] > 0
    assert summary["corrected_node"] == f"/bcdi_online{summary['raw_node']}"
    assert -1 <= summary["strict_pcc_model"] <= 1
    assert (out / "demo.png").stat().st_size > 10_000
    assert (out / "tiled" / "catalog.db").is_file()  # servable again with `tiled serve`
    files = list((out / "detector").glob("*.h5"))
    assert len(files) == 1
    with h5py.File(files[0], "r") as f:
        raw = f["/entry/data/data"][()]
    assert raw.shape == (36, 64, 64)
    assert np.count_nonzero(raw) > 0
