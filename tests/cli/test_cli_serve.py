"""``bcdi-online serve``: a real 0MQ proxy, a consumer process, a real Tiled server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
from bluesky.callbacks.zmq import Publisher
from bluesky.plans import scan
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import SynAxis
from tiled.client import from_uri
from tiled.server import SimpleTiledServer

from bcdi_online import inpaint
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetectorV1

N_FRAMES, ROI = 36, 64
TIMEOUT = 120.0  # seconds: model load and inference on 2 shared CPU cores


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.fixture
def proxy() -> Iterator[tuple[int, int]]:
    ports = _free_port(), _free_port()
    process = subprocess.Popen([_bin("bluesky-0MQ-proxy"), *map(str, ports)])
    yield ports
    process.terminate()
    process.wait(10)


@pytest.fixture
def tiled(tmp_path: Path) -> Iterator[SimpleTiledServer]:
    server = SimpleTiledServer(directory=tmp_path / "tiled")
    yield server
    server.close()


def _start_consumer(out_port: int, server: SimpleTiledServer, tmp_path: Path, grace: float = 30.0):
    command = [
        _bin("bcdi-online"),
        "--log-level",
        "INFO",
        "serve",
        "--zmq",
        f"127.0.0.1:{out_port}",
        "--tiled",
        server.uri.split("?")[0],
        "--device",
        "cpu",
        "--fallback-dir",
        str(tmp_path / "fallback"),
        "--grace",
        str(grace),
    ]
    env = dict(os.environ, TILED_API_KEY=server.api_key)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()  # printed once the dispatcher is about to start
    assert "listening on" in line, process.stderr.read()
    time.sleep(1.5)  # 0MQ "slow joiner": let the SUB socket connect before publishing
    return process


def _wait_for_status(server: SimpleTiledServer, uid: str, status: str):
    """Poll Tiled until the corrected scan of ``uid`` has ``status``; its array and metadata."""
    client = from_uri(server.uri)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if "bcdi_online" in client and uid in client["bcdi_online"]:
                node = client["bcdi_online"][uid]
                if node.metadata["status"] == status:
                    return node["corrected"].read(), node.metadata
            time.sleep(0.5)
    finally:
        client.context.close()
    raise AssertionError(f"no {status!r} corrected scan for run {uid} within {TIMEOUT} s")


def test_serve_inpaints_runs_published_over_0mq(run_engine, proxy, tiled, tmp_path):
    in_port, out_port = proxy
    consumer = _start_consumer(out_port, tiled, tmp_path)
    publisher = Publisher(f"127.0.0.1:{in_port}")
    try:
        source = CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=5)
        eta = SynAxis(name="eta")
        det = SimBcdiDetectorV1(source, eta, name="mpx")
        run_engine.subscribe(publisher)
        (uid,) = run_engine(scan([det], eta, -0.5, 0.5, N_FRAMES)).run_start_uids

        corrected, metadata = _wait_for_status(tiled, uid, "complete")
        expected = inpaint(source.acquired.data, source.mask, device="cpu")
        np.testing.assert_allclose(corrected, expected, rtol=1e-4, atol=1e-3)
        assert metadata["exit_status"] == "success" and metadata["model"]["name"] == "gap_unet.pt"
    finally:
        publisher.close()
        consumer.send_signal(signal.SIGTERM)
        out, err = consumer.communicate(timeout=60)
    assert consumer.returncode == 0, err
    assert "stopping" in out


def test_serve_shutdown_with_a_run_in_progress_exits_1_and_names_it(
    run_engine, proxy, tiled, tmp_path
):
    in_port, out_port = proxy
    consumer = _start_consumer(out_port, tiled, tmp_path, grace=2.0)
    publisher = Publisher(f"127.0.0.1:{in_port}")
    token = run_engine.subscribe(publisher)
    source = CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=6)
    eta = SynAxis(name="eta")
    det = SimBcdiDetectorV1(source, eta, name="mpx")

    @bpp.run_decorator()
    def paused_scan():
        for position in np.linspace(-0.5, 0.5, 8):
            yield from bps.mv(eta, position)
            yield from bps.trigger_and_read([det, eta])
        yield from bps.pause()  # the run stays open: no stop document

    try:
        with pytest.raises(RunEngineInterrupted):
            run_engine(paused_scan())
        time.sleep(3)  # let the consumer receive the frames
    finally:
        run_engine.unsubscribe(token)
        publisher.close()
        consumer.send_signal(signal.SIGTERM)
        _, err = consumer.communicate(timeout=60)
    assert consumer.returncode == 1
    assert "still in progress" in err
