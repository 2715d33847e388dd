"""``bcdi-online demo``: a simulated rocking scan inpainted live, raw and corrected data in Tiled.

An embedded Tiled server (SQLite catalog and data files under ``--out``, so that
``tiled serve catalog`` can serve them again), a RunEngine, a simulated MAXIPIX and
rocking motor; the raw run is saved with bluesky-tiled-plugins' ``TiledWriter``, the live
callback stores the corrected scan as a Bluesky run of its own beside it (frames in
``--out/results``, found with ``find_corrected``), then its fill uncertainty and the
crystal reconstructed from it (``--crystal``, on by default: the 64^3 box around the peak).
At the end: ``summary.json``, ``demo.png`` and ``crystal.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._options import add_crystal_option, check_device, device_name

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
    add_crystal_option(parser, "on")


def _figure(out: Path, raw: np.ndarray, corrected: np.ndarray, truth: np.ndarray) -> Path:
    from ..simulation import plot_central_slices

    return plot_central_slices(
        {"raw (gaps)": raw, "inpainted": corrected, "truth": truth},
        out / "demo.png",
        title="bcdi-online demo: central slices, log scale",
    )


def _refill_scores(
    crystal: Any,
    report: dict[str, Any],
    corrected: np.ndarray,
    mask: np.ndarray,
    expected: np.ndarray,
) -> dict[str, float]:
    """Amplitude error of the model's fill and of the crystal's refill on the region's gap."""
    from ..evaluation import amplitude_error

    if "refined_fill" not in crystal:
        return {}
    z0, z1, y0, y1, x0, x1 = report["region"]
    box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
    gap = np.broadcast_to(mask, corrected.shape)[box]
    truth = np.asarray(expected[box])
    if not np.any(truth[gap] > 0):
        return {}
    return {
        "gap_amplitude_error_model": amplitude_error(corrected[box], truth, gap),
        "gap_amplitude_error_refined": amplitude_error(crystal["refined_fill"].read(), truth, gap),
    }


def _crystal(
    node: Any,
    truth: np.ndarray,
    scan: tuple[np.ndarray, np.ndarray, np.ndarray],
    out: Path,
    title: str,
) -> dict[str, Any]:
    """Read the crystal back from Tiled; picture it, compare it with the simulated one.

    ``scan`` is (corrected volume, gap mask, noise-free intensity): the gap's refill
    from the crystal is scored against the model's fill on the phased region.
    """
    from ..evaluation import region_reference
    from ..phasing import ScanReconstruction, compare, crystal_figure

    if node is None or "crystal" not in node:
        return {"converged": False, "reason": "no crystal in Tiled"}
    crystal = node["crystal"]
    report = dict(crystal.metadata)
    if not report.get("converged"):
        return report
    modulus, phase = crystal["modulus"].read(), crystal["phase"].read()
    support = crystal["support"].read().astype(bool)
    result = ScanReconstruction(
        obj=(modulus * np.exp(1j * phase)).astype(np.complex64),
        support=support,
        region=tuple(report["region"]),  # type: ignore[arg-type]
        binning=tuple(report["binning"]),  # type: ignore[arg-type]
        treatment=str(report["treatment"]),
        converged=True,
        reason="",
        llk=float(report["llk"]),
        mode_weight=float(report["mode_weight"]),
        support_fraction=float(report["support_fraction"]),
        seconds=float(report["seconds"]),
        peak_edge_ratio=float(report["peak_edge_ratio"]),
    )
    crystal_figure(result, title=title).savefig(out / "crystal.png", dpi=100)
    report.update(
        compare(result.obj, region_reference(truth, report["region"], report["binning"])).as_dict()
    )
    report.update(_refill_scores(crystal, report, *scan))
    return report


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
    from ..testing import tiled_server
    from ..tiled_output import DEFAULT_GROUP, corrected_products, corrected_status, find_corrected

    check_device(args.device)  # a clear error before any server starts
    out = Path(args.out).resolve()
    detector_dir = out / "detector"
    detector_dir.mkdir(parents=True, exist_ok=True)
    (out / "crystal.png").unlink(missing_ok=True)  # of an earlier demo
    results_dir = out / "results"
    server = tiled_server(out, detector_dir, results_dir)
    client = None
    try:
        client = from_uri(server.uri)
        run_engine = RunEngine({})
        run_engine.subscribe(TiledWriter(client, batch_size=1))
        crystal = True if args.crystal is None else args.crystal
        live = LiveInpainting(
            client,
            model=args.model,
            device=args.device,
            crystal=crystal,
            fallback_dir=results_dir,
        )
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
        uid = str(times["uid"])
        deadline = time.monotonic() + 600
        while live.health()[uid]["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.02)  # until the corrected scan is stored
        done = time.perf_counter()
        finished = live.wait(timeout=max(0.0, deadline - time.monotonic()))
        crystal_done = time.perf_counter()
        health = live.health().get(uid, {})
        if not finished or health.get("local_fallback"):
            logger.error("live processing did not finish in Tiled: %s", health)
            return 1
        corrected_run = find_corrected(client, uid)
        corrected = np.asarray(corrected_run["primary"]["corrected"].read())
        result_uid = corrected_run.metadata["start"]["uid"]
        products = corrected_products(client, corrected_run)
        acquired = source.acquired
        raw, truth = np.asarray(acquired.data), np.asarray(acquired.truth)
        mask, expected = source.mask, source.expected
        linear = linear_interpolation(raw, mask)
        windows = int(health.get("windows", 0))
        seconds = float(health.get("inpaint_s", 0.0))
        summary = {
            "tiled_uri": server.uri.split("?")[0],
            "raw_node": f"/{uid}",
            "corrected_node": f"/{result_uid}",
            "status": corrected_status(corrected_run.metadata),
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
            "fill_sigma_node": f"/{DEFAULT_GROUP}/{result_uid}/fill_sigma"
            if products is not None and "fill_sigma" in products
            else None,
        }
        if crystal:
            summary["crystal"] = {
                "node": f"/{DEFAULT_GROUP}/{result_uid}/crystal",
                "end_of_scan_to_crystal_s": crystal_done - times["last_frame"],
                **_crystal(
                    products,
                    source.scan.obj,
                    (corrected, mask, expected),
                    out,
                    f"demo scan {uid[:8]}",
                ),
            }
        summary["health"] = health
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
        wrote = [out / "summary.json", out / "demo.png"]
        if crystal:
            found = summary["crystal"]
            verdict = (
                f"converged, phase error {found['phase_error']:.2f} rad against the "
                f"simulated crystal, {found['end_of_scan_to_crystal_s']:.0f} s after the "
                "last frame"
                + ("; the Bragg peak may lie in the gap" if found.get("peak_in_gap") else "")
                if found.get("converged")
                else f"NOT converged: {found.get('reason')}"
            )
            print(f"{'crystal_node':>24}: {found['node']} ({verdict})")
            if "gap_amplitude_error_refined" in found:
                print(
                    f"{'gap_amplitude_error':>24}: model fill "
                    f"{found['gap_amplitude_error_model']:.3f}, refilled from the crystal "
                    f"{found['gap_amplitude_error_refined']:.3f} (phased region, against "
                    "the noise-free intensity)"
                )
            elif found.get("refined_fill"):
                print(f"{'refined_fill':>24}: none: {found['refined_fill']['reason']}")
            if (out / "crystal.png").exists():
                wrote.append(out / "crystal.png")
        print(f"{'wrote':>24}: {', '.join(str(path) for path in wrote)}")
    finally:
        if client is not None:
            client.context.close()
        server.close()
    return 0
