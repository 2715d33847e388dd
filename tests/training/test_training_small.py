from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from bcdi_online.model import (
    GapUNet,
    denormalise,
    linear_prefill,
    load_model,
    normalise,
    save_model,
)
from bcdi_online.training import (
    PatchSet,
    TrainConfig,
    amplitude_l1,
    gap_loss,
    generate_training_set,
    random_gap_mask,
    train,
)


def dead_column_runs(mask2d: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of runs of columns that are dead in every row."""
    dead = np.concatenate([[False], mask2d.all(axis=0), [False]]).astype(int)
    edges = np.flatnonzero(np.diff(dead))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


# stripe widths: 3..12 px on 32-wide patches (two narrow stripes may touch: up to 16),
# 13..44 px on 64-wide patches (left for the wide gaps)
@pytest.mark.parametrize(("width", "low", "high"), [(32, 3, 16), (64, 13, 44)])
@pytest.mark.parametrize("seed", range(12))
def test_random_gap_mask_properties(width, low, high, seed):
    mask = random_gap_mask((32, 32, width), np.random.default_rng(seed))
    assert mask.shape == (32, 32, width)
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, np.broadcast_to(mask[0], mask.shape))  # one per frame
    runs = dead_column_runs(mask[0])
    assert runs, "no gap stripe"
    widths = [stop - start for start, stop in runs]
    if len(runs) == 1:
        assert low <= widths[0] <= high
    else:  # a second parallel stripe only beside a narrow (<= 8 px) one
        assert len(runs) == 2 and width == 32 and all(3 <= w <= 8 for w in widths)
    # never on the patch border: measured context on both sides
    assert not mask[0][:, 0].all() and not mask[0][:, -1].all()


def test_random_gap_mask_max_width():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = random_gap_mask((8, 32, 32), rng, max_width=6)
        assert max(b - a for a, b in dead_column_runs(mask[0])) <= 12  # <= 2 stripes of 6


def test_gap_loss_decreases_towards_target():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand((2, 1, 8, 16, 16), generator=gen)
    noise = torch.randn(target.shape, generator=gen) * 0.3
    gap = torch.zeros(target.shape, dtype=torch.bool)
    gap[..., 6:10] = True
    losses = [float(gap_loss(target + t * noise, target, gap)[0]) for t in (1.0, 0.5, 0.1, 0.0)]
    assert all(a > b for a, b in zip(losses[:-1], losses[1:], strict=True))
    assert losses[-1] == pytest.approx(0.0, abs=1e-5)
    loss, parts = gap_loss(target + noise, target, gap)
    assert loss.ndim == 0 and set(parts) == {"l1", "ssim", "grad"}
    # the L1 term looks at gap voxels only
    outside = torch.where(gap, target, target + 5.0)
    assert gap_loss(outside, target, gap)[1]["l1"] == pytest.approx(0.0, abs=1e-6)


def test_normalise_denormalise_inverse_on_measured():
    rng = np.random.default_rng(1)
    counts = torch.from_numpy(rng.poisson(rng.uniform(0, 3e4, (3, 8, 12, 16))).astype(np.float32))
    masks = torch.zeros(counts.shape, dtype=torch.bool)
    masks[..., 5:9] = True
    x, scale = normalise(counts, masks)
    assert x.shape == (3, 2, 8, 12, 16) and x.dtype == torch.float32
    assert scale.shape == (3,)
    assert float(x[:, 0].min()) >= 0 and float(x[:, 0].max()) <= 1 + 1e-6
    torch.testing.assert_close(x[:, 1], masks.float())
    back = denormalise(x[:, :1], scale)
    measured = ~masks
    np.testing.assert_allclose(
        back[measured].numpy(), counts[measured].numpy(), rtol=1e-5, atol=1e-6
    )


def test_linear_prefill_exact_on_ramp():
    w = torch.arange(20, dtype=torch.float32)
    ramp = (0.5 + 0.25 * w).expand(2, 4, 6, 20).clone()
    gap = torch.zeros(ramp.shape, dtype=torch.bool)
    gap[..., 7:13] = True
    corrupted = torch.where(gap, torch.full_like(ramp, 100.0), ramp)
    torch.testing.assert_close(linear_prefill(corrupted, gap), ramp)
    # a crossing stripe (whole rows dead): filled along the middle axis
    rows = 1.0 + 2.0 * torch.arange(6, dtype=torch.float32)
    ramp_h = rows.view(1, 1, 6, 1).expand(2, 4, 6, 20)
    gap_h = torch.zeros(ramp.shape, dtype=torch.bool)
    gap_h[..., 2:4, :] = True
    torch.testing.assert_close(linear_prefill(torch.where(gap_h, 0.0, ramp_h), gap_h), ramp_h)


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "patches.h5"
    generate_training_set(path, n_volumes=6, volume_shape=(40, 40, 72), seed=3)
    return path


def test_generate_training_set_has_both_widths(patches):
    with h5py.File(patches) as f:
        assert f.attrs["n_volumes"] == 6
        for width in (32, 64):
            counts, expected = f[f"counts_{width}"], f[f"expected_{width}"]
            index = f[f"volume_index_{width}"][()]
            assert counts.shape[1:] == expected.shape[1:] == (32, 32, width)
            assert len(counts) == len(index) > 0
            # every crystal gives patches of both widths (train and validation split)
            assert set(index.tolist()) == set(range(6))
            assert np.all(counts[()] >= 0) and np.all(np.isfinite(expected[()]))
            assert float(expected[()].max()) > 1.0


def test_generate_training_set_with_measurement_effects(tmp_path):
    plain = generate_training_set(tmp_path / "plain.h5", n_volumes=2, volume_shape=(36, 36, 72))
    effects = generate_training_set(
        tmp_path / "effects.h5", n_volumes=2, volume_shape=(36, 36, 72), effects_fraction=1.0
    )
    with h5py.File(plain) as f, h5py.File(effects) as g:
        assert f.attrs["effects_fraction"] == 0.0 and g.attrs["effects_fraction"] == 1.0
        assert f["expected_32"].shape[1:] == g["expected_32"].shape[1:] == (32, 32, 32)
        assert not np.array_equal(f["expected_32"][0], g["expected_32"][0])
    with pytest.raises(ValueError, match="effects_fraction 1.5"):
        generate_training_set(tmp_path / "bad.h5", n_volumes=1, effects_fraction=1.5)


def test_patch_set_batch(patches):
    patch_set = PatchSet(patches, 64, slice(0, 4))
    counts, expected, masks = patch_set.batch(np.random.default_rng(0), 3)
    assert counts.shape == expected.shape == masks.shape == (3, 32, 32, 64)
    assert masks.dtype == torch.bool and bool(masks.any())
    empty = PatchSet(patches, 32, slice(10, None))
    assert len(empty) == 0
    with pytest.raises(ValueError, match="no training patches"):
        empty.batch(np.random.default_rng(0), 2)


def test_patch_set_gaps_through_the_peak(patches):
    patch_set = PatchSet(patches, 32, slice(0, 4))
    counts, expected, masks = patch_set.batch(
        np.random.default_rng(1), 6, augment=False, through_peak=1.0
    )
    for e, m in zip(expected, masks, strict=True):
        brightest = np.unravel_index(int(torch.argmax(e.amax(dim=0))), e.shape[1:])
        assert bool(m[:, brightest[0], brightest[1]].all())  # the stripe covers the peak


def test_random_gap_mask_through_a_point():
    for seed in range(20):
        mask = random_gap_mask((8, 32, 32), np.random.default_rng(seed), through=(20, 7))
        assert mask[:, 20, 7].all()
        runs = dead_column_runs(mask[0])
        assert any(start <= 7 < stop for start, stop in runs)


def test_amplitude_term_zero_at_target_and_weighs_the_peak():
    target = torch.zeros((2, 1, 8, 8, 8))
    target[:, :, :, 4, 4] = 1.0  # the peak: log1p(counts) / scale = 1
    scale = torch.tensor([np.log1p(1e4), np.log1p(1e4)], dtype=torch.float32)
    gap = torch.zeros_like(target, dtype=torch.bool)
    gap[:, :, :, :, 3:6] = True
    assert float(amplitude_l1(target, target, gap, scale)) == pytest.approx(0.0, abs=1e-3)
    dim_peak = target.clone()
    dim_peak[:, :, :, 4, 4] = 0.9  # 2.5x too dark in counts, at the peak only
    dark_edge = target.clone()
    dark_edge[:, :, :, 0, 3] = 0.3  # a dim voxel 16x too bright
    assert amplitude_l1(dim_peak, target, gap, scale) > 5 * amplitude_l1(
        dark_edge, target, gap, scale
    )
    loss, parts = gap_loss(dim_peak, target, gap, amplitude_weight=1.0, scale=scale)
    assert parts["amplitude"] > 0 and float(loss) > parts["l1"]
    with pytest.raises(ValueError, match="normalisation scales"):
        gap_loss(dim_peak, target, gap, amplitude_weight=1.0)


def history(out_dir) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "history.jsonl").read_text().splitlines()]


def small_config(patches, out_dir, **changes) -> TrainConfig:
    fields = {
        "data": str(patches),
        "out_dir": str(out_dir),
        "steps": 4,
        "batch_size": 2,
        "steps_per_epoch": 2,
        "validation_volumes": 2,
        "base_channels": 4,
        "threads": 1,
    }
    return TrainConfig(**{**fields, **changes})


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # train() sets it from its config


@pytest.mark.slow
@pytest.mark.usefixtures("keep_threads")
def test_train_end_to_end_and_resume(patches, tmp_path, monkeypatch):
    import bcdi_online.training._train as train_module

    out = tmp_path / "run"
    config = small_config(patches, out)
    # interrupt the first run during step 3, after the step-2 checkpoint
    real_loss, calls = train_module.gap_loss, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "gap_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    assert [r["step"] for r in history(out)] == [2]
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2
    monkeypatch.setattr(train_module, "gap_loss", real_loss)

    best = train(config)  # resumes at step 2
    assert best == out / "best.pt" and best.exists() and (out / "last.pt").exists()
    records = history(out)
    assert [r["step"] for r in records] == [2, 4]
    assert all(np.isfinite(r["loss"]) and r["val_l1_64"] >= 0 for r in records)
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 4
    model = load_model(best, device="cpu")
    assert model.config == {"base_channels": 4}

    # more steps than the finished run: continues from 4 with a stretched schedule
    train(small_config(patches, out, steps=6))
    assert [r["step"] for r in history(out)] == [2, 4, 6]


def test_train_rejects_bad_split(patches, tmp_path):
    with pytest.raises(ValueError, match="validation_volumes"):
        train(small_config(patches, tmp_path / "bad", validation_volumes=6))


@pytest.mark.slow
@pytest.mark.usefixtures("keep_threads")
def test_train_init_from_starts_at_the_given_weights(patches, tmp_path):
    torch.manual_seed(12345)  # not the seed train() initialises with
    start = save_model(GapUNet(base_channels=4), tmp_path / "start.pt")
    fresh = train(small_config(patches, tmp_path / "fresh", steps=2, lr=1e-12))
    warm = train(small_config(patches, tmp_path / "warm", steps=2, lr=1e-12, init_from=str(start)))
    start_weights = load_model(start, device="cpu").state_dict()
    warm_weights = load_model(warm, device="cpu").state_dict()
    fresh_weights = load_model(fresh, device="cpu").state_dict()
    name = "head.weight"
    assert torch.allclose(warm_weights[name], start_weights[name], atol=1e-6)
    assert not torch.allclose(fresh_weights[name], start_weights[name], atol=1e-6)
