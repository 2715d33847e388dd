"""The gap-filling 3D U-Net, its normalisation and checkpoints."""

from __future__ import annotations

from ._checkpoint import DEFAULT_WEIGHTS, default_device, load_model, model_sha256, save_model
from ._normalise import denormalise, linear_prefill, normalise
from ._predictor import PRECISIONS, ModelPredictor
from ._unet import DilatedBlock, GapUNet

__all__ = [
    "DEFAULT_WEIGHTS",
    "PRECISIONS",
    "DilatedBlock",
    "GapUNet",
    "ModelPredictor",
    "default_device",
    "denormalise",
    "linear_prefill",
    "load_model",
    "model_sha256",
    "normalise",
    "save_model",
]
