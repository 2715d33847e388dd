"""Throughput of processors sharing one run queue: scans/min with 1, 2 and 3 processors.

Run (needs a Redis server; 2 CPU cores on the development machines)::

    python benchmarks/bench_sharing.py [--scans 12] [--frames 64] [--roi 128]
        [--processors 1 2 3] [--max-runs 2] [--redis redis://127.0.0.1:6379/0]

``--scans`` raw runs (ophyd v1 simulated MAXIPIX 2x2 rocking scans, ``--frames`` frames of
``--roi`` x ``--roi`` pixels, inline) are written once to an embedded Tiled server by
TiledWriter. Then, for each processor count P: P ``bcdi-online serve --queue`` processes
(CPU, shipped weights) start and wait on a fresh stream; every run is queued at once
(``RunAnnouncer.announce(uid, live=False)``: read back from Tiled, as after a takeover);
the clock runs from the queueing to the last run's ``complete`` result in Tiled. The
results of one P are deleted before the next. Reports scans/min and, per processor, the
runs it did, its CPU seconds (user + system, from /proc) and CPU seconds per run, and its
peak resident memory; and the CPU seconds of this process, which serves Tiled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bluesky import RunEngine
from bluesky.plans import scan
from bluesky_tiled_plugins import TiledWriter
from ophyd.sim import SynAxis
from tiled.client import from_uri
from tiled.queries import Key

from bcdi_online.callbacks import RunAnnouncer, corrected_metadata, find_corrected
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetectorV1
from bcdi_online.testing import tiled_server

CLOCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of process ``pid``, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_raw_runs(client, count: int, frames: int, roi: int) -> list[str]:
    """``count`` scans saved by TiledWriter (batch_size=1); their uids."""
    run_engine = RunEngine({}, call_returns_result=True)
    run_engine.subscribe(TiledWriter(client, batch_size=1))
    uids = []
    for n in range(count):
        source = CrystalSource.simulate("maxipix_2x2", n_frames=frames, roi_size=roi, seed=n)
        eta = SynAxis(name="eta")
        det = SimBcdiDetectorV1(source, eta, name="mpx")
        (uid,) = run_engine(scan([det], eta, -0.5, 0.5, frames)).run_start_uids
        uids.append(uid)
    return uids


def start_processors(count: int, args, uri: str, key_file: Path, stream: str, tmp: Path):
    """``count`` ``serve`` processes on ``stream``, once each says it shares the runs."""
    bcdi = str(Path(sys.executable).with_name("bcdi-online"))
    processes = []
    for index in range(count):
        name = f"bench{index}"
        out = tmp / f"{stream.rsplit(':', 1)[1]}-{name}.txt"
        command = [
            bcdi, "--log-level", "WARNING", "serve", "--zmq", args.zmq, "--tiled", uri,
            "--api-key-file", str(key_file), "--device", "cpu", "--no-crystal",
            "--fallback-dir", str(tmp / "fallback"), "--name", name, "--queue", args.redis,
            "--queue-stream", stream, "--max-runs", str(args.max_runs),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        with out.open("w") as log:
            processes.append(
                (name, out, subprocess.Popen(command, stdout=log, stderr=log, env=env))
            )
    deadline = time.monotonic() + 300
    while not all("sharing the runs" in out.read_text() for _, out, _ in processes):
        if time.monotonic() > deadline or any(p.poll() is not None for *_, p in processes):
            raise RuntimeError("a processor did not start: " + processes[0][1].read_text())
        time.sleep(0.2)
    return processes


def measure(count: int, args, client, uri: str, key_file: Path, uids: list[str], tmp: Path):
    """Queue every run for ``count`` processors; time, per-processor work and cost."""
    stream = f"bcdi_online_bench:{uuid.uuid4().hex}"
    processes = start_processors(count, args, uri, key_file, stream, tmp)
    announcer = RunAnnouncer.from_url(args.redis, stream=stream)
    cpu_before = {name: cpu_seconds(p.pid) for name, _, p in processes}
    server_before = cpu_seconds(os.getpid())  # the embedded Tiled server (and this loop)
    started = time.monotonic()
    for uid in uids:
        announcer.announce(uid, live=False)
    owners: dict[str, str] = {}
    while len(owners) < len(uids):
        for uid in set(uids) - set(owners):
            run = find_corrected(client, uid, status="complete")
            if run is not None:
                owners[uid] = corrected_metadata(run.metadata)["service"]["owner"]
        if time.monotonic() - started > 3600:
            raise RuntimeError("not all runs processed in an hour")
        time.sleep(0.2)
    took = time.monotonic() - started
    server_cpu = cpu_seconds(os.getpid()) - server_before
    per = []
    for name, _, process in processes:
        cpu = cpu_seconds(process.pid) - cpu_before[name]
        runs = sum(owner == name for owner in owners.values())
        per.append(
            {"name": name, "runs": runs, "cpu_s": round(cpu, 1),
             "cpu_s_per_run": round(cpu / runs, 2) if runs else None,
             "peak_rss_mib": round(peak_rss_mb(process.pid))}
        )  # fmt: skip
        process.send_signal(signal.SIGTERM)
    for _, _, process in processes:
        process.wait(120)
    announcer.queue.client.delete(stream, f"{stream}:claims")
    announcer.queue.close()
    for uid in uids:  # the next measurement processes the same raw runs again
        for key in list(client.search(Key("start.original_run_uid") == uid)):
            client.delete_contents(key, recursive=True, external_only=False)
    return {
        "processors": count,
        "seconds": round(took, 1),
        "scans_per_min": round(60 * len(uids) / took, 1),
        "tiled_server_cpu_s": round(server_cpu, 1),
        "per_processor": per,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=12)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--roi", type=int, default=128)
    parser.add_argument("--processors", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--max-runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--zmq", default="127.0.0.1:5599", help="(no documents come)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        server = tiled_server(tmp, tmp / "detector", tmp / "fallback")
        uri, key = server.uri.split("?")[0], server.uri.rsplit("api_key=", 1)[1]
        key_file = tmp / "key"
        key_file.write_text(key)
        client = from_uri(server.uri)
        try:
            started = time.monotonic()
            uids = write_raw_runs(client, args.scans, args.frames, args.roi)
            print(f"{args.scans} raw runs written in {time.monotonic() - started:.1f} s")
            rows = []
            for count in args.processors:
                rows.append(measure(count, args, client, uri, key_file, uids, tmp))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            client.context.close()
            server.close()
    base = rows[0]["scans_per_min"] / rows[0]["processors"]
    for row in rows:
        speedup = row["scans_per_min"] / base
        print(f"{row['processors']} processor(s): {row['scans_per_min']} scans/min "
              f"({speedup:.2f}x one processor's rate)")  # fmt: skip
    print(f"{os.cpu_count()} cores; {args.scans} scans of {args.frames} frames, {args.roi} px")


if __name__ == "__main__":
    main()
