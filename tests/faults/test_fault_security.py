"""Fault class: nobody in. Hostile or broken 0MQ messages (pickle payloads, unknown names,
garbage), API keys in URIs, on command lines or only in the server's environment."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from bluesky.callbacks.zmq import Publisher
from bluesky.plans import scan
from faultkit import (
    ETA,
    N_FRAMES,
    expected_volume,
    v1_detector,
)
from faultprocs import (
    ServeProcess,
    free_port,
    serve,
    wait_record,
)

DEPLOY_PROFILE = Path(__file__).parents[2] / "deploy" / "profile" / "startup_bcdi_online_0mq.py"
TANGO_SERVER = Path(__file__).parents[1] / "tango_server" / "serve_device.py"


class Payload:
    """Unpickled, it would create ``path``: code run by whoever can publish to the proxy."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.fixture(scope="module")
def service(world, tiny, tmp_path_factory):
    """One ``serve`` (key in a file) for the module's tests."""
    server, _, proxy = world
    directory = tmp_path_factory.mktemp("security")
    process = serve(
        directory,
        proxy,
        server.uri.split("?")[0],
        server.api_key,
        "--model",
        str(tiny[0]),
        name="security",
    )
    yield process.start()
    process.stop()


def _scan_through_the_deploy_profile(run_engine, proxy) -> tuple[str, object]:
    """A scan published by the shipped profile snippet (msgpack), as at a beamline."""
    tokens = []

    class Profile:  # what the snippet sees as ``RE``
        def subscribe(self, callback):
            tokens.append(run_engine.subscribe(callback))

    namespace = {"RE": Profile()}
    os.environ["BCDI_ONLINE_ZMQ_IN"] = f"127.0.0.1:{proxy.in_port}"
    try:
        exec(compile(DEPLOY_PROFILE.read_text(), str(DEPLOY_PROFILE), "exec"), namespace)  # noqa: S102
    finally:
        del os.environ["BCDI_ONLINE_ZMQ_IN"]
    time.sleep(1.0)  # slow joiner
    det, eta = v1_detector()
    try:
        (uid,) = run_engine(scan([det], eta, *ETA, N_FRAMES)).run_start_uids
    finally:
        run_engine.unsubscribe(tokens[0])
        namespace["bcdi_publisher"].close()
    return uid, det


def test_hostile_and_broken_messages_never_stop_serve_nor_run_code(
    run_engine, world, service, tiny, tmp_path
):
    """Fault: pickle payloads, object arrays, unknown names, garbage, non-documents."""
    _, client, proxy = world
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Payload(marker))
    object_array = {b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1], b"data": evil}
    messages = [
        b" start " + evil,  # bluesky's default Publisher: pickle
        b" start " + pickle.dumps({"uid": "x", "time": 0.0}),
        b" start " + msgpack.packb({"uid": "y", "frames": object_array}, use_bin_type=True),
        b" no_such_document " + msgpack.packb({"uid": "z"}),
        b" event " + msgpack.packb([1, 2, 3]),
        b" start \x00\xff not msgpack at all",
        b"no-spaces-at-all",
        b" \xff\xfe " + msgpack.packb({}),
    ]
    context = zmq.Context()
    sock = context.socket(zmq.PUB)
    sock.connect(f"tcp://127.0.0.1:{proxy.in_port}")
    time.sleep(1.0)  # slow joiner
    for message in messages:
        sock.send(message)
    time.sleep(1.0)
    sock.close(linger=0)
    context.term()

    uid, det = _scan_through_the_deploy_profile(run_engine, proxy)
    node = wait_record(client, uid, ("complete", "incomplete", "failed"))
    assert node.metadata["status"] == "complete"
    expected = expected_volume(np.stack(det.frames), det.source.mask, inpainter=tiny[1])
    np.testing.assert_allclose(node.read(), expected, rtol=1e-4, atol=1e-3)
    assert service.process.poll() is None  # still serving
    assert not marker.exists()  # nothing was unpickled
    assert service.err.read_text().count("0MQ message of") == len(messages)


def test_api_key_not_on_the_command_line_nor_in_any_output(world, service):
    """Fault: an API key exposed by the process table or the logs."""
    server, _, _ = world
    cmdline = Path(f"/proc/{service.process.pid}/cmdline").read_bytes().decode()
    assert server.api_key not in cmdline and "--api-key-file" in cmdline
    assert server.api_key not in service.out.read_text() + service.err.read_text()


def test_api_key_inside_the_tiled_uri_is_redacted(world, tiny, tmp_path):
    """Fault: a key passed inside ``--tiled http://...?api_key=KEY`` (printed today)."""
    server, _, proxy = world
    process = ServeProcess(
        tmp_path, f"127.0.0.1:{proxy.out_port}", server.uri, "--model", str(tiny[0])
    )  # server.uri carries ?api_key=...
    code, out, err = process.start().stop()
    assert code == 0, err
    assert "api_key=***" in out
    assert server.api_key not in out + err


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"TILED_SINGLE_USER_API_KEY": "{key}"}, [], "requires API key authentication"),
        ({"TILED_API_KEY": "0badc0ffee"}, [], "refused the API key (401)"),
        ({"TILED_API_KEY": "{key}"}, ["--allow-pickle", "--zmq", "10.1.2.3:5578"], "refused"),
        ({}, ["--api-key-file", "/no/such/file"], "cannot read a Tiled API key"),
        (
            {"TILED_API_KEY": "{key}"},
            ["--queue", "redis://:0badc0ffee@127.0.0.1:1/0"],
            "cannot reach the run queue at redis://:***@127.0.0.1:1/0",
        ),
    ],
    ids=[
        "server-key-not-used", "wrong-key", "pickle-off-loopback", "missing-key-file",
        "queue-unreachable",
    ],
)  # fmt: skip
def test_refused_set_ups_exit_2_with_one_line(world, tmp_path, env, args, message):
    """Fault: the server's own key as the only key, a wrong key, pickle from another host,
    a key file that does not exist, a run queue (Redis) that cannot be reached."""
    server, _, proxy = world
    env = {k: v.format(key=server.api_key) for k, v in env.items()}
    process = ServeProcess(
        tmp_path, f"127.0.0.1:{proxy.out_port}", server.uri.split("?")[0], *args, env=env
    )
    code, out, err = process.start(wait=False).wait()
    assert code == 2, err
    assert err.startswith("bcdi-online serve: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert server.api_key not in out + err and "0badc0ffee" not in out + err


def test_pickle_accepted_only_when_asked_and_on_loopback(run_engine, world, tiny, tmp_path):
    """Fault: a RunEngine still publishing pickle (bluesky's default) to ``--allow-pickle``."""
    server, client, proxy = world
    process = serve(
        tmp_path, proxy, server.uri.split("?")[0], server.api_key, "--model", str(tiny[0]),
        "--allow-pickle", name="pickle",
    )  # fmt: skip
    process.start()
    publisher = Publisher(f"127.0.0.1:{proxy.in_port}")  # pickle
    det, eta = v1_detector()
    (uid,) = run_engine(scan([det], eta, *ETA, N_FRAMES), publisher).run_start_uids
    publisher.close()
    node = wait_record(client, uid, ("complete", "incomplete", "failed"))
    code, out, err = process.stop()
    assert code == 0 and "pickle (loopback only)" in out, err
    expected = expected_volume(np.stack(det.frames), det.source.mask, inpainter=tiny[1])
    np.testing.assert_allclose(node.read(), expected, rtol=1e-4, atol=1e-3)


def test_tango_status_never_shows_the_key(world, tmp_path):
    """Fault: a Tango device given a Tiled URI with a (wrong) key inside."""
    tango = pytest.importorskip("tango")
    server, _, _ = world
    secret = "f00dfeedf00dfeed"
    properties = {
        "TiledUri": f"{server.uri.split('?')[0]}?api_key={secret}",
        "TorchDevice": "cpu",
        "FallbackDir": str(tmp_path),
    }
    port = free_port()
    device_server = subprocess.Popen(
        [sys.executable, str(TANGO_SERVER), str(port), json.dumps(properties)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while (line := device_server.stdout.readline()) and line.strip() != "READY":
            pass
        device = tango.DeviceProxy(f"tango://127.0.0.1:{port}/test/bcdi/online#dbase=no")
        statuses = [device.status()]
        deadline = time.monotonic() + 60
        while device.state() == tango.DevState.INIT and time.monotonic() < deadline:
            time.sleep(0.1)
        statuses.append(device.status())
        assert device.state() == tango.DevState.FAULT
    finally:
        out, _ = device_server.communicate(input="", timeout=60)
    assert "refused the API key" in statuses[-1] and "api_key=***" in statuses[-1]
    assert all(secret not in status for status in statuses) and secret not in out
