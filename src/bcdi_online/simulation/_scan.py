"""A simulated rocking scan as the detector records it: ROI, gaps, noise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from .._errors import SimulationError
from ..detectors import DetectorSpec, gap_mask, get_detector, roi_around, stripes
from ._diffraction import simulate_volume
from ._params import CrystalParams


@dataclass(frozen=True)
class RockingScan:
    """A rocking scan in detector frames with its ground truth.

    Attributes
    ----------
    data : (n_frames, ny, nx) float32 ndarray
        Measured counts (integers): zero at dead (gap) pixels, as raw detector data.
    mask : (ny, nx) bool ndarray
        Dead pixels of the ROI, True = no signal.
    truth : (n_frames, ny, nx) float32 ndarray
        The same Poisson draw as ``data`` without gaps: what a gap-free detector records.
    expected : (n_frames, ny, nx) float32 ndarray
        Noise-free expected counts.
    obj : (n_frames, ny, nx) complex64 ndarray
        The simulated crystal.
    detector : str
        Registry name of the detector.
    roi : tuple of int
        (y0, y1, x0, x1) of the frames on the full detector, half-open.
    params : CrystalParams
        Crystal parameters.
    metadata : dict
        Free-form extra information (e.g. peak position).
    """

    data: np.ndarray
    mask: np.ndarray
    truth: np.ndarray
    expected: np.ndarray
    obj: np.ndarray
    detector: str
    roi: tuple[int, int, int, int]
    params: CrystalParams
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of rocking steps."""
        return int(self.data.shape[0])


class ScanOptions(TypedDict, total=False):
    """The options of :func:`simulate_scan` besides the detector, for callers that pass them on.

    One list of names for the simulated devices (``SimMaxipix``, ``SimEiger``,
    ``CrystalSource.simulate``, the LIMA-like Tango server): their ``**scan`` is typed
    with it, so the type checker holds them to :func:`simulate_scan`'s signature.
    """

    n_frames: int
    roi_size: int | tuple[int, int]
    roi: tuple[int, int, int, int] | None
    params: CrystalParams | None
    seed: int
    peak_jitter: float
    maxipix_gap: int


def _gap_centre(spec: DetectorSpec, maxipix_gap: int) -> tuple[float, float]:
    """Centre of the first gap crossing (or gap, or frame) of a detector."""
    full = gap_mask(spec, maxipix_gap=maxipix_gap)
    found = stripes(full)
    rows = [(s.start + s.stop) / 2 for s in found if s.axis == 0]
    cols = [(s.start + s.stop) / 2 for s in found if s.axis == 1]
    ny, nx = full.shape
    yc = min(rows, key=lambda r: abs(r - ny / 2)) if rows else ny / 2
    xc = min(cols, key=lambda c: abs(c - nx / 2)) if cols else nx / 2
    return yc, xc


def simulate_scan(
    detector: str | DetectorSpec = "maxipix_2x2",
    *,
    n_frames: int = 128,
    roi_size: int | tuple[int, int] = 256,
    roi: tuple[int, int, int, int] | None = None,
    params: CrystalParams | None = None,
    seed: int = 0,
    peak_jitter: float = 0.125,
    maxipix_gap: int = 6,
) -> RockingScan:
    """Simulate a rocking scan of a random crystal on a gap-affected detector.

    The 3D intensity is computed on the scan grid itself (rocking steps x ROI), the
    Bragg peak in its centre. Unless ``roi`` is given, the ROI is centred on the gap
    crossing nearest the detector centre, shifted by up to ``peak_jitter * roi_size``
    so that gaps fall over the peak or on its flanks.

    Parameters
    ----------
    detector : str or DetectorSpec
        Registry name (see :func:`bcdi_online.detectors.detector_names`).
    n_frames : int
        Rocking steps.
    roi_size : int or tuple of int
        ROI height and width in pixels, when ``roi`` is not given.
    roi : tuple of int, optional
        Explicit (y0, y1, x0, x1) region of the full frame.
    params : CrystalParams, optional
        Crystal; drawn from ``seed`` when omitted.
    seed : int
        Seed of the crystal draw and of the ROI jitter.
    peak_jitter : float
        Maximum shift of the ROI centre from the gap crossing, in ROI sizes.
    maxipix_gap : int
        MAXIPIX gap convention (6 or 4 pixels), see :func:`bcdi_online.detectors.gap_mask`.

    Returns
    -------
    RockingScan
    """
    if n_frames < 8:
        raise SimulationError(f"n_frames {n_frames} must be >= 8")
    if not 0 <= peak_jitter <= 0.5:
        raise SimulationError(f"peak_jitter {peak_jitter} outside [0, 0.5]")
    spec = get_detector(detector) if isinstance(detector, str) else detector
    rng = np.random.default_rng(seed)
    if params is None:
        params = CrystalParams.random(rng)
    if roi is None:
        size = (roi_size, roi_size) if isinstance(roi_size, int) else (roi_size[0], roi_size[1])
        yc, xc = _gap_centre(spec, maxipix_gap)
        shift = rng.uniform(-peak_jitter, peak_jitter, 2) * np.asarray(size)
        roi = roi_around(spec, center=(yc + shift[0], xc + shift[1]), size=size)
    mask = gap_mask(spec, roi, maxipix_gap=maxipix_gap)
    shape = (n_frames, *mask.shape)
    diffraction = simulate_volume(shape, params)
    truth = diffraction.counts.astype(np.float32)  # the interface's dtype for counts
    data = truth.copy()
    data[:, mask] = 0
    return RockingScan(
        data=data,
        mask=mask,
        truth=truth,
        expected=diffraction.expected,
        obj=diffraction.obj,
        detector=spec.name,
        roi=tuple(int(v) for v in roi),  # type: ignore[arg-type]
        params=params,
        metadata={"maxipix_gap": maxipix_gap, "seed": seed},
    )
