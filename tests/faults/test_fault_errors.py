"""Fault class: bad input given to the command line: model files that are not
checkpoints, scan files missing their mask or detector, Tiled refusing or absent. Each is
one line from the package's errors and exit code 2, no traceback, nothing written."""

from __future__ import annotations

import hashlib
import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch
from faultprocs import (
    free_port,
)

from bcdi_online.cli import main


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "scan.h5"
    argv = ["simulate", "--frames", "16", "--roi", "32", "--no-png", "--out", str(path)]
    assert main(argv) == 0
    return path


class NotAllowed:
    """A class a weights-only load must refuse."""


def _weights(kind: str, path):
    if kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "plain-pickle":
        path.write_bytes(pickle.dumps({"config": {}, "state_dict": {}}))
    elif kind == "text":
        path.write_text("these are not weights\n")
    elif kind == "numpy-file":
        with path.open("wb") as f:
            np.save(f, np.zeros(4))
    elif kind == "torch-file-with-objects":
        torch.save({"config": {}, "state_dict": {}, "extra": NotAllowed()}, path)
    elif kind == "torch-file-not-a-checkpoint":
        torch.save({"weights": torch.zeros(3)}, path)
    return path


WEIGHT_FAULTS = {
    "random-bytes": "is not a PyTorch checkpoint (4096 bytes of unknown binary data",
    "empty": "is empty (0 bytes)",
    "plain-pickle": "a plain Python pickle",
    "text": "bytes of text",
    "numpy-file": "a NumPy .npy file",
    "torch-file-with-objects": "holds objects other than tensors and plain values",
    "torch-file-not-a-checkpoint": "expected a dict with 'config' and 'state_dict'",
}


@pytest.mark.parametrize("kind", list(WEIGHT_FAULTS))
def test_bad_weights_file_is_one_line_exit_2(scan_file, tmp_path, capsys, kind):
    """Fault: a ``--model`` file that is not a bcdi-online checkpoint."""
    message = WEIGHT_FAULTS[kind]
    weights = _weights(kind, tmp_path / "model.pt")
    before = hashlib.sha256(scan_file.read_bytes()).hexdigest()
    capsys.readouterr()
    out = tmp_path / "out.h5"
    code = main(["inpaint", str(scan_file), "--model", str(weights), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("bcdi-online inpaint: error: model checkpoint") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and hashlib.sha256(scan_file.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("entry/instrument/detector/pixel_mask", "pixel_mask"),
        ("entry/instrument/detector/description", "description"),
        ("entry/instrument/detector/roi", "roi"),
    ],
    ids=["no-pixel-mask", "no-description", "no-roi"],
)
def test_scan_file_missing_its_detector_metadata_is_one_line_exit_2(
    scan_file, tmp_path, capsys, dataset, message
):
    """Fault: an input HDF5 file without its pixel mask, detector name or ROI."""
    broken = tmp_path / "broken.h5"
    shutil.copy(scan_file, broken)
    with h5py.File(broken, "r+") as f:
        del f[dataset]
    capsys.readouterr()
    assert main(["inpaint", str(broken), "--out", str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bcdi-online inpaint: error:") and message in err
    assert "not a bcdi-online scan file" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_wrong_tiled_api_key_is_one_line_exit_2(world, capsys, monkeypatch):
    """Fault: a Tiled API key the server refuses (``replay``)."""
    server, _, _ = world
    monkeypatch.setenv("TILED_API_KEY", "0badc0ffee0badc0ffee")
    capsys.readouterr()
    assert main(["replay", "some-uid", "--tiled", server.uri.split("?")[0]]) == 2
    err = capsys.readouterr().err
    assert "refused the API key (401)" in err and "0badc0ffee0badc0ffee" not in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_tiled_unreachable_is_one_line_exit_2(capsys, monkeypatch):
    """Fault: no Tiled server at the given address."""
    monkeypatch.setenv("TILED_API_KEY", "0badc0ffee0badc0ffee")
    uri = f"http://127.0.0.1:{free_port()}"
    capsys.readouterr()
    assert main(["replay", "some-uid", "--tiled", uri]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach Tiled at {uri}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
