"""What every stage of ``run_gpu.py`` gets: output folder, device, sizes, time left."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


class StageSkipped(Exception):  # noqa: N818 (a stage's outcome, not an error)
    """Raised by a stage that cannot run here; the message says why (it goes in the summary)."""


@dataclass(frozen=True)
class Sizes:
    """Problem sizes: the real ones for the GPU node, tiny ones for ``--dry-run`` on a CPU."""

    batch_sizes: tuple[int, ...]
    """Windows per call in the throughput measurements."""
    min_seconds: float
    """Least time timed per throughput measurement."""
    compile_batches: int
    """How many of the best batch sizes ``torch.compile`` is measured at (1 compile each)."""
    engine_cases: tuple[tuple[str, tuple[int, int, int], str], ...]
    """(name, (n_frames, ny, nx), mask kind) of the end-to-end cases."""
    live_frames: int
    live_frame: int
    """Square frame size of the live-path case (MAXIPIX 2x2 gaps)."""
    volume_shape: tuple[int, int, int]
    """Nominal simulation grid of the training crystals."""
    validation_shape: tuple[int, int, int]
    validation_per_case: int
    validation_widths: tuple[int, ...]
    calibration_steps: int
    """Training steps timed to size the real run."""
    max_steps: int | None
    """Cap on the training steps (None: as many as the time allows)."""
    validation_batches: int
    """Batches of 16 patches per width in each per-epoch validation."""
    timing_runs: int
    """Timed runs per end-to-end case (the best is kept)."""
    eval_reserve_s: float
    """Seconds kept after training for the validation table."""


FULL = Sizes(
    batch_sizes=(16, 64, 256, 1024),
    min_seconds=1.0,
    compile_batches=1,
    engine_cases=(
        ("maxipix_2x2_128x516x516", (128, 516, 516), "maxipix_2x2"),
        ("eiger2_cross_128x256x256", (128, 256, 256), "eiger2_cross"),
    ),
    live_frames=128,
    live_frame=516,
    volume_shape=(64, 96, 96),
    validation_shape=(64, 128, 128),
    validation_per_case=2,
    validation_widths=(6, 12, 38),
    calibration_steps=40,
    max_steps=None,
    validation_batches=16,
    timing_runs=2,
    eval_reserve_s=75.0,
)

DRY = Sizes(
    batch_sizes=(2,),
    min_seconds=0.05,
    compile_batches=1,
    engine_cases=(("eiger2_cross_16x96x96", (16, 96, 96), "eiger2_cross"),),
    live_frames=20,
    live_frame=64,
    volume_shape=(40, 40, 72),
    validation_shape=(32, 64, 64),
    validation_per_case=1,
    validation_widths=(6,),
    calibration_steps=1,
    max_steps=2,
    validation_batches=1,
    timing_runs=1,
    eval_reserve_s=5.0,
)


@dataclass
class Context:
    """Shared by the stages of one run."""

    out: Path
    """Where the returned files go (a few, each < 16 MB)."""
    work: Path
    """Scratch space (training data, checkpoints): never returned."""
    device: torch.device
    dry_run: bool
    sizes: Sizes
    deadline: float
    """``time.monotonic()`` by which the whole run must be done."""
    stage_deadline: float
    """``time.monotonic()`` by which the current stage should be done (set by the driver)."""
    args: argparse.Namespace
    log: Callable[[str], None] = print

    def left(self) -> float:
        """Seconds until the deadline of the run."""
        return self.deadline - time.monotonic()

    def stage_left(self) -> float:
        """Seconds until the deadline of the current stage."""
        return min(self.stage_deadline, self.deadline) - time.monotonic()

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def peak_memory(device: torch.device, into: dict[str, Any]) -> Iterator[None]:
    """Put the peak GPU memory allocated inside the block in ``into["peak_gpu_gb"]``."""
    if device.type != "cuda":
        yield
        into["peak_gpu_gb"] = None
        return
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield
    synchronize(device)
    into["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 1e9


def poisson_volume(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Counts for speed measurements (the engine's speed does not depend on them)."""
    return np.random.default_rng(seed).poisson(5.0, size=shape).astype(np.uint32)


def gap_for(kind: str, frame: tuple[int, int]) -> np.ndarray:
    """Frame mask: ``maxipix_2x2`` (the detector), or a centred 6 px / EIGER2 12+38 px cross."""
    if kind == "maxipix_2x2":
        from bcdi_online.detectors import gap_mask

        return gap_mask("maxipix_2x2")
    rows, cols = {"maxipix_cross": (6, 6), "eiger2_cross": (38, 12)}[kind]
    ny, nx = frame
    mask = np.zeros(frame, dtype=bool)
    mask[ny // 2 - rows // 2 : ny // 2 - rows // 2 + rows, :] = True
    mask[:, nx // 2 - cols // 2 : nx // 2 - cols // 2 + cols] = True
    return mask


def windows_batch(
    batch: int, shape: tuple[int, int, int], device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` windows of counts and a centred 6 px gap, on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    patches = torch.poisson(torch.full((batch, *shape), 20.0), generator=generator)
    masks = torch.zeros(patches.shape, dtype=torch.bool)
    centre = shape[2] // 2
    masks[..., centre - 3 : centre + 3] = True
    return patches.to(device), masks.to(device)
