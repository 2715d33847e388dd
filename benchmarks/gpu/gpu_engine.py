"""Stages ``engine`` and ``live``: the whole engine on scans, and the live path at 100 frames/s.

``engine``: ``GapInpainter`` on a 128 x 516 x 516 MAXIPIX 2x2 scan and a 128 x 256 x 256
EIGER2 12 + 38 px cross, from host memory as the live callback and ``bcdi-online
inpaint`` use it: seconds, windows/s, peak GPU memory, and where the time goes (host
gather and blending; host-to-device copies, model, device-to-host copies, timed in a
second, instrumented run). Goal: the MAXIPIX scan in well under 0.1 s once its frames
are on the GPU; the model's share (``device_compute_s``) is what is left of the time
then, the engine's gather and blending being on the host today.

``live``: frames arrive at 100 frames/s (a producer thread) and the engine's
``GapStream`` takes what has arrived after each call, as the callback's worker does
(final frames composed, provisional ones offered).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np
import torch
from gpu_context import Context, StageSkipped, gap_for, peak_memory, poisson_volume, synchronize

from bcdi_online.inpainting import GapInpainter
from bcdi_online.model import ModelPredictor, load_model

PRECISIONS = ("fp32", "bf16")
GOAL_ON_GPU_S = 0.1
LIVE_RATE = 100.0  # frames per second


class TimedPredictor:
    """Wraps a ``ModelPredictor``: times host-to-device, model and device-to-host apart."""

    def __init__(self, predictor: ModelPredictor) -> None:
        self.inner, self.device = predictor, predictor.device
        self.size_multiple = predictor.size_multiple
        self.seconds = {"h2d_s": 0.0, "device_compute_s": 0.0, "d2h_s": 0.0}
        self.windows = 0

    def __call__(self, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        cuda = self.device.type == "cuda"
        synchronize(self.device)
        t0 = time.perf_counter()
        if cuda:
            patches_d = patches.pin_memory().to(self.device, non_blocking=True)
            masks_d = masks.pin_memory().to(self.device, non_blocking=True)
        else:
            patches_d, masks_d = patches, masks
        synchronize(self.device)
        t1 = time.perf_counter()
        out = self.inner(patches_d, masks_d)
        synchronize(self.device)
        t2 = time.perf_counter()
        host = out.to("cpu", non_blocking=True) if cuda else out
        synchronize(self.device)
        t3 = time.perf_counter()
        for key, seconds in zip(self.seconds, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            self.seconds[key] += seconds
        self.windows += len(patches)
        return host


def _case(name: str, shape: tuple[int, int, int], kind: str, ctx: Context) -> dict[str, Any]:
    data, mask = poisson_volume(shape), gap_for(kind, shape[1:])
    result: dict[str, Any] = {"shape": list(shape), "dead_pixels": int(mask.sum())}
    for precision in PRECISIONS:
        if ctx.stage_left() < 5:
            result[precision] = {"skipped": "stage time budget spent"}
            continue
        predictor = ModelPredictor(load_model(device=ctx.device), ctx.device, precision=precision)
        inpainter = GapInpainter(predictor)
        runs = []
        entry: dict[str, Any] = {"batch_size": inpainter.batch_size}
        for _ in range(ctx.sizes.timing_runs):  # the first also warms up cuDNN, allocators
            with peak_memory(ctx.device, entry):
                started = time.perf_counter()
                stream = inpainter.stream(mask)
                stream.add_frames(data)
                stream.finish()
                synchronize(ctx.device)
                runs.append((time.perf_counter() - started, stream.predict_seconds))
        seconds, predict_s = min(runs)
        windows = stream.windows_done
        timed = TimedPredictor(predictor)
        timed_inpainter = GapInpainter(timed, batch_size=inpainter.batch.value)
        started = time.perf_counter()
        timed_inpainter(data, mask)
        instrumented = time.perf_counter() - started
        transfer = timed.seconds["h2d_s"] + timed.seconds["d2h_s"]
        entry.update(
            {
                "seconds": seconds,
                "first_run_s": runs[0][0],
                "windows": windows,
                "windows_per_s": windows / seconds,
                "predictor_s": predict_s,
                "host_share": 1 - predict_s / seconds,
                "batch_size_used": inpainter.batch.value,
                "instrumented_s": instrumented,
                **timed.seconds,
                "transfer_share": transfer / instrumented,
                "device_compute_share": timed.seconds["device_compute_s"] / instrumented,
            }
        )
        if name.startswith("maxipix_2x2"):
            compute = timed.seconds["device_compute_s"]
            entry["goal_on_gpu_s"] = GOAL_ON_GPU_S
            entry["goal_on_gpu_met_by_model_work"] = compute < GOAL_ON_GPU_S
        result[precision] = entry
        ctx.log(f"  engine {name} {precision}: {entry}")
    return result


def run_engine(ctx: Context) -> dict[str, Any]:
    """End-to-end cases, fp32 and bf16."""
    if ctx.stage_left() < 10:
        raise StageSkipped(f"only {ctx.stage_left():.0f} s left for this stage")
    return {name: _case(name, shape, kind, ctx) for name, shape, kind in ctx.sizes.engine_cases}


def _live(precision: str, ctx: Context) -> dict[str, Any]:
    n, size = ctx.sizes.live_frames, ctx.sizes.live_frame
    mask = gap_for("maxipix_2x2" if size == 516 else "maxipix_cross", (size, size))
    frames = poisson_volume((n, size, size), seed=1)
    predictor = ModelPredictor(load_model(device=ctx.device), ctx.device, precision=precision)
    inpainter = GapInpainter(predictor)
    inpainter(frames[: min(n, 40)], mask)  # warm-up, as a service's first scan would be
    arrivals: queue.Queue[tuple[int, float]] = queue.Queue()

    def detector() -> None:
        start = time.perf_counter()
        for i in range(n):
            time.sleep(max(0.0, start + i / LIVE_RATE - time.perf_counter()))
            arrivals.put((i, time.perf_counter()))

    stream = inpainter.stream(mask, expected_frames=n)
    arrived = np.zeros(n)
    final_at = np.zeros(n)
    calls, busy, published = 0, 0.0, 0
    thread = threading.Thread(target=detector, daemon=True)
    thread.start()
    received = 0
    while received < n:
        items = [arrivals.get(timeout=10)]  # a dead producer fails the stage, not hangs it
        while True:
            try:
                items.append(arrivals.get_nowait())
            except queue.Empty:
                break
        started = time.perf_counter()
        for i, t in items:
            arrived[i] = t
        first, received = items[0][0], items[-1][0] + 1
        done = stream.add_frames(frames[first:received])
        if len(done):
            stream.result(done.stop, max(done.start, published))
            published = max(published, done.stop)
            final_at[done.start : done.stop] = time.perf_counter()
        ready = stream.provisional(published)
        if ready is not None:
            published = ready[0].stop
        busy += time.perf_counter() - started
        calls += 1
    last_frame = float(arrived[-1])
    done = stream.complete()
    stream.result(done.stop, done.start)
    end = time.perf_counter()
    final_at[done.start : done.stop] = end
    thread.join()
    latency = final_at - arrived
    return {
        "frames": n,
        "frame_shape": [size, size],
        "rate_fps": LIVE_RATE,
        "scan_s": last_frame - float(arrived[0]),
        "calls": calls,
        "busy_share": busy / (last_frame - float(arrived[0])),
        "mean_ms_per_frame": 1e3 * busy / n,
        "kept_up": busy / n < 1 / LIVE_RATE,
        "end_of_scan_latency_s": end - last_frame,
        "max_frame_to_final_s": float(latency.max()),
        "windows": stream.windows_done,
        "batch_size_used": stream.batch_size,
    }


def run_live(ctx: Context) -> dict[str, Any]:
    """The live path at 100 frames/s, fp32 and bf16."""
    if ctx.stage_left() < 5:
        raise StageSkipped(f"only {ctx.stage_left():.0f} s left for this stage")
    result: dict[str, Any] = {}
    for precision in PRECISIONS:
        if ctx.stage_left() < 3:
            result[precision] = {"skipped": "stage time budget spent"}
            continue
        result[precision] = _live(precision, ctx)
        ctx.log(f"  live {precision}: {result[precision]}")
    return result
