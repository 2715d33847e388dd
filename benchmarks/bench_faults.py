"""Reliability numbers: sustained overload memory, time to the local fallback.

Run (2 CPU cores on the development machines)::

    python benchmarks/bench_faults.py [--frames 256] [--roi 128] [--window-s 0.05]
        [--fallback-after 2]

1. Sustained overload: an ophyd v1 scan of ``--frames`` MAXIPIX 2x2 frames
   (``--roi``-pixel ROI, inline) arriving faster than inference (a stand-in model that
   sleeps ``--window-s`` a window), in-process Tiled. Reports the scan and processing
   times, the worker's ``peak_backlog_bytes``, the Python heap peak (tracemalloc:
   numpy buffers included) against the raw scan size, and whether the result equals
   the offline inpainting.
2. Time to fallback: the same callback with Tiled unreachable for the whole run
   (``--fallback-after`` seconds): seconds from the end of the scan to the run's
   final status, and where the result went.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import httpx
import numpy as np
import stamina
import torch
from bluesky import RunEngine
from bluesky.plans import scan
from ophyd.sim import SynAxis
from tiled.catalog import in_memory
from tiled.client import Context, from_context
from tiled.server.app import build_app

from bcdi_online.callbacks import LiveInpainting
from bcdi_online.inpainting import GapInpainter
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetectorV1
from bcdi_online.tiled_output import read_corrected


def mean_predictor(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Stand-in model: each window's mean measured count."""
    keep = (~masks).float()
    total = (patches * keep).sum(dim=(1, 2, 3), keepdim=True)
    return (total / keep.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1)).expand_as(patches)


class Refuse(httpx.BaseTransport):
    """A transport whose every request fails to connect (Tiled down)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Tiled down", request=request)


def overload(args: argparse.Namespace, client, tmp: Path) -> dict:
    def slow(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        time.sleep(args.window_s * len(patches))
        return mean_predictor(patches, masks)

    source = CrystalSource.simulate("maxipix_2x2", n_frames=args.frames, roi_size=args.roi)
    eta = SynAxis(name="eta")
    det = SimBcdiDetectorV1(source, eta, name="mpx")
    inpainter = GapInpainter(slow, batch_size=1)
    live = LiveInpainting(client, model=inpainter, queue_size=4, fallback_dir=tmp)
    run_engine = RunEngine({})
    tracemalloc.start()
    started = time.monotonic()
    (uid,) = run_engine(scan([det], eta, -0.5, 0.5, args.frames), live)
    scan_s = time.monotonic() - started
    live.wait(3600)
    processed_s = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    health = live.health()[uid]
    corrected, _ = read_corrected(client, uid)
    expected = GapInpainter(mean_predictor)(source.acquired.data, source.mask)
    raw = source.acquired.data.astype(np.float32).nbytes
    return {
        "frames": args.frames,
        "frame_shape": list(source.mask.shape),
        "raw_scan_MB_float32": raw / 1e6,
        "scan_s": scan_s,
        "processed_s": processed_s,
        "status": health["status"],
        "degraded": health["degraded"],
        "overflow_events": health["overflow_events"],
        "peak_backlog_MB": health["peak_backlog_bytes"] / 1e6,
        "heap_peak_MB": peak / 1e6,
        "heap_peak_over_raw_scan": peak / raw,
        "equals_offline": bool(np.allclose(corrected, expected, rtol=1e-5, atol=1e-4)),
    }


def time_to_fallback(args: argparse.Namespace, client, tmp: Path) -> dict:
    source = CrystalSource.simulate("maxipix_2x2", n_frames=40, roi_size=64)
    eta = SynAxis(name="eta")
    det = SimBcdiDetectorV1(source, eta, name="mpx")
    live = LiveInpainting(
        client,
        model=GapInpainter(mean_predictor),
        fallback_after=args.fallback_after,
        fallback_dir=tmp / "fb",
    )
    transport = client.context.http_client._transport
    client.context.http_client._transport = Refuse()
    try:
        run_engine = RunEngine({})
        (uid,) = run_engine(scan([det], eta, -0.5, 0.5, 40), live)
        ended = time.monotonic()
        live.wait(600)
        seconds = time.monotonic() - ended
    finally:
        client.context.http_client._transport = transport
    health = live.health()[uid]
    return {
        "fallback_after_s": args.fallback_after,
        "scan_end_to_final_status_s": seconds,
        "status": health["status"],
        "saved_to": health["saved_to"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--roi", type=int, default=128)
    parser.add_argument("--window-s", type=float, default=0.05)
    parser.add_argument("--fallback-after", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        context = Context.from_app(build_app(in_memory(writable_storage=tmp)))
        with context, stamina.set_testing(True, attempts=1):
            client = from_context(context)
            results = {
                "overload": overload(args, client, Path(tmp)),
                "fallback": time_to_fallback(args, client, Path(tmp)),
            }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
