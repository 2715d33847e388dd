"""The shipped weights load safely and beat their own baseline on unseen simulated scans."""

from __future__ import annotations

import numpy as np
import pytest

from bcdi_online.evaluation import linear_interpolation, validation_set
from bcdi_online.inpainting import GapInpainter
from bcdi_online.model import DEFAULT_WEIGHTS, GapUNet, load_model


def test_shipped_weights_load_with_weights_only() -> None:
    model = load_model(device="cpu")
    assert isinstance(model, GapUNet)
    assert not model.training
    assert DEFAULT_WEIGHTS.stat().st_size < 5_000_000


def _log_error(filled: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> float:
    gap = np.broadcast_to(mask, filled.shape)
    return float(np.abs(np.log1p(filled[gap]) - np.log1p(expected[gap])).mean())


@pytest.mark.slow
@pytest.mark.parametrize("width", [6, 12])
def test_model_beats_linear_interpolation_on_held_out_scans(width: int) -> None:
    cases = validation_set(shape=(40, 80, 80), per_case=1, widths=(width,), seed=123_456)
    inpainter = GapInpainter(device="cpu")
    model_err = np.mean([_log_error(inpainter(c.data, c.mask), c.expected, c.mask) for c in cases])
    linear_err = np.mean(
        [_log_error(linear_interpolation(c.data, c.mask), c.expected, c.mask) for c in cases]
    )
    assert model_err < 0.9 * linear_err
