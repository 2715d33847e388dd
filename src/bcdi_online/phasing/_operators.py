"""Phase-retrieval operators: small pure functions on batched complex tensors.

Every object ``psi`` is ``(n_starts, nz, ny, nx)`` complex64 in FFT layout (origin at
index 0, as :func:`torch.fft.fftn` wants it); every reciprocal-space array (amplitudes,
masks, bounds) is ``(nz, ny, nx)`` in the same layout and broadcasts over the starts.
A recipe composes them (:mod:`._engine`), as PyNX composes ``ER**200 * HIO**600``.
"""

from __future__ import annotations

import torch

#: Axes of the 3D grid in a batched tensor.
DIMS = (-3, -2, -1)
#: Amplitudes below this are treated as zero when a new modulus is imposed.
TINY = 1e-12


def to_fourier(psi: torch.Tensor) -> torch.Tensor:
    """Return the far field of the objects: ``(n, nz, ny, nx)`` complex -> the same."""
    return torch.fft.fftn(psi, dim=DIMS)


def to_real(field: torch.Tensor) -> torch.Tensor:
    """Return the objects of far fields: ``(n, nz, ny, nx)`` complex -> the same."""
    return torch.fft.ifftn(field, dim=DIMS)


def impose_modulus(
    field: torch.Tensor,
    amplitude: torch.Tensor,
    measured: torch.Tensor,
    *,
    lower: torch.Tensor | None = None,
    upper: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fourier-modulus projection with a rule for unmeasured voxels (in place).

    Measured voxels get ``amplitude``. Unmeasured voxels keep their computed modulus
    clamped into ``[lower, upper]`` where bounds are given: equal bounds impose a value
    (zeroed voxels, an imposed fill), no bounds leave them free, a band around an
    estimate keeps them near it (the soft constraint).

    Parameters
    ----------
    field : (n, nz, ny, nx) complex Tensor
        Far fields; modified in place and returned.
    amplitude : (nz, ny, nx) float Tensor
        Measured amplitudes (square roots of counts); ignored where not measured.
    measured : (nz, ny, nx) bool Tensor
        True where the detector measured.
    lower, upper : (nz, ny, nx) float Tensor, optional
        Bounds of the amplitude at unmeasured voxels.

    Returns
    -------
    (n, nz, ny, nx) complex Tensor
    """
    modulus = field.abs()
    target = modulus
    if lower is not None:
        target = torch.maximum(target, lower)
    if upper is not None:
        target = torch.minimum(target, upper)
    target = torch.where(measured, amplitude, target)
    ratio = target / modulus.clamp_min(TINY)
    # where the computed modulus vanishes, the phase is arbitrary: take zero
    zero = modulus <= TINY
    field.mul_(ratio)
    if bool(zero.any()):
        field[zero] = target[zero].to(field.dtype)
    return field


def error_reduction(projected: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Apply ER: the projected objects inside the support, zero outside.

    Parameters
    ----------
    projected : (n, nz, ny, nx) complex Tensor
        Objects after the Fourier-modulus projection.
    support : (n, nz, ny, nx) bool Tensor
        Support of each start.
    """
    return projected * support


def hybrid_input_output(
    psi: torch.Tensor, projected: torch.Tensor, support: torch.Tensor, beta: float
) -> torch.Tensor:
    """Apply HIO (Fienup): projected inside the support, ``psi - beta projected`` outside."""
    return torch.where(support, projected, psi - beta * projected)


def raar(
    psi: torch.Tensor, projected: torch.Tensor, support: torch.Tensor, beta: float
) -> torch.Tensor:
    """Apply RAAR (Luke 2005; Marchesini's form): projected inside, a blend outside.

    Outside the support: ``beta psi + (1 - 2 beta) projected``.
    """
    return torch.where(support, projected, beta * psi + (1.0 - 2.0 * beta) * projected)


def gaussian_transfer(
    shape: tuple[int, int, int], sigma: float, device: torch.device
) -> torch.Tensor:
    """Return the Fourier transform of a normalised Gaussian of ``sigma`` voxels.

    Returns
    -------
    (nz, ny, nx) float32 Tensor
        Multiplying a field's FFT by it blurs the field (periodic boundaries).
    """
    transfer = torch.ones(shape, dtype=torch.float32, device=device)
    for axis, n in enumerate(shape):
        freq = torch.fft.fftfreq(n, device=device)
        factor = torch.exp(-2.0 * (torch.pi * sigma * freq) ** 2)
        view = [1, 1, 1]
        view[axis] = n
        transfer = transfer * factor.reshape(view)
    return transfer


def blur(values: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    """Blur real volumes ``(n, nz, ny, nx)`` with a Gaussian transfer function."""
    return torch.fft.ifftn(torch.fft.fftn(values, dim=DIMS) * transfer, dim=DIMS).real


def shrink_wrap(psi: torch.Tensor, transfer: torch.Tensor, threshold: float) -> torch.Tensor:
    """Update supports by shrink-wrap (Marchesini 2003): blurred modulus above a threshold.

    Parameters
    ----------
    psi : (n, nz, ny, nx) complex Tensor
        Current objects.
    transfer : (nz, ny, nx) float Tensor
        Gaussian blur (:func:`gaussian_transfer`).
    threshold : float
        Fraction of each start's maximum blurred modulus.

    Returns
    -------
    (n, nz, ny, nx) bool Tensor
    """
    smooth = blur(psi.abs(), transfer)
    peak = smooth.amax(dim=DIMS, keepdim=True)
    return smooth > threshold * peak


def total_variation_descent(psi: torch.Tensor) -> torch.Tensor:
    """Return the steepest-descent direction of the objects' smoothed total variation.

    ``TV(psi) = sum sqrt(|grad psi|^2 + eps^2)`` with forward differences (periodic);
    the direction is ``div(grad psi / |grad psi|)``, scaled by each object's maximum
    modulus so that a step of 0.01 is a 1 % change.

    Parameters
    ----------
    psi : (n, nz, ny, nx) complex Tensor

    Returns
    -------
    (n, nz, ny, nx) complex Tensor
    """
    scale = psi.abs().amax(dim=DIMS, keepdim=True).clamp_min(TINY)
    grads = [torch.roll(psi, -1, dims=axis) - psi for axis in DIMS]
    norm = torch.sqrt(sum(g.real**2 + g.imag**2 for g in grads) + (1e-3 * scale) ** 2)
    units = [g / norm for g in grads]
    divergence = sum(u - torch.roll(u, 1, dims=axis) for u, axis in zip(units, DIMS, strict=True))
    return scale * divergence
