"""The model as the tiler sees it: counts in, counts out."""

from __future__ import annotations

import torch

from ._checkpoint import default_device
from ._normalise import denormalise, normalise
from ._unet import GapUNet


class ModelPredictor:
    """Callable ``(patches, masks) -> counts`` wrapping a :class:`GapUNet`.

    Parameters
    ----------
    model : GapUNet
        Trained model (moved to ``device`` and put in eval mode).
    device : str or torch.device, optional
        Where to run; default CUDA when available, else CPU.
    """

    def __init__(self, model: GapUNet, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        self.size_multiple = model.size_multiple

    def __call__(self, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Predict counts in the gap.

        Parameters
        ----------
        patches : (B, D, H, W) Tensor
            Counts, gap voxels ignored.
        masks : (B, D, H, W) bool Tensor
            True at gap voxels.

        Returns
        -------
        (B, D, H, W) float32 Tensor
            Predicted counts (on the input's device), non-negative.
        """
        with torch.inference_mode():
            x, scale = normalise(patches.to(self.device), masks.to(self.device))
            counts = denormalise(self.model(x), scale)
        return counts.to(patches.device)
