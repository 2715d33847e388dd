"""The gap-filling 3D U-Net, its normalisation and checkpoints."""

from __future__ import annotations

from ._checkpoint import DEFAULT_WEIGHTS, load_model, model_sha256, save_model
from ._normalise import denormalise, linear_prefill, normalise
from ._predictor import PRECISIONS, ModelPredictor
from ._unet import GapUNet

# What users need (the network, its I/O contract, checkpoints); its blocks and the
# device choice are internal.
__all__ = [
    "DEFAULT_WEIGHTS",
    "PRECISIONS",
    "GapUNet",
    "ModelPredictor",
    "denormalise",
    "linear_prefill",
    "load_model",
    "model_sha256",
    "normalise",
    "save_model",
]
