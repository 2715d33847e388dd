"""Training loss: gap error + SSIM + gradient term (the thesis' ingredients)."""

from __future__ import annotations

import torch
from torch.nn import functional

from .._errors import ConfigurationError


def _local_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    return functional.avg_pool3d(x, k, stride=1, padding=k // 2, count_include_pad=False)


def ssim3d(a: torch.Tensor, b: torch.Tensor, *, window: int = 5) -> torch.Tensor:
    """Structural similarity map of two (B, 1, D, H, W) volumes with values in ~[0, 1].

    A box window (``window`` voxels a side) replaces the usual Gaussian, for speed.
    """
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _local_mean(a, window), _local_mean(b, window)
    var_a = _local_mean(a * a, window) - mu_a**2
    var_b = _local_mean(b * b, window) - mu_b**2
    cov = _local_mean(a * b, window) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )


def amplitude_l1(
    pred: torch.Tensor, target: torch.Tensor, gap: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """L1 error of the amplitudes ``sqrt(counts)`` on the gap, relative to each patch's peak.

    The log-space terms weigh every decade alike; phase retrieval fits amplitudes, where
    the bright voxels (the Bragg peak's core when the gap runs through it) dominate.
    Each patch's error is divided by its brightest true amplitude, so patches weigh
    alike.

    Parameters
    ----------
    pred, target : (B, 1, D, H, W) Tensor
        Predicted and true normalised log intensity (``log1p(counts) / scale``).
    gap : (B, 1, D, H, W) bool Tensor
    scale : (B,) Tensor
        The patches' normalisation scales.
    """
    s = scale.view(-1, 1, 1, 1, 1)
    # clamp the exponent: a wild prediction early in training must not overflow
    a_pred = torch.sqrt(torch.expm1((pred.clamp(min=0) * s).clamp(max=30.0)) + 1e-2)
    a_true = torch.sqrt(torch.expm1(target * s) + 1e-2)
    peak = a_true.amax(dim=(1, 2, 3, 4), keepdim=True)
    g = gap.float()
    per_patch = ((a_pred - a_true).abs() / peak * g).sum(dim=(1, 2, 3, 4))
    return (per_patch / g.sum(dim=(1, 2, 3, 4)).clamp(min=1.0)).mean()


def gap_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    gap: torch.Tensor,
    *,
    ssim_weight: float = 0.2,
    gradient_weight: float = 0.5,
    amplitude_weight: float = 0.0,
    scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss on normalised log intensities, concentrated on the gap.

    Parameters
    ----------
    pred, target : (B, 1, D, H, W) Tensor
        Predicted and true normalised log intensity.
    gap : (B, 1, D, H, W) bool Tensor
        Gap voxels.
    ssim_weight, gradient_weight : float
        Weights of ``1 - SSIM`` (averaged over gap voxels) and of the L1 error of
        finite differences along every axis (on differences touching the gap).
    amplitude_weight : float
        Weight of :func:`amplitude_l1` (needs ``scale``); 0 leaves it out.
    scale : (B,) Tensor, optional
        The patches' normalisation scales.

    Returns
    -------
    loss : scalar Tensor
    parts : dict of str to float
        The unweighted terms, for logging.
    """
    g = gap.float()
    n_gap = g.sum().clamp(min=1.0)
    l1 = ((pred - target).abs() * g).sum() / n_gap
    ssim = (ssim3d(pred, target) * g).sum() / n_gap
    grad = pred.new_zeros(())
    for dim in (2, 3, 4):
        dp, dt = torch.diff(pred, dim=dim), torch.diff(target, dim=dim)
        touch = torch.maximum(
            g.narrow(dim, 0, g.shape[dim] - 1), g.narrow(dim, 1, g.shape[dim] - 1)
        )
        grad = grad + ((dp - dt).abs() * touch).sum() / touch.sum().clamp(min=1.0)
    loss = l1 + ssim_weight * (1 - ssim) + gradient_weight * grad / 3
    parts = {"l1": l1.item(), "ssim": ssim.item(), "grad": grad.item() / 3}
    if amplitude_weight > 0:
        if scale is None:
            raise ConfigurationError("the amplitude term needs the patches' normalisation scales")
        amplitude = amplitude_l1(pred, target, gap, scale)
        loss = loss + amplitude_weight * amplitude
        parts["amplitude"] = amplitude.item()
    return loss, parts
