"""The engine on a CUDA device: same results as on the CPU, within the tolerances stated here.

Skipped without CUDA. Run on a GPU node by ``benchmarks/gpu/run_gpu.py`` (stage
``correctness``), which collects the numbers each test records (``record_property``)
into its summary; ``docs/how-to/gpu.md`` explains the tolerances. This directory has no
``conftest.py`` and uses none from ``tests/``: the GPU node has no Bluesky or Tiled, so
the script runs these tests with ``--confcutdir tests/gpu``.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from bcdi_online.detectors import gap_mask
from bcdi_online.evaluation import strict_pcc, validation_set
from bcdi_online.inpainting import GapInpainter
from bcdi_online.model import ModelPredictor, load_model
from bcdi_online.simulation import simulate_scan

pytestmark = pytest.mark.gpu

#: CUDA float32 vs CPU float32, gap voxels, |log1p(cuda) - log1p(cpu)|. cuDNN convolutions
#: use TF32 (10-bit mantissa) by default; float16 inputs (the same mantissa) moved the CPU
#: result by at most 0.007 (mean 0.0002) on validation volumes.
FP32_MAX, FP32_MEAN = 0.05, 0.002
#: Autocast vs float32 on the validation volumes, per volume (measured on the CPU: bf16
#: max 0.045, mean <= 0.0017; fp16 max 0.007, mean <= 0.0002; strict PCC within 1e-4).
AUTOCAST = {"bf16": (0.15, 0.005), "fp16": (0.03, 0.001)}
#: Largest strict-PCC loss (per volume) allowed for a faster precision.
PCC_LOSS = 0.002


@pytest.fixture(scope="module")
def cuda() -> str:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: torch.cuda.is_available() is False")
    return "cuda"


def log_error(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Max and mean |log1p(a) - log1p(b)| over gap voxels."""
    gap = np.broadcast_to(mask, a.shape)
    error = np.abs(np.log1p(a[gap].astype(np.float64)) - np.log1p(b[gap].astype(np.float64)))
    return float(error.max()), float(error.mean())


def assert_measured_bit_exact(out: np.ndarray, data: np.ndarray, mask: np.ndarray) -> None:
    np.testing.assert_array_equal(out[:, ~mask], data[:, ~mask].astype(np.float32))


@pytest.fixture(scope="module", params=["maxipix_2x2", "eiger2_4m"])
def scan(request):
    """A 64 x 256 x 256 scan: MAXIPIX 6 px cross, or EIGER2 12 px + 38 px cross."""
    return simulate_scan(request.param, n_frames=64, roi_size=256, seed=1)


@pytest.fixture(scope="module")
def on_cpu(scan) -> np.ndarray:
    return GapInpainter(device="cpu")(scan.data, scan.mask)


def test_cuda_equals_cpu(cuda, scan, on_cpu, record_property) -> None:
    inpainter = GapInpainter(device=cuda)
    out = inpainter(scan.data, scan.mask)
    assert out.dtype == np.float32 and out.shape == scan.data.shape
    assert_measured_bit_exact(out, scan.data, scan.mask)
    worst, mean = log_error(out, on_cpu, scan.mask)
    pcc_cuda = strict_pcc(out, scan.truth, scan.mask, scan.expected)
    pcc_cpu = strict_pcc(on_cpu, scan.truth, scan.mask, scan.expected)
    for name, value in {
        "detector": scan.detector,
        "max_log_error": worst,
        "mean_log_error": mean,
        "strict_pcc_cuda": pcc_cuda,
        "strict_pcc_cpu": pcc_cpu,
        "batch_size": inpainter.batch.value,
    }.items():
        record_property(name, value)
    assert worst <= FP32_MAX and mean <= FP32_MEAN
    assert abs(pcc_cuda - pcc_cpu) <= PCC_LOSS / 2


def test_batch_size_follows_free_gpu_memory(cuda, record_property) -> None:
    predictor = ModelPredictor(load_model(device=cuda), cuda)
    suggested = predictor.suggest_batch_size()
    record_property("suggested_batch_size", suggested)
    record_property("free_gb", torch.cuda.mem_get_info()[0] / 1e9)
    assert 16 <= suggested <= 1024
    assert 16 <= GapInpainter(predictor).batch_size <= 1024


def test_streaming_equals_offline(cuda, scan, record_property) -> None:
    inpainter = GapInpainter(device=cuda)
    offline = inpainter(scan.data, scan.mask)
    stream = inpainter.stream(scan.mask, expected_frames=len(scan.data))
    for start in range(0, len(scan.data), 5):
        stream.add_frames(scan.data[start : start + 5])
    live = stream.finish()
    assert_measured_bit_exact(live, scan.data, scan.mask)
    worst, mean = log_error(live, offline, scan.mask)
    record_property("max_log_error", worst)
    record_property("mean_log_error", mean)
    record_property("bit_identical", bool(np.array_equal(live, offline)))
    assert worst <= FP32_MAX and mean <= FP32_MEAN


@pytest.fixture
def memory_cap(cuda):
    """``cap(n_bytes)`` limits this process's CUDA memory to what it holds now + n_bytes."""

    def cap(extra: int) -> None:
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved() + extra) / total)

    torch.cuda.empty_cache()
    yield cap
    torch.cuda.set_per_process_memory_fraction(1.0)
    torch.cuda.empty_cache()


def test_out_of_memory_halves_the_batch_once_for_every_run(
    cuda, memory_cap, caplog, record_property
) -> None:
    data = np.random.default_rng(0).poisson(5.0, (128, 516, 516)).astype(np.uint32)
    mask = gap_mask("maxipix_2x2")
    reference = GapInpainter(device=cuda, batch_size=16)(data, mask)
    # memory one 32^3 window needs, measured on a batch of 16
    predictor = ModelPredictor(load_model(device=cuda), cuda)
    windows = torch.zeros((16, 32, 32, 32))
    gaps = torch.zeros(windows.shape, dtype=torch.bool)
    gaps[..., 13:19] = True
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    predictor(windows, gaps)
    per_window = (torch.cuda.max_memory_allocated() - before) / 16
    inpainter = GapInpainter(predictor, batch_size=128)  # 220 windows of 32^3 in a group
    memory_cap(int(24 * per_window))
    with caplog.at_level(logging.WARNING, "bcdi_online.inpainting"):
        capped = inpainter(data, mask)
        halvings = inpainter.batch.halvings
        again = inpainter(data, mask)  # a second run starts at the size that fitted
    record_property("per_window_mb", per_window / 1e6)
    record_property("batch_size_after", inpainter.batch.value)
    record_property("halvings", halvings)
    assert halvings >= 1 and inpainter.batch.value < 128
    assert inpainter.batch.halvings == halvings  # not found again in the second run
    assert sum("out of memory" in r.getMessage() for r in caplog.records) == halvings
    for out in (capped, again):
        assert_measured_bit_exact(out, data, mask)
        worst, mean = log_error(out, reference, mask)
        assert worst <= FP32_MAX and mean <= FP32_MEAN


@pytest.fixture(scope="module")
def validation(cuda):
    """The 12 validation volumes (one per case) and their float32 CUDA fillings."""
    cases = validation_set(per_case=1)
    inpainter = GapInpainter(device=cuda)
    return cases, [inpainter(c.data, c.mask) for c in cases]


@pytest.mark.parametrize(
    ("precision", "channels_last"), [("bf16", False), ("fp16", False), ("bf16", True)]
)
def test_autocast_accuracy_on_the_validation_volumes(
    cuda, validation, precision, channels_last, record_property
) -> None:
    cases, reference = validation
    predictor = ModelPredictor(
        load_model(device=cuda), cuda, precision=precision, channels_last=channels_last
    )
    inpainter = GapInpainter(predictor)
    limit_max, limit_mean = AUTOCAST[precision]
    worst_pcc_loss = 0.0
    for case, fp32 in zip(cases, reference, strict=True):
        out = inpainter(case.data, case.mask)
        assert_measured_bit_exact(out, case.data, case.mask)
        worst, mean = log_error(out, fp32, case.mask)
        loss = strict_pcc(fp32, case.truth, case.mask, case.expected) - strict_pcc(
            out, case.truth, case.mask, case.expected
        )
        worst_pcc_loss = max(worst_pcc_loss, loss)
        record_property(f"{case.name}_max_log_error", worst)
        record_property(f"{case.name}_mean_log_error", mean)
        record_property(f"{case.name}_strict_pcc_loss", loss)
        assert worst <= limit_max and mean <= limit_mean, case.name
    record_property("worst_strict_pcc_loss", worst_pcc_loss)
    assert worst_pcc_loss <= PCC_LOSS
