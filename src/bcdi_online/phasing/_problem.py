"""The data side of a reconstruction: amplitudes, measured voxels, rules for the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._errors import GapMaskError, InputDataError, PhasingError

#: Treatments of unmeasured voxels (see :func:`phase_retrieval`).
TREATMENTS = (
    "zero",
    "free",
    "zero_then_free",
    "fill",
    "fill_then_free",
    "fill_start",
    "soft",
    "tv",
)
_NEEDS_FILL = ("fill", "fill_then_free", "fill_start", "soft")


def _fft_layout(volume: np.ndarray, device: torch.device) -> torch.Tensor:
    """Return a centred numpy volume as a float32 tensor with the peak at index 0."""
    return torch.fft.ifftshift(
        torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))
    ).to(device)


def _checked_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Return a (nz, ny, nx) bool mask from a frame or volume mask (True = unmeasured)."""
    if mask is None:
        return np.zeros(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise GapMaskError(f"mask must be bool (True = unmeasured), got dtype {mask.dtype}")
    if mask.shape not in (shape, shape[1:]):
        raise GapMaskError(
            f"mask shape {mask.shape} matches neither {shape} nor its frames {shape[1:]}"
        )
    return np.broadcast_to(mask, shape)


@dataclass(frozen=True)
class Problem:
    """Tensors of one reconstruction, FFT layout, on its device.

    Attributes
    ----------
    counts : (nz, ny, nx) float32 Tensor
        Measured counts (zero where unmeasured).
    amplitude : (nz, ny, nx) float32 Tensor
        ``sqrt(counts)``.
    measured : (nz, ny, nx) bool Tensor
    treatment : str
    fill_amplitude : (nz, ny, nx) float32 Tensor or None
        ``sqrt(fill)`` for the treatments that use a fill.
    band : tuple of two Tensors or None
        Lower and upper amplitude of the ``soft`` treatment.
    """

    counts: torch.Tensor
    amplitude: torch.Tensor
    measured: torch.Tensor
    treatment: str
    fill_amplitude: torch.Tensor | None
    band: tuple[torch.Tensor, torch.Tensor] | None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Return the grid shape (nz, ny, nx)."""
        nz, ny, nx = self.counts.shape
        return nz, ny, nx

    @classmethod
    def build(
        cls,
        intensity: np.ndarray,
        mask: np.ndarray | None,
        *,
        treatment: str,
        fill: np.ndarray | None,
        fill_sigma: np.ndarray | None,
        soft_width: float,
        device: torch.device,
    ) -> Problem:
        """Check the inputs and move them to ``device`` (see :func:`phase_retrieval`)."""
        intensity = np.asarray(intensity)
        if intensity.ndim != 3 or min(intensity.shape) < 8:
            raise InputDataError(
                f"intensity must be 3D with every axis >= 8, got shape {intensity.shape}"
            )
        if treatment not in TREATMENTS:
            raise PhasingError(f"unknown treatment {treatment!r}; known: {TREATMENTS}")
        unmeasured = _checked_mask(mask, intensity.shape)
        values = np.where(unmeasured, 0.0, intensity)
        if not np.all(np.isfinite(values)) or values.min() < 0:
            raise InputDataError("measured intensity has NaN, inf or negative values")
        if values.sum() <= 0:
            raise InputDataError("measured intensity is all zero: nothing to reconstruct from")
        counts = _fft_layout(values, device)
        measured = _fft_layout(~unmeasured, device) > 0.5
        fill_amplitude = band = None
        if treatment in _NEEDS_FILL:
            if fill is None or np.shape(fill) != intensity.shape:
                raise PhasingError(
                    f"treatment {treatment!r} needs a fill of shape {intensity.shape}, got "
                    f"{None if fill is None else np.shape(fill)}"
                )
            fill_counts = np.clip(np.nan_to_num(np.asarray(fill, dtype=np.float64)), 0, None)
            fill_amplitude = _fft_layout(np.sqrt(fill_counts), device)
            if treatment == "soft":
                if fill_sigma is None or np.shape(fill_sigma) != intensity.shape:
                    raise PhasingError(
                        f"treatment 'soft' needs fill_sigma of shape {intensity.shape}"
                    )
                width = soft_width * np.abs(np.asarray(fill_sigma, dtype=np.float64))
                log_fill = np.log1p(fill_counts)
                band = (
                    _fft_layout(np.sqrt(np.expm1(np.clip(log_fill - width, 0, None))), device),
                    _fft_layout(np.sqrt(np.expm1(log_fill + width)), device),
                )
        return cls(counts, counts.sqrt(), measured, treatment, fill_amplitude, band)

    def bounds(self, *, released: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Amplitude bounds at unmeasured voxels for the next projection.

        Parameters
        ----------
        released : bool
            Whether the ``*_then_free`` treatments have released the voxels.
        """
        name = self.treatment
        if name == "zero" or (name == "zero_then_free" and not released):
            zero = torch.zeros_like(self.amplitude)
            return zero, zero
        if name == "fill" or (name == "fill_then_free" and not released):
            return self.fill_amplitude, self.fill_amplitude
        if name == "soft" and self.band is not None:
            return self.band
        return None, None

    def start_amplitude(self) -> torch.Tensor:
        """Return the amplitudes of the random starts: measured, plus the fill if any."""
        if self.fill_amplitude is None:
            return self.amplitude
        return torch.where(self.measured, self.amplitude, self.fill_amplitude)

    def initial_support(self, threshold: float) -> torch.Tensor:
        """Return the autocorrelation support: inverse FFT of the intensity above a threshold."""
        auto = torch.fft.ifftn(self.start_amplitude() ** 2).abs()
        return auto > threshold * auto.max()

    def scaled_intensity(self, field: torch.Tensor) -> torch.Tensor:
        """``|field|^2`` scaled so that its measured total equals the data's.

        Parameters
        ----------
        field : (n, nz, ny, nx) complex Tensor
        """
        power = field.abs() ** 2
        model_total = (power * self.measured).sum(dim=(-3, -2, -1), keepdim=True)
        return power * (self.counts.sum() / model_total.clamp_min(1e-30))


def poisson_llk(
    problem: Problem, field: torch.Tensor | None, *, model_intensity: torch.Tensor | None = None
) -> torch.Tensor:
    """Poisson log-likelihood per measured voxel (half deviance), one value per start.

    Parameters
    ----------
    problem : Problem
    field : (n, nz, ny, nx) complex Tensor or None
        Far fields of the starts; their intensity is scaled to the data first.
    model_intensity : (n, nz, ny, nx) float Tensor, optional
        Model intensities to score instead of ``field``.

    Returns
    -------
    (n,) float Tensor
        ``mean(Ic - I + I log(I / Ic))`` over measured voxels; lower is better.
    """
    if model_intensity is None:
        if field is None:
            raise PhasingError("poisson_llk needs a field or a model intensity")
        model_intensity = problem.scaled_intensity(field)
    calc = model_intensity.clamp_min(1e-6)
    obs = problem.counts
    log_term = torch.where(
        obs > 0, obs * torch.log(obs.clamp_min(1e-30) / calc), torch.zeros_like(calc)
    )
    deviance = (calc - obs + log_term) * problem.measured
    return deviance.sum(dim=(-3, -2, -1)) / problem.measured.sum()
