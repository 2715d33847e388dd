"""What storing a corrected scan as a Bluesky run costs: frames inline vs in a result file.

Both write ``--frames`` frames of ``--roi`` x ``--roi`` float32 through bluesky-tiled-
plugins' ``TiledWriter(batch_size=1)`` into an embedded Tiled server, one event (or one
stream datum) per slab of ``--slab`` frames, and time (1) the whole run and (2) the tail
a live run has left after its stop document: the last ``--tail`` frames and the stop.

- inline: the frames are in the events (TiledWriter writes each to a zarr array: one
  HTTP request carrying the frame per event);
- result file: :class:`~bcdi_online.tiled_output.CorrectedRunWriter`, frames to an
  HDF5 file, a stream datum per slab (one small request registering the rows); the
  tail's frames (computed before the stop, as a live run's provisional frames are) are
  declared by one stream datum with the stop.

    python benchmarks/bench_corrected_run.py            # benchmarks/results/corrected_run.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import event_model
import numpy as np
from bluesky_tiled_plugins import TiledWriter
from tiled.client import from_uri

from bcdi_online.testing import tiled_server
from bcdi_online.tiled_output import CorrectedRunWriter


def inline(client, frames: np.ndarray, slab: int, tail: int) -> tuple[float, float]:
    """Seconds for the whole run and for its last ``tail`` frames + stop, frames in events."""
    writer = TiledWriter(client, batch_size=1)
    run = event_model.compose_run()
    key = {"dtype": "array", "dtype_numpy": "<f4", "shape": list(frames.shape[1:]), "source": "x"}
    desc = run.compose_descriptor(name="primary", data_keys={"corrected": key})
    started = time.perf_counter()
    writer("start", run.start_doc)
    writer("descriptor", desc.descriptor_doc)
    tail_started = started
    for first in range(0, len(frames), slab):
        if first == len(frames) - tail:
            tail_started = time.perf_counter()
        for frame in frames[first : first + slab]:
            event = desc.compose_event(data={"corrected": frame}, timestamps={"corrected": 0.0})
            writer("event", event)
    writer("stop", run.compose_stop())
    done = time.perf_counter()
    return done - started, done - tail_started


def result_file(client, frames: np.ndarray, slab: int, tail: int, directory: Path):
    """Seconds for the whole run and for its last ``tail`` frames + stop, result file."""
    mask = np.zeros(frames.shape[1:], bool)
    started = time.perf_counter()
    writer = CorrectedRunWriter(client, "raw", mask, results_dir=directory, fallback_after=60)
    tail_started = started
    for first in range(0, len(frames), slab):
        if first == len(frames) - tail:  # a live run: the earlier frames are in by then
            while writer.state()["frames_in_tiled"] < first:
                time.sleep(0.001)
            tail_started = time.perf_counter()
        writer.append(frames[first : first + slab])
        if first + slab <= len(frames) - tail:  # the tail is declared with the stop
            writer.commit(first + slab)
    where = writer.close("complete")
    if where != "tiled":
        raise SystemExit(f"the corrected run did not reach Tiled ({where}): {writer.last_error}")
    done = time.perf_counter()
    return done - started, done - tail_started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--roi", type=int, default=516)
    parser.add_argument("--slab", type=int, default=4)
    parser.add_argument("--tail", type=int, default=12)
    args = parser.parse_args()
    frames = np.random.default_rng(0).random((args.frames, args.roi, args.roi), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        server = tiled_server(Path(tmp), Path(tmp))
        client = from_uri(server.uri)
        try:
            out = {"frames": args.frames, "roi": args.roi, "slab": args.slab, "tail": args.tail}
            for label, call in (
                ("inline", lambda: inline(client, frames, args.slab, args.tail)),
                (
                    "result_file",
                    lambda: result_file(client, frames, args.slab, args.tail, Path(tmp)),
                ),
            ):
                best = min(call() for _ in range(2))
                out[label] = {"run_s": best[0], "tail_and_stop_s": best[1]}
        finally:
            client.context.close()
            server.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
