"""Stage ``speed``: windows/s of the shipped model, per inference variant and batch size.

What is timed is one predictor call on windows already on the device: normalisation,
the network and the inverse normalisation (``ModelPredictor``), no host transfer; stage
``engine`` measures the whole engine. Goal: >= 20,000 windows/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from gpu_context import Context, StageSkipped, synchronize, windows_batch

from bcdi_online.model import ModelPredictor, load_model

GOAL_WINDOWS_PER_S = 20_000
#: ``torch.compile`` runs in a child process killed after this long (a compile can hang).
COMPILE_TIMEOUT_S = 150.0
WINDOW = (32, 32, 32)  # the common window (gaps up to 6 px); 12 px gaps use 32 x 40

Call = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Variant:
    """One way to run the model."""

    name: str
    precision: str = "fp32"
    channels_last: bool = False
    mode: str = "eager"
    """``eager``, ``cuda_graph`` (the whole call captured once, replayed) or ``compile``."""
    cudnn_benchmark: bool = False


VARIANTS = (
    Variant("fp32"),
    Variant("fp32_channels_last", channels_last=True),
    Variant("bf16", "bf16"),
    Variant("bf16_channels_last", "bf16", channels_last=True),
    Variant("fp16", "fp16"),
    Variant("bf16_cudnn_benchmark", "bf16", cudnn_benchmark=True),
    Variant("bf16_cuda_graph", "bf16", mode="cuda_graph"),
    Variant("fp16_cuda_graph", "fp16", mode="cuda_graph"),
    Variant("bf16_compile", "bf16", mode="compile"),
)


def _why_not(variant: Variant, ctx: Context) -> str | None:
    """Why a variant is not measured here (None: it is)."""
    if ctx.cuda:
        return None
    if variant.mode == "cuda_graph" or variant.cudnn_benchmark:
        return "needs CUDA"
    if variant.precision == "fp16":
        return "fp16 autocast on a CPU is not a target (orders of magnitude slower)"
    if variant.mode == "compile":
        return "dry run on a CPU: compiling takes minutes there; measured on the GPU node"
    return None


def _graphed(predictor: ModelPredictor, patches: torch.Tensor, masks: torch.Tensor) -> Call:
    """The predictor captured as a CUDA graph on static buffers; inputs are copied in."""
    static_p, static_m = patches.clone(), masks.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm up (cuDNN, autocast) outside the capture
            predictor(static_p, static_m)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = predictor(static_p, static_m)

    def call(p: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        static_p.copy_(p)
        static_m.copy_(m)
        graph.replay()
        return static_out

    return call


def _timed(
    call: Call, patches: torch.Tensor, masks: torch.Tensor, ctx: Context
) -> dict[str, float]:
    """Windows/s of ``call`` after a warm-up, timed for at least ``sizes.min_seconds``."""
    repeat = 5 if ctx.cuda else 1  # calls between synchronisations
    started = time.perf_counter()
    for _ in range(3 if ctx.cuda else 1):
        call(patches, masks)
    synchronize(ctx.device)
    warmup = time.perf_counter() - started
    calls, start = 0, time.perf_counter()
    while True:
        for _ in range(repeat):
            call(patches, masks)
        calls += repeat
        synchronize(ctx.device)
        elapsed = time.perf_counter() - start
        if elapsed >= ctx.sizes.min_seconds:
            break
    return {
        "windows_per_s": calls * len(patches) / elapsed,
        "ms_per_call": 1e3 * elapsed / calls,
        "calls": calls,
        "warmup_s": warmup,
    }


def _measure(variant: Variant, batch: int, ctx: Context) -> dict[str, Any]:
    torch.backends.cudnn.benchmark = variant.cudnn_benchmark
    try:
        predictor = ModelPredictor(
            load_model(device=ctx.device),
            ctx.device,
            precision=variant.precision,
            channels_last=variant.channels_last,
        )
        patches, masks = windows_batch(batch, WINDOW, ctx.device)
        call: Call = predictor
        if variant.mode == "compile":
            predictor.model = torch.compile(predictor.model)  # type: ignore[assignment]
        elif variant.mode == "cuda_graph":
            call = _graphed(predictor, patches, masks)
        if ctx.cuda:
            torch.cuda.reset_peak_memory_stats(ctx.device)
        result: dict[str, Any] = {"batch": batch, **_timed(call, patches, masks, ctx)}
        if ctx.cuda:
            result["peak_gpu_gb"] = torch.cuda.max_memory_allocated(ctx.device) / 1e9
        return result
    finally:
        torch.backends.cudnn.benchmark = False


def _measure_in_child(variant: Variant, batch: int, ctx: Context) -> dict[str, Any]:
    """:func:`_measure` in a child process, killed after :data:`COMPILE_TIMEOUT_S`."""
    timeout = min(COMPILE_TIMEOUT_S, ctx.stage_left() - 5)
    if timeout < 20:
        return {"batch": batch, "skipped": f"only {timeout:.0f} s left to compile"}
    command = [
        sys.executable,
        __file__,
        variant.name,
        str(batch),
        str(ctx.device),
        str(ctx.sizes.min_seconds),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
        )
    except subprocess.TimeoutExpired:
        return {"batch": batch, "error": f"not done after {timeout:.0f} s (killed)"}
    if done.returncode != 0:
        return {"batch": batch, "error": done.stderr.strip()[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> dict[str, Any]:
    """Measure every variant over the batch sizes (``torch.compile`` at the best ones only)."""
    if ctx.stage_left() < 10:
        raise StageSkipped(f"only {ctx.stage_left():.0f} s left for this stage")
    variants: dict[str, Any] = {}
    best_batches: list[int] = list(ctx.sizes.batch_sizes)
    for variant in VARIANTS:
        reason = _why_not(variant, ctx)
        if reason:
            variants[variant.name] = {"skipped": reason}
            continue
        batches = (
            best_batches[: ctx.sizes.compile_batches]
            if variant.mode == "compile"
            else ctx.sizes.batch_sizes
        )
        rows = []
        for batch in batches:
            if ctx.stage_left() < 5:
                rows.append({"batch": batch, "skipped": "stage time budget spent"})
                continue
            try:
                measure = _measure_in_child if variant.mode == "compile" else _measure
                rows.append(measure(variant, batch, ctx))
            except torch.OutOfMemoryError as err:
                rows.append({"batch": batch, "error": f"out of memory: {err}"[:300]})
            except Exception as err:  # a variant that fails here must not stop the others
                rows.append({"batch": batch, "error": f"{type(err).__name__}: {err}"[:2000]})
            finally:
                if ctx.cuda:
                    torch.cuda.empty_cache()
            ctx.log(f"  speed {variant.name} batch {batch}: {rows[-1]}")
        variants[variant.name] = {"rows": rows}
        if variant.name == "bf16":  # the batch sizes worth compiling for
            timed = [r for r in rows if "windows_per_s" in r]
            best_batches = [
                r["batch"] for r in sorted(timed, key=lambda r: -r["windows_per_s"])
            ] or best_batches
    measured = [
        (name, row)
        for name, entry in variants.items()
        for row in entry.get("rows", [])
        if "windows_per_s" in row
    ]
    best = max(measured, key=lambda item: item[1]["windows_per_s"], default=None)
    fp32 = [row["windows_per_s"] for name, row in measured if name == "fp32"]
    return {
        "window": list(WINDOW),
        "device": str(ctx.device),
        "variants": variants,
        "best": None if best is None else {"variant": best[0], **best[1]},
        "fp32_best_windows_per_s": max(fp32, default=None),
        "goal_windows_per_s": GOAL_WINDOWS_PER_S,
        "goal_met": None if best is None else best[1]["windows_per_s"] >= GOAL_WINDOWS_PER_S,
    }


def _child() -> None:
    """``python gpu_speed.py VARIANT BATCH DEVICE MIN_SECONDS``: one measurement, as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=[v.name for v in VARIANTS])
    parser.add_argument("batch", type=int)
    parser.add_argument("device")
    parser.add_argument("min_seconds", type=float)
    args = parser.parse_args()
    from gpu_context import FULL

    ctx = Context(
        out=Path("."),
        work=Path("."),
        device=torch.device(args.device),
        dry_run=False,
        sizes=dataclasses.replace(FULL, min_seconds=args.min_seconds),
        deadline=time.monotonic() + COMPILE_TIMEOUT_S,
        stage_deadline=time.monotonic() + COMPILE_TIMEOUT_S,
        args=argparse.Namespace(),
    )
    variant = next(v for v in VARIANTS if v.name == args.variant)
    print(json.dumps(_measure(variant, args.batch, ctx)))


if __name__ == "__main__":
    _child()
