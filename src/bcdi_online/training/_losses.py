"""Training loss: gap error + SSIM + gradient term (the thesis' ingredients)."""

from __future__ import annotations

import torch
from torch.nn import functional


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


def gap_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    gap: torch.Tensor,
    *,
    ssim_weight: float = 0.2,
    gradient_weight: float = 0.5,
    scale: torch.Tensor | None = None,
    photon_weight: float = 0.0,
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
    scale : (B,) Tensor, optional
        Per-patch normalisation scale (``log1p(counts) / scale``), needed by the photon
        term.
    photon_weight : float
        Weight of the photon-total term: mean over patches of ``|log1p(P) - log1p(T)|``
        with P and T the predicted and true photons in the patch's gap (keeps wide
        gaps from being over-filled). 0 leaves it out.

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
    if photon_weight:
        if scale is None:
            raise ValueError("the photon term needs the per-patch scale")
        s = scale.view(-1, 1, 1, 1, 1)
        dims = (1, 2, 3, 4)
        photons_pred = (torch.expm1(pred.clamp(min=0) * s) * g).sum(dim=dims)
        photons_true = (torch.expm1(target.clamp(min=0) * s) * g).sum(dim=dims)
        photon = (torch.log1p(photons_pred) - torch.log1p(photons_true)).abs().mean()
        loss = loss + photon_weight * photon
        parts["photon"] = photon.item()
    return loss, parts
