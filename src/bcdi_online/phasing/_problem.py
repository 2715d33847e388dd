"""The data side of a reconstruction: amplitudes, measured voxels, rules for the others."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
    "fill_start_tv",
)
_NEEDS_FILL = ("fill", "fill_then_free", "fill_start", "soft", "fill_start_tv")
#: Treatments ending in the least-total-variation post-processing (for every start).
TV_TREATMENTS = ("tv", "fill_start_tv")


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
    treatments : tuple of str
        Treatment of each start.
    fill_amplitude : (nz, ny, nx) float32 Tensor or None
        ``sqrt(fill)`` for the treatments that use a fill.
    band : tuple of two Tensors or None
        Lower and upper amplitude of the ``soft`` treatment.
    """

    counts: torch.Tensor
    amplitude: torch.Tensor
    measured: torch.Tensor
    treatments: tuple[str, ...]
    fill_amplitude: torch.Tensor | None
    band: tuple[torch.Tensor, torch.Tensor] | None
    _stacked: dict[bool, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def treatment(self) -> str:
        """Return the treatment's name (``"a+b"`` when starts differ)."""
        return "+".join(dict.fromkeys(self.treatments))

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
        treatment: str | Sequence[str],
        n_starts: int = 1,
        fill: np.ndarray | None,
        fill_sigma: np.ndarray | None,
        soft_width: float,
        device: torch.device,
    ) -> Problem:
        """Check the inputs and move them to ``device`` (see :func:`phase_retrieval`).

        A sequence of treatments is dealt to the starts in turn.
        """
        intensity = np.asarray(intensity)
        if intensity.ndim != 3 or min(intensity.shape) < 8:
            raise InputDataError(
                f"intensity must be 3D with every axis >= 8, got shape {intensity.shape}"
            )
        names = (treatment,) if isinstance(treatment, str) else tuple(treatment)
        for name in names:
            if name not in TREATMENTS:
                raise PhasingError(f"unknown treatment {name!r}; known: {TREATMENTS}")
        if not names or (set(names) & set(TV_TREATMENTS) and len(set(names)) > 1):
            raise PhasingError(
                f"treatments {names}: {' and '.join(TV_TREATMENTS)} cannot be mixed with others"
            )
        treatments = tuple(names[i % len(names)] for i in range(max(n_starts, len(names))))
        unmeasured = _checked_mask(mask, intensity.shape)
        values = np.where(unmeasured, 0.0, intensity)
        if not np.all(np.isfinite(values)) or values.min() < 0:
            raise InputDataError("measured intensity has NaN, inf or negative values")
        if values.sum() <= 0:
            raise InputDataError("measured intensity is all zero: nothing to reconstruct from")
        counts = _fft_layout(values, device)
        measured = _fft_layout(~unmeasured, device) > 0.5
        fill_amplitude = band = None
        if any(name in _NEEDS_FILL for name in names):
            if fill is None or np.shape(fill) != intensity.shape:
                raise PhasingError(
                    f"treatment {'+'.join(names)!r} needs a fill of shape {intensity.shape}, "
                    f"got {None if fill is None else np.shape(fill)}"
                )
            fill_counts = np.clip(np.nan_to_num(np.asarray(fill, dtype=np.float64)), 0, None)
            fill_amplitude = _fft_layout(np.sqrt(fill_counts), device)
            if "soft" in names:
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
        return cls(counts, counts.sqrt(), measured, treatments, fill_amplitude, band)

    def _bounds_of(
        self, name: str, released: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Return the amplitude bounds one treatment puts on unmeasured voxels."""
        if name == "zero" or (name == "zero_then_free" and not released):
            zero = torch.zeros_like(self.amplitude)
            return zero, zero
        if name == "fill" or (name == "fill_then_free" and not released):
            return self.fill_amplitude, self.fill_amplitude
        if name == "soft" and self.band is not None:
            return self.band
        return None, None

    def bounds(self, *, released: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Return the amplitude bounds at unmeasured voxels for the next projection.

        ``(nz, ny, nx)`` tensors (or None: free) when every start has the same
        treatment, else ``(n_starts, nz, ny, nx)`` stacks (free: 0 and infinity).

        Parameters
        ----------
        released : bool
            Whether the ``*_then_free`` treatments have released the voxels.
        """
        kinds = {name: self._bounds_of(name, released) for name in dict.fromkeys(self.treatments)}
        first = next(iter(kinds.values()))
        if all(low is first[0] and high is first[1] for low, high in kinds.values()):
            return first  # one rule for every start (free ones: None, None)
        if released not in self._stacked:
            zero, infinite = (
                torch.zeros_like(self.amplitude),
                torch.full_like(self.amplitude, torch.inf),
            )
            lows, highs = [], []
            for name in self.treatments:
                low, high = kinds[name]
                lows.append(zero if low is None else low)
                highs.append(infinite if high is None else high)
            self._stacked[released] = (torch.stack(lows), torch.stack(highs))
        return self._stacked[released]

    def start_amplitude(self) -> torch.Tensor:
        """Return each start's initial amplitudes, ``(n_starts, nz, ny, nx)``.

        The measured amplitudes, plus the fill at unmeasured voxels for the treatments
        that use one.
        """
        filled = self.amplitude
        if self.fill_amplitude is not None:
            filled = torch.where(self.measured, self.amplitude, self.fill_amplitude)
        return torch.stack(
            [filled if name in _NEEDS_FILL else self.amplitude for name in self.treatments]
        )

    def initial_support(self, threshold: float) -> torch.Tensor:
        """Return each start's autocorrelation support, ``(n_starts, nz, ny, nx)``.

        The inverse FFT of its initial intensity above ``threshold`` x its maximum.
        """
        auto = torch.fft.ifftn(self.start_amplitude() ** 2, dim=(-3, -2, -1)).abs()
        return auto > threshold * auto.amax(dim=(-3, -2, -1), keepdim=True)

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
