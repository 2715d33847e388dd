"""Time to read a live scan's frames: from the detector's files or from Tiled.

An ophyd-async HDF5 rocking scan (a real RunEngine, the raw run written by TiledWriter to a
real Tiled server) followed by :class:`LiveInpainting` with a stand-in model, once per
``frames_from``; prints the frames read, the worker's reading time (``read_s``, which
includes waiting for frames to be stored), the scan's duration and how long after its
end the result was done.

    python benchmarks/bench_read_frames.py --frames 64 --roi 128
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bluesky import RunEngine
from bluesky.plans import scan
from bluesky_tiled_plugins import TiledWriter
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices
from tiled.client import from_uri

from bcdi_online.callbacks import LiveInpainting
from bcdi_online.inpainting import GapInpainter
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetector, SimRockingMotor
from bcdi_online.testing import tiled_server


def _zero(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(patches)


def main() -> None:
    """Run one scan per mode and print the reading cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--roi", type=int, default=128)
    args = parser.parse_args()
    inpainter = GapInpainter(_zero)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "detector").mkdir()
        server = tiled_server(root, root / "detector", root)
        client = from_uri(server.uri)
        try:
            for mode in ("files", "tiled"):
                source = CrystalSource.simulate(
                    "maxipix_2x2", n_frames=args.frames, roi_size=args.roi, seed=1
                )
                live = LiveInpainting(client, model=inpainter, fallback_dir=root, frames_from=mode)
                engine = RunEngine({}, call_returns_result=True)
                engine.subscribe(TiledWriter(client, batch_size=1))
                engine.subscribe(live)
                with init_devices():
                    eta = SimRockingMotor()
                    det = SimBcdiDetector(
                        StaticPathProvider(StaticFilenameProvider(mode), root / "detector"),
                        source,
                        eta,
                    )
                started = time.perf_counter()
                (uid,) = engine(scan([det], eta, -0.5, 0.5, args.frames)).run_start_uids
                scanned = time.perf_counter() - started
                live.wait(300)
                after = time.perf_counter() - started - scanned
                health = live.health()[uid]
                read = health["read_s"]
                print(
                    f"frames_from={mode}: {health['status']}, {health['frames_final']} frames "
                    f"of {args.roi}x{args.roi}, read_s {read:.2f} s "
                    f"({1000 * read / args.frames:.1f} ms a frame, waits for the frames "
                    f"included); scan {scanned:.1f} s, done {after:.1f} s after it"
                )
        finally:
            client.context.close()
            server.close()


if __name__ == "__main__":
    main()
