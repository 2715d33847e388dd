"""The model as the tiler sees it: counts in, counts out."""

from __future__ import annotations

import torch

from .._errors import ConfigurationError
from ._checkpoint import default_device
from ._normalise import denormalise, normalise
from ._unet import GapUNet

#: Inference precisions: the autocast dtype of the model's forward pass (None = float32).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}

#: Window (D, H, W) of the batch-size probe: the widest common one (38 px gaps).
PROBE_WINDOW = (32, 32, 64)


class ModelPredictor:
    """Callable ``(patches, masks) -> counts`` wrapping a :class:`GapUNet`.

    Normalisation and its inverse always run in float32; ``precision`` applies to the
    network's forward pass only (``torch.autocast``). On CUDA, host tensors are staged
    through pinned memory (torch's caching host allocator reuses those buffers) and
    copied without blocking in both directions; the call returns once its result is on
    the host.

    Parameters
    ----------
    model : GapUNet
        Trained model (moved to ``device`` and put in eval mode).
    device : str or torch.device, optional
        Where to run; default CUDA when available, else CPU.
    precision : {"fp32", "bf16", "fp16"}
        Forward pass in float32 (default) or under bfloat16 / float16 autocast (for
        GPUs; the accuracy cost is measured by the ``gpu`` tests, see
        ``docs/how-to/gpu.md``).
    channels_last : bool
        Hold weights and inputs in the ``channels_last_3d`` memory format (can be
        faster for cuDNN under autocast).
    """

    def __init__(
        self,
        model: GapUNet,
        device: str | torch.device | None = None,
        *,
        precision: str = "fp32",
        channels_last: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigurationError(f"precision {precision!r} is not one of {sorted(PRECISIONS)}")
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        if channels_last:
            # Module.to takes memory_format; torch's type stubs do not say so
            self.model = self.model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
        self.size_multiple = model.size_multiple
        self.precision, self.channels_last = precision, channels_last
        self._autocast = PRECISIONS[precision]

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda" and tensor.device.type == "cpu":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

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
            x, scale = normalise(self._to_device(patches), self._to_device(masks))
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            # no cast cache: each weight is cast once per call anyway, and a cache that
            # outlives the call would break CUDA-graph capture of it
            with torch.autocast(
                self.device.type,
                dtype=self._autocast,
                enabled=self._autocast is not None,
                cache_enabled=False,
            ):
                y = self.model(x)
            counts = denormalise(y.float(), scale)
            if counts.device == patches.device:
                return counts
            if self.device.type == "cuda" and patches.device.type == "cpu":
                host = counts.to("cpu", non_blocking=True)  # into pinned memory
                torch.cuda.current_stream(self.device).synchronize()
                return host
            return counts.to(patches.device)

    def suggest_batch_size(self, *, fraction: float = 0.5, limit: int = 1024) -> int:
        """Windows per call that fit in ``fraction`` of the free GPU memory (16 off CUDA).

        On CUDA, runs the model once on two :data:`PROBE_WINDOW` windows to measure the
        memory one window needs (this resets the device's peak-memory statistics).

        Parameters
        ----------
        fraction : float
            Share of the currently free device memory to plan for.
        limit : int
            Upper bound (larger batches no longer gain speed).

        Returns
        -------
        int
            Between 1 and ``limit``.
        """
        if self.device.type != "cuda":
            return 16
        patches = torch.zeros((2, *PROBE_WINDOW), device=self.device)
        masks = torch.zeros((2, *PROBE_WINDOW), dtype=torch.bool, device=self.device)
        masks[..., 26:38] = True
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        self(patches, masks)
        torch.cuda.synchronize(self.device)
        per_window = max(1.0, (torch.cuda.max_memory_allocated(self.device) - before) / 2)
        free, _ = torch.cuda.mem_get_info(self.device)
        return int(max(1, min(limit, fraction * free // per_window)))
