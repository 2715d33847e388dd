"""Phase of the crystal: displacement field projected on the scattering vector."""

from __future__ import annotations

import numpy as np

from ._params import CrystalParams


def phase_field(
    coords: tuple[np.ndarray, np.ndarray, np.ndarray],
    radius: float,
    params: CrystalParams,
    rng: np.random.Generator,
) -> np.ndarray:
    """Phase ``2 pi G . u(r)`` of a simulated crystal.

    Three ingredients, each optional: a smooth random strain field (a sum of a few
    low-frequency plane waves, cheap on large grids), strain decaying away from the
    substrate interface of a Winterbottom crystal, and a phase vortex around a line
    through the crystal (the signature of a dislocation).

    Parameters
    ----------
    coords : tuple of three broadcastable ndarrays
        Grid coordinates (z, y, x) in voxels from the grid centre.
    radius : float
        Crystal radius in voxels (sets the length scale of the strain field).
    params : CrystalParams
        Strain amplitudes and switches.
    rng : numpy.random.Generator
        Source of the random field.

    Returns
    -------
    (nz, ny, nx) float32 ndarray
        Phase in radians; all zero for an unstrained crystal.
    """
    z, y, x = coords
    shape = np.broadcast_shapes(z.shape, y.shape, x.shape)
    phase = np.zeros(shape, dtype=np.float32)
    if params.strain_amplitude > 0:
        n_waves = 6
        directions = rng.normal(size=(n_waves, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        wavelengths = radius * rng.uniform(0.8, 3.0, n_waves)
        offsets = rng.uniform(0, 2 * np.pi, n_waves)
        weights = rng.normal(size=n_waves)
        weights *= params.strain_amplitude / np.abs(weights).sum()
        for (dz, dy, dx), lam, off, w in zip(
            directions, wavelengths, offsets, weights, strict=True
        ):
            k = 2 * np.pi / lam
            phase += np.float32(w) * np.cos(
                (k * dz) * z + (k * dy) * y + (k * dx) * x + np.float32(off)
            ).astype(np.float32)
    if params.interface_strain > 0 and params.shape == "winterbottom":
        # the substrate plane is x = truncation * radius, the crystal on its +x side
        # (see ``_crystal.facets``): height above the interface
        height = x - np.float32(params.truncation * radius)
        decay = np.exp(-np.clip(height, 0, None) / np.float32(0.3 * radius))
        phase += np.float32(params.interface_strain) * decay.astype(np.float32)
    if params.dislocation:
        cy, cx = rng.uniform(-0.4, 0.4, 2) * radius
        phase += np.arctan2(y - np.float32(cy), x - np.float32(cx)).astype(np.float32)
    return phase
