"""The public engine: :class:`GapInpainter` and :func:`inpaint`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._checks import check_volume
from ._plan import WindowPlan
from ._stream import GapStream, Predictor


def _as_predictor(model: Any, device: str | torch.device | None) -> Predictor:
    """Turn a checkpoint path, a module, a predictor or None (shipped weights) into a predictor."""
    from ..model import ModelPredictor, load_model  # the engine imports without torch models

    if model is None or isinstance(model, str | Path):
        return ModelPredictor(load_model(model, device), device)
    if isinstance(model, torch.nn.Module):
        return ModelPredictor(model, device)  # type: ignore[arg-type]
    if callable(model):
        return model
    raise TypeError(f"model must be a path, a GapUNet, a predictor or None, not {type(model)}")


class GapInpainter:
    """Fill detector-gap voxels of rocking scans, patch by patch, with a model held on a device.

    Parameters
    ----------
    model : str, Path, torch.nn.Module, callable or None
        Checkpoint path, :class:`~bcdi_online.model.GapUNet`, or any predictor
        ``(patches (B, D, H, W), masks (B, D, H, W)) -> counts``; default the shipped
        weights.
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    batch_size : int, optional
        Windows per model call; default 64 on CUDA, 16 on CPU (halved on out-of-memory).
    plan : WindowPlan, optional
        Window settings; ``plan.size_multiple`` follows the model when it declares one.
    zero_gap : bool
        Zero gap voxels before prediction (False only to test the tiler).

    Examples
    --------
    >>> inpainter = GapInpainter()                          # doctest: +SKIP
    >>> filled = inpainter(data, mask)                      # offline   # doctest: +SKIP
    >>> stream = inpainter.stream(mask)                     # live      # doctest: +SKIP
    >>> for frame in frames: stream.add_frames(frame[None]) # doctest: +SKIP
    >>> filled = stream.finish()                            # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        plan: WindowPlan | None = None,
        zero_gap: bool = True,
    ) -> None:
        self.predictor = _as_predictor(model, device)
        multiple = int(getattr(self.predictor, "size_multiple", 1))
        self.plan = plan or WindowPlan(size_multiple=max(multiple, 1))
        on_gpu = str(getattr(self.predictor, "device", "cpu")).startswith("cuda")
        self.batch_size = batch_size or (64 if on_gpu else 16)
        self.zero_gap = zero_gap

    def stream(self, mask: np.ndarray, *, expected_frames: int | None = None) -> GapStream:
        """Start an incremental run for frames with the dead pixels ``mask`` (ny, nx).

        ``expected_frames``, the planned frame count when known, lets the stream run the
        last full windows before the scan ends (see :class:`GapStream`).
        """
        return GapStream(
            self.predictor,
            np.asarray(mask, bool),
            self.plan,
            self.batch_size,
            zero_gap=self.zero_gap,
            expected_frames=expected_frames,
        )

    def __call__(self, data: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Inpaint a whole scan.

        Parameters
        ----------
        data : (n_frames, ny, nx) ndarray
            Counts, any real dtype; never modified.
        mask : (ny, nx) or (n_frames, ny, nx) bool ndarray
            True = dead pixel.

        Returns
        -------
        (n_frames, ny, nx) float32 ndarray
            ``data`` (cast) outside the mask; non-negative predictions inside.
        """
        frame_mask, volume_mask = check_volume(data, mask)
        if not frame_mask.any():
            return np.asarray(data, dtype=np.float32).copy()
        stream = self.stream(frame_mask)
        stream.add_frames(np.asarray(data), volume_mask)
        return stream.finish()


def inpaint(
    data: np.ndarray,
    mask: np.ndarray,
    *,
    model: Any = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Fill the detector gaps of a rocking scan (see :class:`GapInpainter`).

    Parameters
    ----------
    data : (n_frames, ny, nx) ndarray
        Counts, any real dtype.
    mask : (ny, nx) or (n_frames, ny, nx) bool ndarray
        True = dead pixel.
    model, device, batch_size
        As for :class:`GapInpainter`.

    Returns
    -------
    (n_frames, ny, nx) float32 ndarray
    """
    return GapInpainter(model, device=device, batch_size=batch_size)(data, mask)
