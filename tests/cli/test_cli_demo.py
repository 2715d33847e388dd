"""``bcdi-online demo`` end to end on a small scan (real Tiled server, RunEngine, devices)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from bcdi_online.cli import main
from bcdi_online.model import GapUNet, save_model
from bcdi_online.phasing import RECOMMENDED_TREATMENT


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
    corrected_uid = summary["corrected_node"].lstrip("/")  # a Bluesky run of its own
    assert summary["health"]["corrected_run_uid"] == corrected_uid != summary["raw_node"][1:]
    assert len(list((out / "results").glob(f"*{corrected_uid[:8]}.h5"))) == 1  # its frames
    assert -1 <= summary["strict_pcc_model"] <= 1
    assert (out / "demo.png").stat().st_size > 10_000
    assert summary["fill_sigma_node"] is None  # no calibration for this model
    crystal = summary["crystal"]  # read back from Tiled
    assert crystal["node"] == f"/bcdi_online/{corrected_uid}/crystal"
    assert crystal["treatment"] == RECOMMENDED_TREATMENT
    assert crystal["end_of_scan_to_crystal_s"] >= crystal["seconds"] > 0
    if crystal["converged"]:  # a picture of the crystal, and how far it is from the truth
        assert (out / "crystal.png").stat().st_size > 10_000
        assert 0 <= crystal["phase_error"] <= np.pi
        # the demo's peak sits at the gap crossing: no refill from the crystal, and why
        assert not crystal["refined_fill"]["published"]
        assert "gap_amplitude_error_refined" not in crystal
    else:  # never pictured as if it were the crystal
        assert crystal["reason"] and not (out / "crystal.png").exists()
    assert (out / "tiled" / "catalog.db").is_file()  # servable again with `tiled serve`
    files = list((out / "detector").glob("*.h5"))
    assert len(files) == 1
    with h5py.File(files[0], "r") as f:
        raw = f["/entry/data/data"][()]
    assert raw.shape == (36, 64, 64)
    assert np.count_nonzero(raw) > 0
