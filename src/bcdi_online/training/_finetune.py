"""Self-supervised fine-tuning on one measured scan: hide synthetic stripes in measured data."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .._errors import InputDataError
from ..model import GapUNet, normalise
from ._losses import gap_loss
from ._masks import random_gap_mask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneReport:
    """Gap error on held-out patches of the scan, before and after fine-tuning.

    Attributes
    ----------
    before, after : float
        Mean absolute error in normalised log units on hidden gap voxels.
    linear : float
        The same error for the linear pre-fill, as a baseline.
    steps : int
        Optimiser steps taken.
    n_train, n_val : int
        Measured patches used for training and held out.
    """

    before: float
    after: float
    linear: float
    steps: int
    n_train: int
    n_val: int


def _measured_patches(
    data: np.ndarray,
    mask: np.ndarray,
    size: tuple[int, int, int],
    rng: np.random.Generator,
    n: int,
) -> torch.Tensor:
    """Random patches, weighted towards bright regions, that contain no dead pixel."""
    nf, ny, nx = data.shape
    d, h, w = size
    if nf < d or ny < h or nx < w:
        raise InputDataError(f"scan shape {data.shape} is smaller than a patch {size}")
    frame_sum = data.sum(axis=0).astype(np.float64)
    peak = np.unravel_index(np.argmax(frame_sum), frame_sum.shape)
    patches = []
    for _ in range(50 * n):
        z = int(rng.integers(0, nf - d + 1))
        y = int(np.clip(peak[0] + rng.normal(0, ny / 5) - h / 2, 0, ny - h))
        x = int(np.clip(peak[1] + rng.normal(0, nx / 5) - w / 2, 0, nx - w))
        if mask[y : y + h, x : x + w].any():
            continue
        patch = data[z : z + d, y : y + h, x : x + w]
        if patch.max() < 2:
            continue
        patches.append(patch.astype(np.float32))
        if len(patches) == n:
            break
    if len(patches) < 4:
        raise InputDataError(
            f"only {len(patches)} gap-free patches of {size} with signal found in a scan of "
            f"shape {data.shape}: not enough to fine-tune"
        )
    return torch.from_numpy(np.stack(patches))


def _shape3(patches: torch.Tensor) -> tuple[int, int, int]:
    _, d, h, w = patches.shape
    return int(d), int(h), int(w)


def _batch(patches: torch.Tensor, rng: np.random.Generator):
    masks = torch.from_numpy(
        np.stack([random_gap_mask(_shape3(patches), rng) for _ in range(len(patches))])
    )
    x, scale = normalise(patches, masks)
    target = (torch.log1p(patches) / scale.view(-1, 1, 1, 1)).unsqueeze(1)
    return x, target, masks.unsqueeze(1)


def _errors(model: GapUNet, val: torch.Tensor, seed: int) -> tuple[float, float]:
    device = next(model.parameters()).device
    x, target, gap = (t.to(device) for t in _batch(val, np.random.default_rng(seed)))
    model.eval()
    with torch.inference_mode():
        pred = model(x)
    n = gap.sum().clamp(min=1)
    return (
        float(((pred - target).abs() * gap).sum() / n),
        float(((x[:, :1] - target).abs() * gap).sum() / n),
    )


def finetune(
    model: GapUNet,
    data: np.ndarray,
    mask: np.ndarray,
    *,
    steps: int = 200,
    batch_size: int = 8,
    lr: float = 2e-4,
    n_patches: int = 96,
    seed: int = 0,
) -> FinetuneReport:
    """Adapt ``model`` in place to one measured scan.

    Gap-free patches are cut from the scan (around the Bragg peak); stripes like detector
    gaps are hidden in them and the model learns to restore the measured counts there, as
    in the thesis' fine-tuning section. A quarter of the patches is held out to report the
    error before and after.

    Parameters
    ----------
    model : GapUNet
        Model to adapt (modified in place, left in eval mode).
    data : (n_frames, ny, nx) ndarray
        Measured counts.
    mask : (ny, nx) bool ndarray
        The scan's real dead pixels; patches avoid them.
    steps, batch_size, lr : int, int, float
        Optimiser settings (Adam).
    n_patches : int
        Gap-free patches to cut.
    seed : int
        Seed of patch and stripe draws.

    Returns
    -------
    FinetuneReport
    """
    if data.ndim != 3 or mask.shape != data.shape[1:]:
        raise InputDataError(f"data shape {data.shape} and mask shape {mask.shape} do not fit")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    patches = _measured_patches(data, mask, (32, 32, 32), rng, n_patches)
    n_val = max(2, len(patches) // 4)
    val, train = patches[:n_val], patches[n_val:]
    device = next(model.parameters()).device
    before, linear = _errors(model, val, seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        pick = torch.from_numpy(rng.integers(0, len(train), batch_size))
        x, target, gap = (t.to(device) for t in _batch(train[pick], rng))
        loss, _ = gap_loss(model(x), target, gap)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            logger.info("finetune step %d loss %.4f", step, loss.item())
    after, _ = _errors(model, val, seed + 1)
    model.eval()
    return FinetuneReport(before, after, linear, steps, len(train), n_val)
