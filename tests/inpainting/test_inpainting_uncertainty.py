"""The fill uncertainty: depth into the gap, fitted quantiles, shipped calibration, coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bcdi_online import InputDataError, ModelError
from bcdi_online.evaluation import validation_set
from bcdi_online.inpainting import FillUncertainty, GapInpainter, coverage, gap_depth
from bcdi_online.model import model_sha256


def test_gap_depth_counts_pixels_to_the_nearest_measured_one() -> None:
    mask = np.zeros((6, 12), dtype=bool)
    mask[:, 3:9] = True  # a 6 px stripe
    depth = gap_depth(mask, (2, 6, 12))
    assert depth.shape == (2, 6, 12)
    assert list(depth[0, 0, 2:10]) == [0, 1, 2, 3, 3, 2, 1, 0]
    per_frame = np.stack([mask, np.zeros_like(mask)])
    assert gap_depth(per_frame, (2, 6, 12))[1].max() == 0
    with pytest.raises(InputDataError, match="matches neither"):
        gap_depth(mask[:5], (2, 6, 12))


def _synthetic(seed: int, spread: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fills whose log error is Gaussian with sigma = spread x depth."""
    rng = np.random.default_rng(seed)
    expected = rng.uniform(10, 1000, (8, 32, 32)).astype(np.float32)
    mask = np.zeros((32, 32), dtype=bool)
    mask[:, 12:20] = True
    depth = gap_depth(mask, expected.shape)
    noise = rng.standard_normal(expected.shape) * spread * depth
    filled = np.expm1(np.log1p(expected) + noise).astype(np.float32)
    return filled, expected, mask


def test_fitted_quantiles_follow_the_error_and_cover_new_data() -> None:
    fitted = FillUncertainty.fit([_synthetic(s, 0.1) for s in range(40)], note="synthetic")
    assert fitted.provenance == {"note": "synthetic"}
    q68 = np.asarray(fitted.q68)
    # depth bins 1, 2, 3 px: one standard deviation of the Gaussian, 0.1 x depth
    np.testing.assert_allclose(q68[:3, 3], [0.1, 0.2, 0.3], rtol=0.15)
    held_out = [_synthetic(s, 0.1) for s in range(100, 110)]
    assert coverage(fitted, held_out, level=0.68) == pytest.approx(0.68, abs=0.04)
    assert coverage(fitted, held_out, level=0.95) == pytest.approx(0.95, abs=0.03)
    sigma = fitted(*held_out[0][::2])
    assert np.all(sigma[:, :, :12] == 0) and np.all(sigma[:, :, 12:20] > 0)


def test_json_round_trip_and_bad_files(tmp_path: Path) -> None:
    fitted = FillUncertainty.fit([_synthetic(s, 0.2) for s in range(10)], seed=1)
    fitted.to_json(tmp_path / "u.json")
    assert FillUncertainty.load(tmp_path / "u.json") == fitted
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read a fill uncertainty"):
        FillUncertainty.load(tmp_path / "bad.json")
    with pytest.raises(InputDataError, match="0.68 or 0.95"):
        fitted(np.ones((2, 4, 4)), np.ones((4, 4), bool), level=0.5)


def test_shipped_calibration_belongs_to_the_shipped_weights() -> None:
    shipped = FillUncertainty.load()
    assert shipped.provenance["model_sha256"] == model_sha256()
    assert 0.6 < shipped.provenance["coverage_68"] < 0.76
    assert 0.9 < shipped.provenance["coverage_95"] < 0.98


@pytest.mark.slow
def test_shipped_calibration_covers_held_out_scans() -> None:
    inpainter = GapInpainter(device="cpu")
    cases = validation_set(per_case=1, widths=(6, 12), seed=990_000)  # neither fit nor check set
    filled = [(inpainter(c.data, c.mask), c.expected, c.mask) for c in cases]
    shipped = FillUncertainty.load()
    assert 0.55 < coverage(shipped, filled, level=0.68) < 0.8
    assert 0.88 < coverage(shipped, filled, level=0.95) < 0.99
