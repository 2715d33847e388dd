"""The ``BcdiOnline`` Tango device: a real device server, 0MQ proxy, RunEngine and Tiled."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from bluesky.callbacks.zmq import Publisher
from bluesky.plans import scan
from ophyd.sim import SynAxis
from tiled.client import from_uri

from bcdi_online import inpaint
from bcdi_online.callbacks import find_corrected, msgpack_serializer
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetectorV1

tango = pytest.importorskip("tango")

N_FRAMES, ROI = 36, 64
SERVER = Path(__file__).with_name("serve_device.py")


@contextmanager
def device_server(port: int, properties: dict) -> Iterator[tango.DeviceProxy]:
    """Run ``serve_device.py`` in a process; a proxy to its device once it is exported."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER), str(port), json.dumps(properties)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []  # Tango prints its own lines before READY
        while (line := process.stdout.readline()) and line.strip() != "READY":
            lines.append(line)
        assert line, f"device server exited: {''.join(lines)}{process.stderr.read()}"
        yield tango.DeviceProxy(f"tango://127.0.0.1:{port}/test/bcdi/online#dbase=no")
    finally:
        try:
            process.communicate(input="", timeout=60)  # stdin EOF: the server exits
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)


def wait_for_state(
    device: tango.DeviceProxy,
    passing: tuple[tango.DevState, ...] = (tango.DevState.INIT,),
    timeout: float = 90.0,
) -> tango.DevState:
    """The device's state once it is in none of ``passing`` (default: has left INIT,
    as start-up runs in a thread), or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (state := device.state()) in passing and time.monotonic() < deadline:
        time.sleep(0.1)
    return state


class Events:
    """Values of change events of one attribute, as a Taurus-like client receives them."""

    def __init__(self, device: tango.DeviceProxy, attribute: str) -> None:
        self.values: list = []
        self.errors: list[str] = []
        self.device = device
        self.id = device.subscribe_event(attribute, tango.EventType.CHANGE_EVENT, self.push)

    def push(self, event) -> None:
        if event.err:
            self.errors.append(str(event.errors[0].desc))
        else:
            self.values.append(event.attr_value.value)

    def wait_for(self, value, timeout: float = 30.0) -> list:
        """The values received, once ``value`` is among them (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while value not in self.values and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.values

    def close(self) -> None:
        self.device.unsubscribe_event(self.id)


def test_device_inpaints_a_published_scan_and_reports_it(
    run_engine, zmq_proxy, tiled_server, wait_for_corrected, free_tcp_port, tmp_path
):
    in_port, out_port = zmq_proxy
    properties = {
        "ZmqAddress": f"127.0.0.1:{out_port}",
        "TiledUri": tiled_server.uri.split("?")[0],
        "TiledApiKey": tiled_server.api_key,
        "TorchDevice": "cpu",
        "FallbackDir": str(tmp_path / "fallback"),
        "Grace": 30.0,
    }
    with device_server(free_tcp_port, properties) as device:
        assert wait_for_state(device) == tango.DevState.ON
        assert "listening on" in device.status()
        assert device.LastRunUid == "" and device.LastRunStatus == ""
        states = Events(device, "State")  # pushed by the device: no polling configured
        statuses = Events(device, "LastRunStatus")
        frames = Events(device, "FramesFinal")
        time.sleep(2.5)  # 0MQ "slow joiner": let the SUB socket connect before publishing

        publisher = Publisher(f"127.0.0.1:{in_port}", serializer=msgpack_serializer)
        source = CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=7)
        eta = SynAxis(name="eta")
        run_engine.subscribe(publisher)
        try:
            (uid,) = run_engine(
                scan([SimBcdiDetectorV1(source, eta, name="mpx")], eta, -0.5, 0.5, N_FRAMES)
            ).run_start_uids
            corrected, _ = wait_for_corrected(tiled_server, uid, "complete")
        finally:
            publisher.close()
        expected = inpaint(source.acquired.data, source.mask, device="cpu")
        np.testing.assert_allclose(corrected, expected, rtol=1e-4, atol=1e-3)

        # a subscriber saw the run go by: RUNNING then ON, running then complete
        assert statuses.wait_for("complete")[-2:] == ["running", "complete"]
        seen = states.wait_for(tango.DevState.ON)
        assert seen[0] == tango.DevState.ON and tango.DevState.RUNNING in seen
        assert seen[-1] == tango.DevState.ON
        assert frames.wait_for(N_FRAMES)[-1] == N_FRAMES and frames.values == sorted(frames.values)
        assert not (states.errors or statuses.errors or frames.errors)
        for events in (states, statuses, frames):
            events.close()

        assert device.LastRunUid == uid
        assert device.LastRunStatus == "complete"
        client = from_uri(tiled_server.uri)
        corrected_uid = find_corrected(client, uid).metadata["start"]["uid"]
        client.context.close()
        assert device.CorrectedRunUid == device.CorrectedNode == corrected_uid
        assert device.SavedTo == "tiled" and device.LocalFallback == ""
        assert "complete" in device.getAttrStringValueList("LastRunStatus")
        assert device.FramesReceived == device.FramesFinal == N_FRAMES
        assert device.Windows > 0 and device.MaxFrameLatency > 0
        assert not device.Degraded and device.LastError == ""
        assert device.state() == tango.DevState.ON

        assert list(device.Stop()) == []
        assert device.state() == tango.DevState.OFF
        assert "stopped" in device.status()
        device.Start()
        assert device.state() == tango.DevState.ON


def test_device_without_tiled_answers_in_init_then_faults_and_says_why(free_tcp_port, tmp_path):
    dead = f"http://127.0.0.1:{free_tcp_port}"  # nothing listens there (the client
    # retries for about 25 s before the device gives up)
    properties = {"TiledUri": dead, "TorchDevice": "cpu", "FallbackDir": str(tmp_path)}
    with device_server(free_tcp_port + 1, properties) as device:
        assert device.state() == tango.DevState.INIT  # exported at once, still retrying
        states = Events(device, "State")
        assert "starting" in device.status() and dead in device.status()
        with pytest.raises(tango.DevFailed, match="still starting"):
            device.Start()
        with pytest.raises(tango.DevFailed, match="still starting"):
            device.Stop()
        assert wait_for_state(device) == tango.DevState.FAULT
        seen = states.wait_for(tango.DevState.FAULT)  # INIT on subscribing, then pushed
        assert list(dict.fromkeys(seen)) == [tango.DevState.INIT, tango.DevState.FAULT]
        states.close()
        assert "cannot start" in device.status() and "127.0.0.1" in device.status()
        with pytest.raises(tango.DevFailed, match="cannot start"):
            device.Start()


def test_device_whose_dispatcher_dies_is_in_fault_and_says_why(
    tiled_server, free_tcp_port, tmp_path
):
    properties = {
        "ZmqAddress": "no such host:5578",  # 0MQ refuses it in the dispatcher thread
        "TiledUri": tiled_server.uri.split("?")[0],
        "TiledApiKey": tiled_server.api_key,
        "TorchDevice": "cpu",
        "FallbackDir": str(tmp_path),
    }
    with device_server(free_tcp_port, properties) as device:
        # ON for a moment once started, then FAULT when the dispatcher thread fails
        assert wait_for_state(device, (tango.DevState.INIT, tango.DevState.ON)) == (
            tango.DevState.FAULT
        )
        status = device.status()
        assert "stopped listening on no such host:5578" in status and "ZMQError" in status
        assert list(device.Stop()) == []  # no run was in progress: nothing left behind
