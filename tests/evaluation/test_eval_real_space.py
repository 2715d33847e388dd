"""The true crystal as a reconstruction of part of its diffraction pattern sees it."""

from __future__ import annotations

import numpy as np

from bcdi_online.evaluation import reference_object, region_reference
from bcdi_online.simulation import simulate_volume


def _far_field(obj: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))


def test_a_centred_region_is_the_centred_crop() -> None:
    obj = simulate_volume((16, 32, 32), seed=2, photon_budget=1e6).obj
    region = (0, 16, 8, 24, 8, 24)
    np.testing.assert_allclose(
        region_reference(obj, region), reference_object(obj, (16, 16, 16)), atol=1e-5
    )


def test_a_binned_region_averages_the_far_field_over_the_bins() -> None:
    obj = simulate_volume((16, 32, 32), seed=2, photon_budget=1e6).obj
    region = (2, 14, 4, 29, 0, 32)  # 12 x 25 x 32: the odd row is trimmed
    seen = region_reference(obj, region, (1, 2, 2))
    assert seen.shape == (12, 12, 16) and seen.dtype == np.complex64
    field = _far_field(obj)[2:14, 4:28, 0:32]
    binned = field.reshape(12, 12, 2, 16, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(_far_field(seen), binned, rtol=1e-3, atol=1e-3 * abs(binned).max())
