"""Model checkpoints: ``{"config": constructor kwargs, "state_dict": ...}``, loaded safely."""

from __future__ import annotations

import hashlib
import pickle
import warnings
import zipfile
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


_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
"""Start of a legacy (pre-zip) ``torch.save`` file: the pickled magic number."""

_SIGNATURES = {
    b"\x80": "a plain Python pickle",
    b"\x93NUMPY": "a NumPy .npy file",
    b"\x89HDF": "an HDF5 file",
    b"PK": "a zip archive that is not a PyTorch checkpoint",
}


def _not_a_checkpoint(path: Path) -> str | None:
    """Why ``path`` cannot be a ``torch.save`` file (a zip archive), or None if it may be."""
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    head = path.read_bytes()[:16]
    if zipfile.is_zipfile(path) or head.startswith(_LEGACY_MAGIC):
        return None
    kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
    if kind is None:
        try:
            head.decode("ascii")
            kind = "text"
        except UnicodeDecodeError:
            kind = "unknown binary data"
    return f"is not a PyTorch checkpoint ({size} bytes of {kind}; torch.save writes a zip)"


def _one_line(err: BaseException, limit: int = 240) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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

    Raises
    ------
    ModelError
        With a one-line reason: missing, empty or not a PyTorch file, objects other
        than tensors and plain values (refused unread), not a ``{"config",
        "state_dict"}`` checkpoint of this model.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    where = f"model checkpoint {str(path)!r}"
    if not path.is_file():
        raise ModelError(f"{where} does not exist")
    problem = _not_a_checkpoint(path)
    if problem is not None:
        raise ModelError(f"{where} {problem}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it then refuses
            warnings.simplefilter("ignore", UserWarning)
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = next(
            (ln for ln in lines if "WeightsUnpickler error" in ln), lines[-1] if lines else ""
        )
        reason = reason.removeprefix("WeightsUnpickler error: ").split(" Please use")[0]
        detail = _one_line(Exception(reason))
        raise ModelError(
            f"{where} holds objects other than tensors and plain values, refused unread "
            f"(weights_only=True): {detail}"
        ) from None
    except Exception as err:  # truncated zip, corrupt records, ...
        raise ModelError(f"{where} cannot be read: {_one_line(err)}") from None
    if not isinstance(checkpoint, dict) or not {"config", "state_dict"} <= checkpoint.keys():
        keys = sorted(map(str, checkpoint)) if isinstance(checkpoint, dict) else None
        raise ModelError(
            f"{where} is not a bcdi-online checkpoint: expected a dict with 'config' and "
            f"'state_dict', got {type(checkpoint).__name__}"
            + (f" with keys {keys}" if keys else "")
        )
    try:
        model = GapUNet(**checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise ModelError(f"{where} does not fit GapUNet: {_one_line(err)}") from None
    return model.to(device if device is not None else default_device()).eval()


def model_sha256(path: str | Path | None = None) -> str:
    """SHA-256 of a checkpoint file (default: the shipped weights), for provenance."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    return hashlib.sha256(path.read_bytes()).hexdigest()
