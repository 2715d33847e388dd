"""Bringing reconstructions into register: twin, translation, phase offset and ramp.

A Bragg CDI reconstruction is defined up to a global phase, a translation, the twin
(``conj(obj(-r))`` has the same diffraction) and a phase ramp (the choice of the
reference lattice). These helpers remove all four against a reference, on complex
``(nz, ny, nx)`` tensors in centred layout.
"""

from __future__ import annotations

import torch

from .._errors import PhasingError
from ._operators import DIMS


def twin(obj: torch.Tensor) -> torch.Tensor:
    """Return the twin image ``conj(obj(-r))`` about the grid centre (index ``n // 2``).

    Parameters
    ----------
    obj : (..., nz, ny, nx) complex Tensor
    """
    flipped = torch.flip(obj, dims=DIMS)
    shifts = tuple(1 if n % 2 == 0 else 0 for n in obj.shape[-3:])
    return torch.roll(flipped, shifts=shifts, dims=DIMS).conj()


def _correlation_peak(a: torch.Tensor, b: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Locate the peak of ``|a (x) b|``, the circular cross-correlation, to a sub-voxel.

    Complex objects are correlated as such, so a twin (conjugate phase) correlates
    worse than the right image even when its modulus is the same (centrosymmetric
    shapes). Returns the shift to apply to ``a`` (as :func:`shift`) to match ``b``.
    """
    corr = torch.fft.ifftn(torch.fft.fftn(b) * torch.fft.fftn(a).conj()).abs()
    index = torch.unravel_index(torch.argmax(corr), corr.shape)
    shape = corr.shape
    offsets = []
    for axis, n in enumerate(shape):
        centre = [int(i) for i in index]
        values = []
        for step in (-1, 0, 1):
            probe = list(centre)
            probe[axis] = (centre[axis] + step) % n
            values.append(float(corr[tuple(probe)]))
        left, mid, right = values
        denom = left - 2 * mid + right
        frac = 0.5 * (left - right) / denom if denom < 0 else 0.0
        pos = centre[axis] + max(-0.5, min(0.5, frac))
        offsets.append(pos - n if pos > n / 2 else pos)
    return float(corr[index]), torch.tensor(offsets, dtype=torch.float64)


def shift(obj: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Translate a complex volume by (possibly fractional) voxels, periodically.

    Parameters
    ----------
    obj : (nz, ny, nx) complex Tensor
    offsets : (3,) Tensor
        Shift along (z, y, x) in voxels; positive moves content to higher indices.
    """
    field = torch.fft.fftn(obj)
    ramp = torch.zeros(obj.shape, dtype=torch.float64, device=obj.device)
    for axis, n in enumerate(obj.shape):
        freq = torch.fft.fftfreq(n, device=obj.device, dtype=torch.float64)
        view = [1, 1, 1]
        view[axis] = n
        ramp = ramp + (float(offsets[axis]) * freq).reshape(view)
    phase = torch.polar(torch.ones_like(ramp), -2 * torch.pi * ramp).to(field.dtype)
    return torch.fft.ifftn(field * phase)


def match_phase(obj: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Multiply ``obj`` by the global phase factor that best matches ``ref``."""
    overlap = torch.sum(ref * obj.conj())
    if overlap.abs() == 0:
        return obj
    return obj * (overlap / overlap.abs())


def register(obj: torch.Tensor, ref: torch.Tensor, *, subvoxel: bool = True) -> torch.Tensor:
    """Align ``obj`` on ``ref``: the better of it and its twin, translated, phase matched.

    Parameters
    ----------
    obj, ref : (nz, ny, nx) complex Tensor
    subvoxel : bool
        Refine the translation below a voxel (parabolic fit of the correlation peak).

    Returns
    -------
    (nz, ny, nx) complex Tensor
    """
    best: tuple[float, torch.Tensor] | None = None
    for candidate in (obj, twin(obj)):
        height, offsets = _correlation_peak(candidate, ref)
        if not subvoxel:
            offsets = torch.round(offsets)
        if best is None or height > best[0]:
            best = (height, match_phase(shift(candidate, offsets), ref))
    if best is None:  # pragma: no cover - the loop runs twice
        raise PhasingError("no candidate")
    return best[1]


def remove_ramp(
    obj: torch.Tensor, ref: torch.Tensor, weight: torch.Tensor, *, rounds: int = 3
) -> torch.Tensor:
    """Remove the phase offset and linear phase ramp of ``obj`` relative to ``ref``.

    Weighted least squares of the phase difference on a plane, repeated ``rounds``
    times so that a difference that wraps at first is unwrapped by the fits.

    Parameters
    ----------
    obj, ref : (nz, ny, nx) complex Tensor
    weight : (nz, ny, nx) float Tensor
        Weight of each voxel in the fit (e.g. the reference modulus inside its support).
    """
    coords = torch.meshgrid(
        *[torch.arange(n, dtype=torch.float64, device=obj.device) - n // 2 for n in obj.shape],
        indexing="ij",
    )
    design = torch.stack([torch.ones_like(coords[0]), *coords], dim=-1).reshape(-1, 4)
    w = weight.reshape(-1).to(torch.float64)
    keep = w > 0
    a = design[keep] * w[keep, None].sqrt()
    for _ in range(rounds):
        diff = torch.angle(ref * obj.conj()).reshape(-1).to(torch.float64)
        b = diff[keep] * w[keep].sqrt()
        coef = torch.linalg.lstsq(a, b[:, None]).solution[:, 0]
        plane = (design @ coef).reshape(obj.shape)
        obj = obj * torch.polar(torch.ones_like(plane), plane).to(obj.dtype)
    return obj
