"""Batch size: chosen once, halved on out-of-memory once for all of an inpainter's streams."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from bcdi_online.inpainting import BatchSize, GapInpainter
from bcdi_online.model import GapUNet, ModelPredictor


class FitsUpTo:
    """Stand-in predictor that runs out of memory on batches larger than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit, self.sizes = limit, []

    def __call__(self, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(patches))
        if len(patches) > self.limit:
            raise torch.OutOfMemoryError(f"simulated: {len(patches)} windows")
        return 2 * patches


def _scan(n_frames: int = 40) -> tuple[np.ndarray, np.ndarray]:
    data = np.random.default_rng(0).poisson(20.0, (n_frames, 96, 96)).astype(np.float32)
    mask = np.zeros((96, 96), bool)
    mask[:, 45:51] = mask[45:51, :] = True
    return data, mask


def test_out_of_memory_is_found_once_for_every_stream(caplog) -> None:
    predictor = FitsUpTo(5)
    inpainter = GapInpainter(predictor, zero_gap=False, batch_size=16)
    data, mask = _scan()
    with caplog.at_level(logging.WARNING, "bcdi_online.inpainting"):
        first = inpainter(data, mask)
    assert [r.message for r in caplog.records] == [
        "out of memory: batch size halved to 8",
        "out of memory: batch size halved to 4",
    ]
    assert inpainter.batch_size == 16  # asked for
    assert inpainter.batch.value == 4 and inpainter.batch.halvings == 2  # in use

    caplog.clear()
    predictor.sizes.clear()
    stream = inpainter.stream(mask)  # a later run starts at the size that fits
    assert stream.batch_size == 4
    for start in range(0, len(data), 7):
        stream.add_frames(data[start : start + 7])
    np.testing.assert_array_equal(stream.finish(), first)
    assert not caplog.records and max(predictor.sizes) == 4
    np.testing.assert_allclose(first[:, mask], 2 * data[:, mask], rtol=1e-6)


def test_a_halving_in_one_stream_reaches_a_stream_already_running() -> None:
    inpainter = GapInpainter(FitsUpTo(3), zero_gap=False, batch_size=8)
    data, mask = _scan()
    running = inpainter.stream(mask)
    inpainter(data, mask)  # halves 8 -> 4 -> 2
    assert inpainter.batch.value == 2
    running.add_frames(data)
    running.finish()
    assert running.batch_size == 2 and inpainter.batch.halvings == 2


def test_batch_size_is_checked() -> None:
    with pytest.raises(ValueError, match="batch size 0 must be >= 1"):
        BatchSize(0)
    shared = BatchSize(10)
    assert shared.halve(7) == 3 and shared.halve(10) == 3 and shared.halvings == 2


def test_default_batch_size_on_cpu_is_unchanged() -> None:
    predictor = ModelPredictor(GapUNet(base_channels=4), "cpu")
    assert predictor.suggest_batch_size() == 16
    assert GapInpainter(predictor).batch_size == 16
    assert GapInpainter(lambda p, m: p).batch_size == 16


def test_precision_is_for_models_the_inpainter_wraps() -> None:
    with pytest.raises(ValueError, match="precision 'bf16' applies to a model"):
        GapInpainter(lambda p, m: p, precision="bf16")
    inpainter = GapInpainter(GapUNet(base_channels=4), device="cpu", precision="bf16")
    assert inpainter.predictor.precision == "bf16"  # type: ignore[attr-defined]
