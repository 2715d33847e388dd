"""Patch normalisation: log1p, per-patch scaling, linear pre-fill of the gap — and its inverse.

Forward, for a patch ``p`` of counts with gap mask ``m``:

1. ``l = log1p(p)`` (photon counts span 0..1e6: the log makes fringes of every order
   comparable);
2. ``s = max(1, max(l[~m]))`` per patch, ``x = l / s`` so measured voxels lie in [0, 1];
3. gap voxels of ``x`` are replaced by a linear interpolation across the gap (last axis,
   then the middle axis where the last has no measured voxel on a line, e.g. at a
   crossing; else 0).

Inverse: ``counts = expm1(clamp(y, 0) * s)``, exact for measured voxels up to float32
rounding (the tiler keeps measured voxels from the raw data anyway).
"""

from __future__ import annotations

import torch


def _fill_along(
    x: torch.Tensor, valid: torch.Tensor, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation of invalid voxels between the nearest valid ones along ``dim``.

    Returns the filled tensor and a mask of voxels that could be filled (a valid voxel on
    at least one side; one-sided voxels copy their neighbour).
    """
    n = x.shape[dim]
    shape = [1] * x.ndim
    shape[dim] = n
    idx = torch.arange(n, device=x.device).view(shape).expand_as(x)
    prev_idx = torch.where(valid, idx, torch.full_like(idx, -1)).cummax(dim=dim).values
    flipped = torch.where(valid, n - 1 - idx, torch.full_like(idx, -1)).flip(dim)
    next_idx = n - 1 - flipped.cummax(dim=dim).values.flip(dim)
    has_prev = prev_idx >= 0
    has_next = next_idx <= n - 1
    prev_val = torch.gather(x, dim, prev_idx.clamp(min=0))
    next_val = torch.gather(x, dim, next_idx.clamp(max=n - 1))
    span = (next_idx - prev_idx).clamp(min=1).to(x.dtype)
    t = (idx - prev_idx).to(x.dtype) / span
    both = prev_val + t * (next_val - prev_val)
    filled = torch.where(has_prev & has_next, both, torch.where(has_prev, prev_val, next_val))
    ok = has_prev | has_next
    return torch.where(valid, x, torch.where(ok, filled, torch.zeros_like(x))), ok | valid


def linear_prefill(x: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
    """Fill gap voxels by linear interpolation across the gap.

    Parameters
    ----------
    x : (B, D, H, W) Tensor
        Values; gap voxels are ignored.
    gap : (B, D, H, W) bool Tensor
        True at gap voxels.

    Returns
    -------
    (B, D, H, W) Tensor
        ``x`` outside the gap; interpolation along W, else along H, else 0 inside.
    """
    valid = ~gap
    across, ok = _fill_along(x, valid, dim=-1)
    along, _ = _fill_along(x, valid, dim=-2)
    return torch.where(ok, across, along)


def normalise(patches: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn count patches into model input.

    Parameters
    ----------
    patches : (B, D, H, W) Tensor
        Counts (any real dtype); gap voxels are ignored.
    masks : (B, D, H, W) bool Tensor
        True at gap voxels.

    Returns
    -------
    x : (B, 2, D, H, W) float32 Tensor
        Normalised, pre-filled log intensity and the mask.
    scale : (B,) float32 Tensor
        Per-patch scale ``s`` needed by :func:`denormalise`.
    """
    log = torch.log1p(patches.float().clamp(min=0))
    measured = torch.where(masks, torch.zeros_like(log), log)
    scale = measured.flatten(1).amax(dim=1).clamp(min=1.0)
    x = measured / scale.view(-1, 1, 1, 1)
    x = linear_prefill(x, masks)
    return torch.stack([x, masks.float()], dim=1), scale


def denormalise(y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Invert :func:`normalise` on model output.

    Parameters
    ----------
    y : (B, 1, D, H, W) Tensor
        Model output, normalised log intensity.
    scale : (B,) Tensor
        Scales returned by :func:`normalise`.

    Returns
    -------
    (B, D, H, W) float32 Tensor
        Non-negative counts.
    """
    return torch.expm1(y[:, 0].clamp(min=0) * scale.view(-1, 1, 1, 1)).float()
