"""3D Bragg intensity of a simulated crystal: FFT, photon scaling, Poisson noise."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage

from .._errors import SimulationError
from ._crystal import density
from ._params import CrystalParams
from ._phase import phase_field


@dataclass(frozen=True)
class Diffraction:
    """A simulated 3D diffraction pattern and the object that made it.

    Attributes
    ----------
    expected : (nz, ny, nx) float32 ndarray
        Noise-free expected photon counts (the Bragg peak at the grid centre).
    counts : (nz, ny, nx) uint32 ndarray
        One Poisson draw of ``expected``: what a perfect detector would record.
    obj : (nz, ny, nx) complex64 ndarray
        The crystal: density times ``exp(i phase)``, centred.
    params : CrystalParams
        Parameters that produced it.
    """

    expected: np.ndarray
    counts: np.ndarray
    obj: np.ndarray
    params: CrystalParams


def crystal_object(shape: tuple[int, int, int], params: CrystalParams) -> np.ndarray:
    """Complex crystal object on a grid.

    Parameters
    ----------
    shape : tuple of int
        Grid shape (nz, ny, nx).
    params : CrystalParams
        Crystal description.

    Returns
    -------
    (nz, ny, nx) complex64 ndarray
    """
    rng = np.random.default_rng(params.seed)
    rho, coords, radius = density(shape, params, rng)
    phase = phase_field(coords, radius, params, rng)
    return (rho * np.exp(1j * phase)).astype(np.complex64)


def bragg_intensity(obj: np.ndarray) -> np.ndarray:
    """Far-field intensity ``|FFT(obj)|^2`` with the Bragg peak at the grid centre.

    Parameters
    ----------
    obj : (nz, ny, nx) complex ndarray

    Returns
    -------
    (nz, ny, nx) float32 ndarray
    """
    amplitude = scipy.fft.fftn(scipy.fft.ifftshift(obj), workers=-1)
    intensity = scipy.fft.fftshift(np.abs(amplitude) ** 2)
    return intensity.astype(np.float32)


def simulate_volume(
    shape: tuple[int, int, int] = (128, 128, 128),
    params: CrystalParams | None = None,
    /,
    *,
    seed: int | None = None,
    **overrides: Any,
) -> Diffraction:
    """Simulate the 3D Bragg diffraction of a random or given crystal.

    Parameters
    ----------
    shape : tuple of int
        Grid shape (nz, ny, nx); axis 0 becomes the rocking axis of a scan.
    params : CrystalParams, optional
        Crystal to simulate; drawn at random from ``seed`` when omitted.
    seed : int, optional
        Seed for drawing ``params`` when they are not given.
    **overrides
        :class:`CrystalParams` fields to set, on ``params`` or on the random draw. The
        grid shape and ``params`` are positional-only, so ``shape="cube"`` here sets
        the crystal habit.

    Returns
    -------
    Diffraction
        Expected intensity (blurred by ``params.coherence_blur``, scaled to
        ``params.photon_budget`` photons, plus background), its Poisson draw, and the
        object.
    """
    if len(shape) != 3 or min(shape) < 8:
        raise SimulationError(f"volume shape {shape} must be 3D with every axis >= 8")
    if not isinstance(overrides.get("shape", ""), str):
        raise SimulationError(
            f"shape={overrides['shape']!r} names the crystal habit; pass the grid shape "
            "positionally: simulate_volume((nz, ny, nx), ...)"
        )
    if params is None:
        params = CrystalParams.random(np.random.default_rng(seed), **overrides)
    elif overrides:
        params = dataclasses.replace(params, **overrides)
    obj = crystal_object(shape, params)
    intensity = bragg_intensity(obj)
    if params.coherence_blur > 0:
        intensity = scipy.ndimage.gaussian_filter(intensity, params.coherence_blur, mode="wrap")
    expected = intensity * np.float32(params.photon_budget / float(intensity.sum()))
    if params.background > 0:
        expected += np.float32(params.background)
    noise_rng = np.random.default_rng([params.seed, 1])
    counts = noise_rng.poisson(expected).astype(np.uint32)
    return Diffraction(expected=expected, counts=counts, obj=obj, params=params)
