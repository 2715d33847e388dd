"""Training data generation, losses and the resumable training loop."""

from __future__ import annotations

from ._dataset import PatchSet, generate_training_set
from ._finetune import FinetuneReport, finetune
from ._losses import amplitude_l1, gap_loss, ssim3d
from ._masks import random_gap_mask
from ._train import TrainConfig, train, validate

__all__ = [
    "FinetuneReport",
    "PatchSet",
    "TrainConfig",
    "amplitude_l1",
    "finetune",
    "gap_loss",
    "generate_training_set",
    "random_gap_mask",
    "ssim3d",
    "train",
    "validate",
]
