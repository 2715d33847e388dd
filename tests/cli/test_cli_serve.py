"""``bcdi-online serve``: a real 0MQ proxy, a consumer process, a real Tiled server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
from bluesky.callbacks.zmq import Publisher
from bluesky.plans import scan
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import SynAxis
from tiled.server import SimpleTiledServer

from bcdi_online import inpaint
from bcdi_online.callbacks import msgpack_serializer
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetectorV1

N_FRAMES, ROI = 36, 64


def _serve_command(zmq: str, server: SimpleTiledServer, tmp_path: Path, grace: float) -> list[str]:
    return [
        str(Path(sys.executable).with_name("bcdi-online")),
        "--log-level",
        "INFO",
        "serve",
        "--zmq",
        zmq,
        "--tiled",
        server.uri.split("?")[0],
        "--device",
        "cpu",
        "--fallback-dir",
        str(tmp_path / "fallback"),
        "--grace",
        str(grace),
    ]


def _start_consumer(out_port: int, server: SimpleTiledServer, tmp_path: Path, grace: float = 30.0):
    command = _serve_command(f"127.0.0.1:{out_port}", server, tmp_path, grace)
    env = dict(os.environ, TILED_API_KEY=server.api_key)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()  # printed once the dispatcher is about to start
    assert "listening on" in line, process.stderr.read()
    time.sleep(1.5)  # 0MQ "slow joiner": let the SUB socket connect before publishing
    return process


def test_serve_inpaints_runs_published_over_0mq(
    run_engine, zmq_proxy, tiled_server, wait_for_corrected, tmp_path
):
    in_port, out_port = zmq_proxy
    consumer = _start_consumer(out_port, tiled_server, tmp_path)
    publisher = Publisher(f"127.0.0.1:{in_port}", serializer=msgpack_serializer)
    try:
        source = CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=5)
        eta = SynAxis(name="eta")
        det = SimBcdiDetectorV1(source, eta, name="mpx")
        run_engine.subscribe(publisher)
        (uid,) = run_engine(scan([det], eta, -0.5, 0.5, N_FRAMES)).run_start_uids

        corrected, metadata = wait_for_corrected(tiled_server, uid, "complete")
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
    run_engine, zmq_proxy, tiled_server, tmp_path
):
    in_port, out_port = zmq_proxy
    consumer = _start_consumer(out_port, tiled_server, tmp_path, grace=2.0)
    publisher = Publisher(f"127.0.0.1:{in_port}", serializer=msgpack_serializer)
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


def test_serve_exits_1_with_the_error_when_its_dispatcher_dies(tiled_server, tmp_path):
    # 0MQ refuses this host when the dispatcher thread connects: the same path as a
    # dispatcher dying mid-service. systemd (deploy/systemd) restarts the service.
    command = _serve_command("no such host:5578", tiled_server, tmp_path, grace=2.0)
    env = dict(os.environ, TILED_API_KEY=tiled_server.api_key)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "stopped listening" in done.stderr and "ZMQError" in done.stderr
    assert "no such host:5578" in done.stderr
