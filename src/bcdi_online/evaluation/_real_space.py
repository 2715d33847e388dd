"""Real-space evaluation: reconstruct each case with every practice and compare with the crystal.

A filling is only as good as the crystal phase retrieval makes of it. For each case the
gap-free scan is reconstructed (the reference) and so is the gap-affected scan, once per
practice of treating the gap voxels (:data:`PRACTICES`); each reconstruction is
registered on the true object and its phase, strain and modulus errors measured inside
the true support (:func:`bcdi_online.phasing.compare`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import ConfigurationError, InputDataError
from ..phasing import Recipe, compare, phase_retrieval
from ._metrics import amplitude_error, gap_ratios
from ._real_space_cases import RealSpaceCase

#: A reconstruction succeeds when its phase error inside the support is below this (rad).
SUCCESS_PHASE_ERROR = 0.2

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Practice:
    """One way of treating gap voxels during phase retrieval.

    Attributes
    ----------
    name : str
        Label in the tables.
    treatment : str or tuple of str
        Treatment of :func:`bcdi_online.phasing.phase_retrieval` (a tuple: dealt to the
        starts in turn, the best kept by likelihood).
    fill : str or None
        Name of the filling whose values it uses (``"model"``, ``"biharmonic"``).
    gap_free : bool
        Reconstruct the gap-free scan instead (the reference).
    """

    name: str
    treatment: str | tuple[str, ...]
    fill: str | None = None
    gap_free: bool = False


#: Every practice of the evaluation, the reference first.
PRACTICES: tuple[Practice, ...] = (
    Practice("gap-free", "free", gap_free=True),
    Practice("zeroed", "zero"),
    Practice("free", "free"),
    Practice("zeroed then free", "zero_then_free"),
    Practice("biharmonic imposed", "fill", "biharmonic"),
    Practice("model imposed", "fill", "model"),
    Practice("model imposed then free", "fill_then_free", "model"),
    Practice("model start", "fill_start", "model"),
    Practice("model soft", "soft", "model"),
    Practice("TV", "tv"),
    Practice("model|zeroed then free", ("fill_then_free", "zero_then_free"), "model"),
    Practice("model start + TV", "fill_start_tv", "model"),
)


def crop_centre(volume: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Return the centred ``shape`` block of a volume (the Bragg peak is at the centre)."""
    if any(m > n for m, n in zip(shape, volume.shape, strict=True)):
        raise InputDataError(f"crop {shape} is larger than the volume {volume.shape}")
    index = tuple(
        slice((n - m) // 2, (n - m) // 2 + m) for n, m in zip(volume.shape, shape, strict=True)
    )
    return volume[index]


def reference_object(obj: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Return the object that a centred crop of its diffraction pattern describes.

    Cropping reciprocal space keeps the field of view and coarsens the voxels: the
    reference is the inverse FFT of the cropped complex far field.

    Parameters
    ----------
    obj : (nz, ny, nx) complex ndarray
        The object, centred.
    shape : tuple of int
        Crop of its diffraction pattern.

    Returns
    -------
    shape complex64 ndarray
    """
    field = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))
    cropped = crop_centre(field, shape)
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(cropped))).astype(np.complex64)


def region_reference(
    obj: np.ndarray,
    region: Sequence[int],
    binning: Sequence[int] = (1, 1, 1),
) -> np.ndarray:
    """Return the object as a reconstruction of a box of its diffraction pattern sees it.

    The far field of ``obj`` cut to ``region`` (as :func:`bcdi_online.phasing.reconstruct_scan`
    chooses it), averaged over ``binning`` bins, back in real space: the truth to compare a
    scan-end crystal with (:attr:`~bcdi_online.phasing.ScanReconstruction.region` and
    ``binning``).

    Parameters
    ----------
    obj : (nz, ny, nx) complex ndarray
        The object, centred.
    region : sequence of int
        ``(z0, z1, y0, y1, x0, x1)``, half-open.
    binning : sequence of int
        Bin factors (z, y, x); a remainder is trimmed.

    Returns
    -------
    (nz', ny', nx') complex64 ndarray
        The region's shape divided by ``binning``.
    """
    field = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))
    box = field[tuple(slice(region[2 * i], region[2 * i + 1]) for i in range(3))]
    shape = [n // b for n, b in zip(box.shape, binning, strict=True)]
    box = box[tuple(slice(0, n * b) for n, b in zip(shape, binning, strict=True))]
    blocks = box.reshape(shape[0], binning[0], shape[1], binning[1], shape[2], binning[2])
    binned = blocks.mean(axis=(1, 3, 5))
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(binned))).astype(np.complex64)


def fill_scores(case: RealSpaceCase, fills: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Amplitude accuracy of each filling of a case (whole scan, gap voxels).

    Returns
    -------
    list of dict
        One row per filling: ``case``, ``fill``, ``amplitude_error``, ``amplitude_floor``,
        ``peak_ratio``, ``photon_ratio``.
    """
    floor = amplitude_error(case.truth, case.expected, case.mask)
    return [
        {
            "case": case.name,
            "fill": name,
            "amplitude_error": amplitude_error(filled, case.expected, case.mask),
            "amplitude_floor": floor,
            **gap_ratios(filled, case.expected, case.mask),
        }
        for name, filled in fills.items()
    ]


def reconstruct_case(
    case: RealSpaceCase,
    fills: Mapping[str, np.ndarray],
    *,
    fill_sigma: np.ndarray | None = None,
    practices: Iterable[Practice] = PRACTICES,
    crop: tuple[int, int, int] = (64, 96, 96),
    recipe: Recipe | None = None,
    n_starts: int = 4,
    seed: int = 0,
    device: str | None = None,
    keep_objects: bool = False,
) -> list[dict[str, Any]]:
    """Reconstruct one case with each practice and score it against the true crystal.

    Parameters
    ----------
    case : RealSpaceCase
    fills : mapping of str to (n_frames, ny, nx) ndarray
        Filled scans by name, as the practices refer to them.
    fill_sigma : (n_frames, ny, nx) ndarray, optional
        Uncertainty of the model's fill in ``log1p`` units, for the ``soft`` treatment.
    practices : iterable of Practice
    crop : tuple of int
        The centred block of the scan that is phased.
    recipe : Recipe, optional
    n_starts, seed : int
        Random starts per reconstruction and their seed (the same for every practice).
    device : str, optional
    keep_objects : bool
        Add the registered reconstruction (``"aligned"``, complex ndarray) to each row,
        for figures.

    Returns
    -------
    list of dict
        One row per practice: ``case``, ``group``, ``width``, ``cross``, ``position``,
        ``photons``, ``practice``, ``phase_error``, ``strain_error``, ``modulus_error``,
        ``success``, ``llk``, ``mode_weight``, ``seconds``.
    """
    mask = crop_centre(np.broadcast_to(case.mask, case.data.shape), crop)
    truth = reference_object(case.obj, crop)
    rows = []
    for practice in practices:
        fill = None if practice.fill is None else crop_centre(fills[practice.fill], crop)
        sigma = None
        if "soft" in practice.treatment:
            if fill_sigma is None:
                raise ConfigurationError(f"practice {practice.name!r} needs fill_sigma")
            sigma = crop_centre(fill_sigma, crop)
        started = time.perf_counter()
        if practice.gap_free:
            result = phase_retrieval(
                crop_centre(case.truth, crop),
                None,
                recipe=recipe,
                n_starts=n_starts,
                seed=seed,
                device=device,
            )
        else:
            result = phase_retrieval(
                crop_centre(case.data, crop),
                mask,
                treatment=practice.treatment,
                fill=fill,
                fill_sigma=sigma,
                recipe=recipe,
                n_starts=n_starts,
                seed=seed,
                device=device,
            )
        scores = compare(result.obj, truth)
        row: dict[str, Any] = {
            "case": case.name,
            "group": case.group,
            "width": case.width,
            "cross": case.cross,
            "position": case.position,
            "photons": case.params.photon_budget,
            "practice": practice.name,
            **scores.as_dict(),
            "success": scores.phase_error < SUCCESS_PHASE_ERROR,
            "llk": result.llk,
            "mode_weight": result.mode_weight,
            "seconds": time.perf_counter() - started,
        }
        if keep_objects:
            row["aligned"] = scores.aligned
        rows.append(row)
    return rows
