"""Model checkpoints: ``{"config": constructor kwargs, "state_dict": ...}``, loaded safely."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from .._errors import ModelError
from ._unet import GapUNet

#: The weights shipped with the package (see ``weights/MODEL_CARD.md``).
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "gap_unet.pt"


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def save_model(model: GapUNet, path: str | Path, **extra: Any) -> Path:
    """Save a model as ``{"config", "state_dict", **extra}`` (tensors and plain values only).

    Parameters
    ----------
    model : GapUNet
        Model to save.
    path : str or Path
        Output file.
    **extra
        Plain values to store beside (e.g. training step, metrics).
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"config": dict(model.config), "state_dict": state, **extra}, path)
    return path


def load_model(
    path: str | Path | None = None, device: str | torch.device | None = None
) -> GapUNet:
    """Load a :class:`GapUNet` checkpoint with ``weights_only=True``, ready for inference.

    Parameters
    ----------
    path : str or Path, optional
        Checkpoint; default the shipped weights.
    device : str or torch.device, optional
        Target device; default CUDA when available, else CPU.

    Returns
    -------
    GapUNet
        In eval mode, on ``device``.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise ModelError(f"model checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = GapUNet(**checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise ModelError(f"cannot load model checkpoint {str(path)!r}: {err}") from err
    return model.to(device if device is not None else default_device()).eval()


def model_sha256(path: str | Path | None = None) -> str:
    """SHA-256 of a checkpoint file (default: the shipped weights), for provenance."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    return hashlib.sha256(path.read_bytes()).hexdigest()
