"""``bcdi-online demo``: a simulated rocking scan inpainted live, raw and corrected data in Tiled.

An embedded Tiled server (SQLite catalog and data files under ``--out``, so that
``tiled serve catalog`` can serve them again), a RunEngine, a simulated MAXIPIX and
rocking motor; the raw run is saved with bluesky-tiled-plugins' ``TiledWriter``, the live
callback writes the corrected volume beside it. At the end: ``summary.json`` and
``demo.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._options import check_device, device_name

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``demo`` options."""
    parser.add_argument(
        "--out", default="demo_out", help="output directory (default: %(default)s)"
    )
    parser.add_argument("--frames", type=int, default=128, help="rocking steps (default: 128)")
    parser.add_argument(
        "--detector", default="maxipix_2x2", help="registry name (default: %(default)s)"
    )
    parser.add_argument("--roi", type=int, default=256, help="ROI size in pixels (default: 256)")
    parser.add_argument(
        "--device",
        type=device_name,
        default=None,
        help="torch device: cpu, cuda, cuda:N (default: cuda if present, else cpu)",
    )
    parser.add_argument("--model", default=None, help="checkpoint (default: shipped weights)")
    parser.add_argument("--seed", type=int, default=1, help="crystal seed (default: 1)")


def _start_server(out: Path, detector_dir: Path) -> Any:
    from bluesky_tiled_plugins.exporters import json_seq_exporter
    from tiled.media_type_registration import default_serialization_registry
    from tiled.server import SimpleTiledServer

    # so that archived runs can be read back as documents (replay)
    default_serialization_registry.register(
        "BlueskyRun", "application/json-seq", json_seq_exporter
    )
    return SimpleTiledServer(directory=out / "tiled", readable_storage=[detector_dir])


def _figure(out: Path, raw: np.ndarray, corrected: np.ndarray, truth: np.ndarray) -> Path:
    from ..simulation import plot_central_slices

    return plot_central_slices(
        {"raw (gaps)": raw, "inpainted": corrected, "truth": truth},
        out / "demo.png",
        title="bcdi-online demo: central slices, log scale",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; return the exit code."""
    from bluesky import RunEngine
    from bluesky.plans import scan
    from bluesky_tiled_plugins import TiledWriter
    from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices
    from rich.progress import Progress
    from tiled.client import from_uri

    from ..callbacks import LiveInpainting
    from ..evaluation import linear_interpolation, strict_pcc
    from ..sim_devices import CrystalSource, SimBcdiDetector, SimRockingMotor

    check_device(args.device)  # a clear error before any server starts
    out = Path(args.out).resolve()
    detector_dir = out / "detector"
    detector_dir.mkdir(parents=True, exist_ok=True)
    server = _start_server(out, detector_dir)
    client = None
    try:
        client = from_uri(server.uri)
        run_engine = RunEngine({})
        run_engine.subscribe(TiledWriter(client, batch_size=1))
        live = LiveInpainting(client, model=args.model, device=args.device)
        run_engine.subscribe(live)
        source = CrystalSource.simulate(
            args.detector, n_frames=args.frames, roi_size=args.roi, seed=args.seed
        )
        with init_devices():
            eta = SimRockingMotor()
            det = SimBcdiDetector(
                StaticPathProvider(StaticFilenameProvider(f"scan_seed{args.seed}"), detector_dir),
                source,
                eta,
            )
        lo, hi = source.frame_angles[0], source.frame_angles[-1]
        times: dict[str, Any] = {}
        with Progress() as progress:
            task = progress.add_task("rocking scan", total=args.frames)

            def on_document(name: str, doc: Any) -> None:
                if name == "start":
                    times["uid"] = doc["uid"]
                elif name == "event":
                    progress.advance(task)
                elif name == "stop":
                    times["last_frame"] = time.perf_counter()

            started = time.perf_counter()
            run_engine(scan([det], eta, lo, hi, args.frames), on_document)
        finished = live.wait(timeout=600)
        done = time.perf_counter()
        uid = str(times["uid"])
        health = live.health().get(uid, {})
        if not finished or health.get("local_fallback"):
            logger.error("live processing did not finish in Tiled: %s", health)
            return 1
        corrected_node = client["bcdi_online"][uid]
        corrected = corrected_node["corrected"].read()
        acquired = source.acquired
        raw, truth = np.asarray(acquired.data), np.asarray(acquired.truth)
        mask, expected = source.mask, source.expected
        linear = linear_interpolation(raw, mask)
        windows = int(health.get("windows", 0))
        seconds = float(health.get("inpaint_s", 0.0))
        summary = {
            "tiled_uri": server.uri.split("?")[0],
            "raw_node": f"/{uid}",
            "corrected_node": f"/bcdi_online/{uid}",
            "status": corrected_node.metadata.get("status"),
            "detector": source.detector,
            "roi": list(source.roi),
            "frames": int(corrected.shape[0]),
            "frame_shape": list(corrected.shape[1:]),
            "device": str(getattr(live.inpainter.predictor, "device", args.device)),
            "batch_size": live.inpainter.batch.value,
            "windows": windows,
            "seconds_per_window": seconds / windows if windows else None,
            "scan_seconds": times["last_frame"] - started,
            "end_of_scan_latency_s": done - times["last_frame"],
            "strict_pcc_model": strict_pcc(corrected, truth, mask, expected),
            "strict_pcc_linear": strict_pcc(linear, truth, mask, expected),
            "health": health,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        _figure(out, raw.astype(np.float32), corrected, truth.astype(np.float32))
        for key in (
            "tiled_uri",
            "raw_node",
            "corrected_node",
            "status",
            "frames",
            "windows",
            "seconds_per_window",
            "end_of_scan_latency_s",
            "strict_pcc_model",
            "strict_pcc_linear",
        ):
            print(f"{key:>24}: {summary[key]}")
        print(f"{'wrote':>24}: {out / 'summary.json'}, {out / 'demo.png'}")
    finally:
        if client is not None:
            client.context.close()
        server.close()
    return 0
