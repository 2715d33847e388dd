"""Stage ``training``: simulate training data on every core, train a wider/deeper model in bf16.

1. ``generate_training_set(workers=cores - 1)``: crystals simulated in worker processes;
2. a short calibration run times a training step; the real run gets as many steps as
   the time left allows (minus the validation below), with per-epoch validation;
3. the best checkpoint (``gap_unet_gpu.pt``, <= 16 MB), its history and a validation
   table (the held-out simulated scans: this model, the shipped one, linear and
   biharmonic) come back. Whether it ships is decided afterwards, on the CPU, with
   ``bcdi-online evaluate --model gap_unet_gpu.pt``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gpu_context import Context, StageSkipped

from bcdi_online.evaluation import (
    biharmonic,
    linear_interpolation,
    score_methods,
    summarise,
    validation_set,
)
from bcdi_online.inpainting import GapInpainter
from bcdi_online.model import load_model
from bcdi_online.training import TrainConfig, generate_training_set, train

MAX_WEIGHTS_BYTES = 16 * 1024**2
#: Seconds kept for saving and the summary after the validation table.
MARGIN_S = 10.0


def _history(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _config(ctx: Context, data: Path, out_dir: Path, steps: int) -> TrainConfig:
    a = ctx.args
    return TrainConfig(
        data=str(data),
        out_dir=str(out_dir),
        steps=steps,
        batch_size=a.train_batch,
        lr=a.lr,
        base_channels=a.base_channels,
        blocks=a.blocks,
        validation_volumes=max(1, min(40, a.train_volumes // 10)),
        validation_batches=ctx.sizes.validation_batches,
        steps_per_epoch=max(1, steps // 10) if not ctx.dry_run else steps,
        seed=a.train_seed,
        threads=min(8, os.cpu_count() or 1),
        device=str(ctx.device),
        precision="bf16",
    )


def _seconds_per_step(ctx: Context, data: Path, out_dir: Path) -> float:
    """Train the first few steps, timing a step (between the two first epochs).

    The real run resumes from them (its learning-rate schedule stretched to its length).
    """
    steps = ctx.sizes.calibration_steps
    config = _config(ctx, data, out_dir, steps)
    config.steps_per_epoch = max(1, steps // 2)
    started = time.perf_counter()
    train(config, resume=False)
    records = _history(out_dir / "history.jsonl")
    if len(records) >= 2:
        a, b = records[-2], records[-1]
        return (b["seconds"] - a["seconds"]) / (b["step"] - a["step"])
    return (time.perf_counter() - started) / steps


def _validation_table(ctx: Context, weights: Path) -> tuple[list[dict[str, Any]], str]:
    sizes = ctx.sizes
    cases = validation_set(
        shape=sizes.validation_shape,
        per_case=sizes.validation_per_case,
        widths=sizes.validation_widths,
    )
    methods = {
        "model": GapInpainter(weights, device=ctx.device),
        "shipped model": GapInpainter(device=ctx.device),
        "linear": linear_interpolation,
        "biharmonic": biharmonic,
    }
    if ctx.dry_run:  # the same code paths, half the CPU time
        del methods["shipped model"], methods["biharmonic"]
    rows = score_methods(methods, cases)  # type: ignore[arg-type]
    table = summarise(rows, candidate="model", reference="shipped model")
    versus_biharmonic = summarise(rows, candidate="model", reference="biharmonic")
    return rows, table + "\n" + "\n".join(versus_biharmonic.splitlines()[-2:])


def run(ctx: Context) -> dict[str, Any]:
    """Data, calibration, training for the time left, validation table."""
    a = ctx.args
    workers = a.workers if a.workers is not None else max(1, (os.cpu_count() or 2) - 1)
    started = time.perf_counter()
    data = generate_training_set(
        ctx.work / "train_patches.h5",
        n_volumes=a.train_volumes,
        volume_shape=ctx.sizes.volume_shape,
        seed=a.train_seed,
        workers=workers,
    )
    data_s = time.perf_counter() - started
    ctx.log(f"  training data: {a.train_volumes} crystals in {data_s:.1f} s ({workers} workers)")
    out_dir = ctx.work / "train"
    first = ctx.sizes.calibration_steps
    per_step = _seconds_per_step(ctx, data, out_dir)
    budget = ctx.stage_left() - ctx.sizes.eval_reserve_s - MARGIN_S
    steps = first + int(budget / (per_step * 1.1))  # 10 %: validation epochs, checkpoints
    if ctx.sizes.max_steps is not None:
        steps = min(steps, ctx.sizes.max_steps)
    if steps <= first:
        raise StageSkipped(
            f"no time left to train after the data ({data_s:.0f} s) and calibration "
            f"({per_step:.3f} s/step): {budget:.0f} s"
        )
    ctx.log(f"  training {steps} steps at {per_step * 1e3:.1f} ms/step ({budget:.0f} s budget)")
    config = _config(ctx, data, out_dir, steps)
    train_started = time.perf_counter()
    best = train(config)  # resumes after the calibration steps
    train_s = time.perf_counter() - train_started
    weights = ctx.out / "gap_unet_gpu.pt"
    shutil.copyfile(best, weights)
    shutil.copyfile(out_dir / "history.jsonl", ctx.out / "training_history.jsonl")
    history = _history(out_dir / "history.jsonl")
    model = load_model(weights, device="cpu")
    result: dict[str, Any] = {
        "config": asdict(config),
        "model_config": model.config,
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights_bytes": weights.stat().st_size,
        "data_volumes": a.train_volumes,
        "data_workers": workers,
        "data_s": data_s,
        "seconds_per_step": per_step,
        "steps": steps,
        "train_s": train_s,
        "patches_seen": steps * config.batch_size,
        "last_epoch": history[-1] if history else None,
        "best_epoch": min(history, key=lambda r: r["val_l1_32"] + r["val_l1_64"], default=None),
    }
    if result["weights_bytes"] > MAX_WEIGHTS_BYTES:
        result["problem"] = f"weights are {result['weights_bytes']} bytes (> 16 MiB)"
    if ctx.stage_left() < 5:
        result["validation"] = {"skipped": "no time left for the validation table"}
        return result
    eval_started = time.perf_counter()
    rows, table = _validation_table(ctx, weights)
    result["validation"] = {"seconds": time.perf_counter() - eval_started, "rows": rows}
    result["validation_table"] = table
    return result
