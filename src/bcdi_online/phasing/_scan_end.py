"""The crystal at the end of a scan: crop around the peak, bin, phase, judge, picture."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .._errors import InputDataError
from ._engine import PhasingResult, phase_retrieval
from ._recipe import Recipe

#: Treatment of the gap voxels used by the scan-end reconstruction unless told otherwise:
#: the model's fill as the starting estimate of free gap voxels, never imposed, then the
#: least-total-variation post-processing of the modes the data leave free (best success
#: rate and beats free voxels in 26 of 48 crystals, worse in 13: see
#: docs/explanations/real-space.md for the evaluation that chose it).
RECOMMENDED_TREATMENT = "fill_start_tv"
#: Box phased around the Bragg peak (scan voxels), on every device. It keeps the scan's
#: field of view, hence its oversampling (``benchmarks/scan_end_preview.py``, 24 crystals:
#: 14 within 0.2 rad against 9 for 64 x 128 x 128 binned 1 x 2 x 2, 3 wrong crystals judged
#: converged against 12; refills better than the model's fill on 11 of 12), and its
#: refills are safer than those of the larger 64 x 128 x 128 box (better on 9 of 12 there,
#: up to 2.1 times worse).
SCAN_END_REGION = (64, 64, 64)
#: A reconstruction is reported as converged only if its kept starts agree this well.
MIN_MODE_WEIGHT = 0.8
#: ... its support is at most this share of the phased grid (a support that fills the grid
#: did not shrink onto a crystal) ...
MAX_SUPPORT_FRACTION = 0.25
#: ... and holds at least this many voxels (a flat pattern, noise without a Bragg peak,
#: is fitted by a point).
MIN_SUPPORT_VOXELS = 64

#: The Bragg peak counts as lying in the gap when the brightest count next to the gap
#: (at its 2-sigma Poisson upper limit) reaches this share of the brightest measured
#: count: the overshoot guard's test (``bcdi_online.inpainting.OvershootGuard``).
PEAK_IN_GAP_RATIO = 0.5
#: Poisson upper limit of an edge count, in standard deviations.
_EDGE_SIGMAS = 2.0
#: In-frame neighbours: a detector gap borders measured pixels of the same frame.
_IN_FRAME = np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], dtype=bool)


def peak_in_gap(counts: np.ndarray, gap: np.ndarray) -> tuple[bool, float]:
    """Whether the Bragg peak of a volume may lie in its gap, from the measured voxels alone.

    A peak hidden in a gap shows on the gap's edges: they hold the brightest counts
    measured (on 96 simulated crystals the brightest edge count was 0.64-1 of the
    brightest measured count with the peak in the gap, 0.005-0.6 with it measured).

    Parameters
    ----------
    counts : (nz, ny, nx) ndarray
        Counts (values at gap voxels are ignored).
    gap : (nz, ny, nx) bool ndarray
        True where nothing was measured.

    Returns
    -------
    hidden : bool
    ratio : float
        Upper limit of the brightest edge count over the brightest measured count.
    """
    edge = ndimage.binary_dilation(gap, _IN_FRAME) & ~gap
    measured = counts[~gap]
    if not edge.any() or measured.size == 0 or measured.max() <= 0:
        return False, 0.0
    n = float(counts[edge].max())
    z = _EDGE_SIGMAS
    ratio = (n + z * z / 2 + z * np.sqrt(n + z * z / 4)) / float(measured.max())
    return bool(ratio >= PEAK_IN_GAP_RATIO), float(ratio)


@dataclass(frozen=True)
class ScanReconstruction:
    """A scan's crystal, reconstructed from its corrected volume.

    Attributes
    ----------
    obj : (nz, ny, nx) complex64 ndarray
        The crystal on the phased grid, centred, phase offset removed.
    support : (nz, ny, nx) bool ndarray
    region : tuple of int
        ``(z0, z1, y0, y1, x0, x1)`` of the scan that was phased (half-open, before binning).
    binning : tuple of int
        Bin factors (z, y, x) applied to that region.
    treatment : str
        How the gap voxels were treated.
    converged : bool
        Whether the figures of merit say the result can be trusted.
    reason : str
        Why it is not converged ("" when it is).
    llk : float
        Poisson log-likelihood per measured voxel.
    mode_weight : float
        Agreement of the kept starts (1 = identical).
    support_fraction : float
    seconds : float
    intensity : (nz, ny, nx) float32 ndarray or None
        The reconstruction's own far field ``|FFT(obj)|^2`` on the phased (binned)
        grid, scaled to the counts, gap bins included (None for a reconstruction read
        back without it). :func:`~bcdi_online.phasing.refine_fill` takes the gap's
        values from it.
    peak_edge_ratio : float
        :func:`peak_in_gap`'s ratio on the phased region: the brightest count next to
        the gap (at its Poisson upper limit) over the brightest measured count.
    """

    obj: np.ndarray
    support: np.ndarray
    region: tuple[int, int, int, int, int, int]
    binning: tuple[int, int, int]
    treatment: str
    converged: bool
    reason: str
    llk: float
    mode_weight: float
    support_fraction: float
    seconds: float
    peak_edge_ratio: float
    intensity: np.ndarray | None = None

    @property
    def peak_in_gap(self) -> bool:
        """Whether the Bragg peak may lie in the gap of the phased region.

        Such a crystal can converge and be wrong: with the gap through the peak's
        centre, 4 of the 8 simulated crystals judged converged were
        (``benchmarks/reconstruction_fill.py``); ``figures_of_merit`` and the picture
        say so, and :func:`~bcdi_online.phasing.refine_fill` refills nothing.
        """
        return self.peak_edge_ratio >= PEAK_IN_GAP_RATIO

    @property
    def modulus(self) -> np.ndarray:
        """Return the modulus ``(nz, ny, nx)`` float32, scaled to a maximum of 1."""
        modulus = np.abs(self.obj)
        return (modulus / max(float(modulus.max()), 1e-30)).astype(np.float32)

    @property
    def phase(self) -> np.ndarray:
        """Return the phase ``(nz, ny, nx)`` float32 in radians, 0 outside the support."""
        return np.where(self.support, np.angle(self.obj), 0.0).astype(np.float32)

    def figures_of_merit(self) -> dict[str, Any]:
        """Return the plain-value summary published beside the arrays."""
        return {
            "converged": self.converged,
            "reason": self.reason,
            "treatment": self.treatment,
            "llk": self.llk,
            "mode_weight": self.mode_weight,
            "support_fraction": self.support_fraction,
            "region": list(self.region),
            "binning": list(self.binning),
            "seconds": self.seconds,
            "peak_in_gap": self.peak_in_gap,
            "peak_edge_ratio": self.peak_edge_ratio,
        }


def peak_region(
    volume: np.ndarray, shape: tuple[int, int, int]
) -> tuple[int, int, int, int, int, int]:
    """Return the ``shape`` box (clipped to the volume) centred on the brightest blob.

    Parameters
    ----------
    volume : (n_frames, ny, nx) ndarray
    shape : tuple of int
        Box size; axes longer than the volume are clipped.

    Returns
    -------
    tuple of int
        ``(z0, z1, y0, y1, x0, x1)``, half-open.
    """
    smooth = ndimage.gaussian_filter(np.asarray(volume, dtype=np.float32), 1.0)
    centre = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    region: list[int] = []
    for c, size, n in zip(centre, shape, volume.shape, strict=True):
        size = min(size, n)
        start = int(np.clip(c - size // 2, 0, n - size))
        region += [start, start + size]
    z0, z1, y0, y1, x0, x1 = region
    return z0, z1, y0, y1, x0, x1


def _binned(volume: np.ndarray, factors: tuple[int, int, int], reduce: str) -> np.ndarray:
    """Bin a volume by ``factors`` (trimming the remainder) with ``sum``, ``any`` or ``max``."""
    size = [n // f for n, f in zip(volume.shape, factors, strict=True)]
    trimmed = volume[tuple(slice(0, n * f) for n, f in zip(size, factors, strict=True))]
    blocks = trimmed.reshape(size[0], factors[0], size[1], factors[1], size[2], factors[2])
    return np.asarray(getattr(blocks, reduce)(axis=(1, 3, 5)))


def _judge(result: PhasingResult) -> str:
    """Return why a reconstruction is not trustworthy ("" if it is)."""
    if not np.isfinite(result.llk) or not np.all(np.isfinite(result.obj)):
        return "the reconstruction diverged (non-finite values)"
    voxels = int(result.support.sum())
    if voxels < MIN_SUPPORT_VOXELS:
        return (
            f"the support shrank to {voxels} voxels (< {MIN_SUPPORT_VOXELS}): no crystal resolved"
        )
    if result.support_fraction > MAX_SUPPORT_FRACTION:
        return (
            f"the support covers {result.support_fraction:.0%} of the grid "
            f"(> {MAX_SUPPORT_FRACTION:.0%}): it did not shrink onto a crystal"
        )
    if result.mode_weight < MIN_MODE_WEIGHT:
        return (
            f"the random starts disagree (first-mode weight {result.mode_weight:.2f} "
            f"< {MIN_MODE_WEIGHT})"
        )
    return ""


def reconstruct_scan(
    corrected: np.ndarray,
    mask: np.ndarray,
    *,
    fill_sigma: np.ndarray | None = None,
    treatment: str = RECOMMENDED_TREATMENT,
    region_shape: tuple[int, int, int] = SCAN_END_REGION,
    binning: tuple[int, int, int] = (1, 1, 1),
    recipe: Recipe | None = None,
    n_starts: int = 4,
    seed: int = 0,
    device: str | None = None,
) -> ScanReconstruction:
    """Reconstruct the crystal of a corrected (gap-filled) scan.

    The box ``region_shape`` around the Bragg peak is binned by ``binning`` and phased
    with the gap voxels treated by ``treatment``; a bin holding any gap pixel counts as
    unmeasured, and the fill supplies its value where the treatment uses one.

    Parameters
    ----------
    corrected : (n_frames, ny, nx) ndarray
        The corrected scan (measured counts, filled gap).
    mask : (ny, nx) or (n_frames, ny, nx) bool ndarray
        Gap voxels (True = filled, not measured).
    fill_sigma : (n_frames, ny, nx) ndarray, optional
        Fill uncertainty (``log1p`` units) for the ``soft`` treatment.
    treatment : str
        See :func:`phase_retrieval`; default :data:`RECOMMENDED_TREATMENT`.
    region_shape : tuple of int
        Box phased around the peak, in scan voxels (default :data:`SCAN_END_REGION`). A
        smaller box is a cheaper, coarser crystal with the same field of view.
    binning : tuple of int
        Bin factors within the box. Binning halves the field of view, and with it the
        oversampling, per factor 2: a 64 x 128 x 128 box binned 1 x 2 x 2 gave wrong
        crystals judged converged (12 of 24) and refills worse than the model's fill (6 of
        12) where a 64 x 64 x 64 box, at the same cost, gave 3 and 1
        (``benchmarks/scan_end_preview.py``).
    recipe : Recipe, optional
    n_starts, seed : int
    device : str, optional

    Returns
    -------
    ScanReconstruction
        Check ``converged`` before showing it as the crystal.
    """
    started = time.perf_counter()
    corrected = np.asarray(corrected, dtype=np.float32)
    if corrected.ndim != 3:
        raise InputDataError(f"corrected scan must be (n_frames, ny, nx), got {corrected.shape}")
    gap = np.broadcast_to(np.asarray(mask, dtype=bool), corrected.shape)
    region = peak_region(corrected, region_shape)
    box = tuple(slice(region[2 * i], region[2 * i + 1]) for i in range(3))
    counts = _binned(corrected[box], binning, "sum")
    unmeasured = _binned(gap[box], binning, "any")
    # a bin's band is the widest of its voxels'
    sigma = None if fill_sigma is None else _binned(np.asarray(fill_sigma)[box], binning, "max")
    result = phase_retrieval(
        np.where(unmeasured, 0, counts),
        unmeasured,
        treatment=treatment,
        fill=counts,
        fill_sigma=sigma,
        recipe=recipe,
        n_starts=n_starts,
        seed=seed,
        device=device,
    )
    reason = _judge(result)
    inside = result.support
    obj = result.obj
    if inside.any():  # put the mean phase inside the support at 0
        weights = np.abs(obj[inside])
        obj = obj * np.exp(
            -1j * np.angle(np.sum(weights * obj[inside] / np.maximum(weights, 1e-30)))
        )
    return ScanReconstruction(
        obj=obj.astype(np.complex64),
        support=inside,
        region=region,
        binning=tuple(int(b) for b in binning),  # type: ignore[arg-type]
        treatment=treatment,
        converged=reason == "",
        reason=reason,
        llk=result.llk,
        mode_weight=result.mode_weight,
        support_fraction=result.support_fraction,
        seconds=time.perf_counter() - started,
        peak_edge_ratio=peak_in_gap(corrected[box], gap[box])[1],
        intensity=result.intensity,
    )
