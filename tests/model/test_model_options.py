"""Model options for GPUs, checked on the CPU: deeper models, autocast, channels-last."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bcdi_online.model import GapUNet, ModelPredictor, load_model, save_model


def test_deeper_model_round_trips_and_shipped_config_is_unchanged(tmp_path) -> None:
    assert GapUNet().config == {"base_channels": 16}  # the shipped checkpoints' config
    deeper = GapUNet(base_channels=8, blocks=2)
    assert deeper.config == {"base_channels": 8, "blocks": 2}
    assert sum(p.numel() for p in deeper.parameters()) > sum(
        p.numel() for p in GapUNet(base_channels=8).parameters()
    )
    loaded = load_model(save_model(deeper, tmp_path / "deeper.pt"), device="cpu")
    assert loaded.config == deeper.config
    x = torch.rand(1, 2, 16, 16, 16)
    x[:, 1] = (torch.arange(16) % 5 == 0).float()
    torch.testing.assert_close(loaded(x), deeper.eval()(x))
    # the shipped weights still load into the default architecture (same parameter names)
    assert load_model(device="cpu").config == {"base_channels": 16}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"base_channels": 0}, "base_channels 0"), ({"blocks": -1}, "blocks -1")],
)
def test_bad_model_settings_are_rejected(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        GapUNet(**kwargs)


def _windows(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    patches = torch.from_numpy(rng.poisson(50.0, (3, 32, 32, 32)).astype(np.float32))
    masks = torch.zeros(patches.shape, dtype=torch.bool)
    masks[..., 13:19] = True
    return patches, masks


def test_bf16_and_channels_last_stay_close_to_fp32() -> None:
    model = load_model(device="cpu")
    patches, masks = _windows()
    reference = ModelPredictor(model, "cpu")(patches, masks)
    assert reference.dtype == torch.float32
    channels_last = ModelPredictor(load_model(device="cpu"), "cpu", channels_last=True)
    torch.testing.assert_close(channels_last(patches, masks), reference, rtol=1e-4, atol=1e-3)
    bf16 = ModelPredictor(load_model(device="cpu"), "cpu", precision="bf16")
    out = bf16(patches, masks)
    assert out.dtype == torch.float32 and bool((out >= 0).all())
    gap = masks
    error = (torch.log1p(out[gap]) - torch.log1p(reference[gap])).abs()
    # bf16 keeps 8 significant bits: a few per cent of the normalised log intensity at most
    assert 0 < float(error.max()) < 0.1 and float(error.mean()) < 0.01


def test_unknown_precision_is_rejected() -> None:
    with pytest.raises(ValueError, match="precision 'fp8' is not one of"):
        ModelPredictor(GapUNet(base_channels=4), "cpu", precision="fp8")
