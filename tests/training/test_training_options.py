"""Training options for a GPU node, checked on the CPU: worker processes, bf16, deeper model."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

import bcdi_online.training._dataset as dataset_module
from bcdi_online.model import load_model
from bcdi_online.training import TrainConfig, generate_training_set, train

SETTINGS = {"n_volumes": 4, "volume_shape": (40, 40, 72), "seed": 5}


@pytest.fixture(scope="module")
def parallel_patches(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "patches.h5"
    return generate_training_set(path, workers=2, **SETTINGS)


def test_worker_processes_draw_each_crystal_from_its_own_seed(parallel_patches) -> None:
    # what one crystal's worker returns, computed here, for crystals 0 and 3
    expected = {
        index: dataset_module._seeded_volume_patches((5, index, (40, 40, 72), (8, 3), 0.0))
        for index in (0, 3)
    }
    with h5py.File(parallel_patches) as f:
        assert f.attrs["seeding"] == "per crystal"
        for width in (32, 64):
            index = f[f"volume_index_{width}"][()]
            assert set(index.tolist()) == {0, 1, 2, 3}
            for crystal, patches in expected.items():
                rows = np.flatnonzero(index == crystal)
                assert len(rows) == len(patches[width])
                for row, (counts, truth) in zip(rows, patches[width], strict=True):
                    np.testing.assert_array_equal(f[f"counts_{width}"][row], counts)
                    np.testing.assert_array_equal(f[f"expected_{width}"][row], truth)


def test_bad_worker_count_is_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="workers -1 must be >= 0"):
        generate_training_set(tmp_path / "x.h5", n_volumes=1, workers=-1)


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # train() sets it from its config


def _config(data, out_dir, **changes) -> TrainConfig:
    fields = {
        "data": str(data),
        "out_dir": str(out_dir),
        "steps": 2,
        "batch_size": 2,
        "steps_per_epoch": 2,
        "validation_volumes": 1,
        "base_channels": 4,
        "threads": 1,
    }
    return TrainConfig(**{**fields, **changes})


@pytest.mark.usefixtures("keep_threads")
def test_bf16_training_of_a_deeper_model(parallel_patches, tmp_path) -> None:
    out = tmp_path / "run"
    best = train(_config(parallel_patches, out, precision="bf16", blocks=1))
    model = load_model(best, device="cpu")
    assert model.config == {"base_channels": 4, "blocks": 1}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast, not a cast
    (record,) = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert record["step"] == 2 and np.isfinite(record["loss"]) and record["val_l1_32"] > 0
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["config"]["precision"] == "bf16" and last["config"]["blocks"] == 1


def test_unknown_training_precision_is_rejected(parallel_patches, tmp_path) -> None:
    with pytest.raises(ValueError, match="precision 'fp16' is not one of"):
        train(_config(parallel_patches, tmp_path / "x", precision="fp16"))
