"""The public engine: :class:`GapInpainter` and :func:`inpaint`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._errors import ConfigurationError, ConfigurationTypeError
from ._batch import BatchSize
from ._checks import check_volume
from ._guard import OvershootGuard
from ._plan import WindowPlan
from ._stream import GapStream, Predictor

#: The guard :class:`GapInpainter` and :func:`inpaint` apply unless told otherwise.
DEFAULT_GUARD = OvershootGuard()


def _as_predictor(model: Any, device: str | torch.device | None, precision: str) -> Predictor:
    """Turn a checkpoint path, a module, a predictor or None (shipped weights) into a predictor."""
    from ..model import ModelPredictor, load_model  # the engine imports without torch models

    if model is None or isinstance(model, str | Path):
        return ModelPredictor(load_model(model, device), device, precision=precision)
    if isinstance(model, torch.nn.Module):
        return ModelPredictor(model, device, precision=precision)  # type: ignore[arg-type]
    if callable(model):
        if precision != "fp32":
            raise ConfigurationError(
                f"precision {precision!r} applies to a model the inpainter wraps, not to a "
                f"ready predictor ({type(model).__name__}): set it on the predictor"
            )
        return model
    raise ConfigurationTypeError(
        f"model must be a path, a GapUNet, a predictor or None, not {type(model)}"
    )


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
        Windows per model call; default 16 on CPU and, on CUDA, what half the free
        device memory holds (:meth:`~bcdi_online.model.ModelPredictor.suggest_batch_size`,
        64 for other predictors). Halved on out-of-memory, once for all the inpainter's
        streams (:attr:`batch`).
    plan : WindowPlan, optional
        Window settings; ``plan.size_multiple`` follows the model when it declares one.
    zero_gap : bool
        Zero gap voxels before prediction (False only to test the tiler).
    precision : {"fp32", "bf16", "fp16"}
        Forward pass of a model the inpainter wraps in float32 (default) or under
        bfloat16 / float16 autocast (see :class:`~bcdi_online.model.ModelPredictor`).
    guard : OvershootGuard or None
        Bound on the filled voxels from the measured voxels around the gap, applied
        to the blended fill (offline and streamed alike); default
        :data:`DEFAULT_GUARD`, None for the model's fill as it is.

    Attributes
    ----------
    batch : BatchSize
        The batch size in use (``batch.value``), shared by every stream: an
        out-of-memory error halves it for the later calls and runs too.

    Examples
    --------
    A 32-step scan of 64 x 64 frames with a 6 px dead column, filled offline and as a
    stream of frames (the shipped model, on the CPU):

    >>> import numpy as np
    >>> data = np.random.default_rng(0).poisson(5.0, (32, 64, 64)).astype(np.float32)
    >>> mask = np.zeros((64, 64), dtype=bool)
    >>> mask[:, 30:36] = True
    >>> inpainter = GapInpainter(device="cpu")
    >>> filled = inpainter(data, mask)
    >>> filled.shape, bool(np.array_equal(filled[:, ~mask], data[:, ~mask]))
    ((32, 64, 64), True)
    >>> stream = inpainter.stream(mask)
    >>> for frame in data:
    ...     final = stream.add_frames(frame[None])  # the frames final so far, a range
    >>> bool(np.allclose(stream.finish(), filled, rtol=1e-4, atol=1e-4))
    True
    """

    def __init__(
        self,
        model: Any = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        plan: WindowPlan | None = None,
        zero_gap: bool = True,
        precision: str = "fp32",
        guard: OvershootGuard | None = DEFAULT_GUARD,
    ) -> None:
        self.predictor = _as_predictor(model, device, precision)
        multiple = int(getattr(self.predictor, "size_multiple", 1))
        self.plan = plan or WindowPlan(size_multiple=max(multiple, 1))
        if batch_size is None:
            suggest = getattr(self.predictor, "suggest_batch_size", None)
            on_gpu = str(getattr(self.predictor, "device", "cpu")).startswith("cuda")
            batch_size = int(suggest()) if callable(suggest) else (64 if on_gpu else 16)
        self.batch = BatchSize(batch_size)
        self.zero_gap = zero_gap
        self.guard = guard

    @property
    def batch_size(self) -> int:
        """The batch size asked for (or chosen); :attr:`batch` holds the one in use."""
        return self.batch.requested

    def stream(self, mask: np.ndarray, *, expected_frames: int | None = None) -> GapStream:
        """Start an incremental run for frames with the dead pixels ``mask`` (ny, nx).

        ``expected_frames``, the planned frame count when known, lets the stream run the
        last full windows before the scan ends (see :class:`GapStream`).
        """
        return GapStream(
            self.predictor,
            np.asarray(mask, bool),
            self.plan,
            self.batch,
            zero_gap=self.zero_gap,
            expected_frames=expected_frames,
            guard=self.guard,
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
    precision: str = "fp32",
    guard: OvershootGuard | None = DEFAULT_GUARD,
) -> np.ndarray:
    """Fill the detector gaps of a rocking scan (see :class:`GapInpainter`).

    Parameters
    ----------
    data : (n_frames, ny, nx) ndarray
        Counts, any real dtype.
    mask : (ny, nx) or (n_frames, ny, nx) bool ndarray
        True = dead pixel.
    model, device, batch_size, precision, guard
        As for :class:`GapInpainter`.

    Returns
    -------
    (n_frames, ny, nx) float32 ndarray
    """
    return GapInpainter(
        model, device=device, batch_size=batch_size, precision=precision, guard=guard
    )(data, mask)
