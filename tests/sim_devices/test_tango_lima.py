"""The simulated LIMA detector and motor as Tango devices, scanned through ophyd-async.

A real device server (``python -m bcdi_online.sim_devices.lima_server``: a
``MultiDeviceTestContext``, no Tango database) in its own process, a real RunEngine,
the live callback writing to an in-process Tiled app.
"""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import h5py
import numpy as np
import pytest
from bluesky.plans import scan
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices
from tiled.client import from_context

from bcdi_online import inpaint
from bcdi_online.callbacks import LiveInpainting, find_corrected, read_corrected
from bcdi_online.sim_devices import (
    DATA_PATH,
    MASK_PATH,
    CrystalSource,
    SimLimaDetector,
    TangoRockingMotor,
)

tango = pytest.importorskip("tango")

pytestmark = pytest.mark.filterwarnings(
    # pytango 10.3: a change event arriving just after ophyd-async's connect-time probe
    # subscription is undone goes to pytango's async dummy receiver, never awaited
    # (tango/device_proxy.py, unsubscribe_event); harmless, and not ours to fix
    "ignore:Exception ignored in. <coroutine object __async_dummy_event_receiver"
    ":pytest.PytestUnraisableExceptionWarning"
)

N_STEPS, ROI, SEED, DETECTOR = 12, 32, 3, "maxipix_2x2"
ETA = (-0.5, 0.5)
SERVER_OPTIONS = [
    "--detector", DETECTOR, "--n-frames", "16", "--roi-size", str(ROI), "--seed", str(SEED),
    "--eta", str(ETA[0]), str(ETA[1]),
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Seconds a device server gets to print READY (it takes 1-2 s alone, more beside other
#: test workers); after that it is started again on another port (the free port it was
#: given can be taken meanwhile by another process).
READY_TIMEOUT, STARTS = 20.0, 3


def _stop(process: subprocess.Popen, reader: threading.Thread) -> None:
    """Wait for the server's end (kill it after 30 s), then close its pipes."""
    process.stdin.close()  # stdin EOF: the server exits
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    reader.join(10)
    process.stdout.close()


def _start_server() -> tuple[subprocess.Popen, threading.Thread, str | None, list[str]]:
    """Start the device server; return it, the thread reading its output, its READY line
    (None if it never came: the server is then stopped) and what it printed before."""
    command = [sys.executable, "-m", "bcdi_online.sim_devices.lima_server"]
    process = subprocess.Popen(
        [*command, "--port", str(free_port()), *SERVER_OPTIONS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for text in process.stdout:
            lines.put(text)
        lines.put(None)  # the server exited

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    before: list[str] = []  # Tango prints its own lines before READY
    deadline = time.monotonic() + READY_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        if "READY" in line.split():
            return process, reader, line, before
        before.append(line)
    process.kill()
    _stop(process, reader)
    return process, reader, None, before


@pytest.fixture(scope="module")
def tango_servers() -> Iterator[tuple[str, str]]:
    """The LIMA-like detector and its motor served by one process: their TRLs."""
    failures = []
    for _ in range(STARTS):
        process, reader, line, before = _start_server()
        if line is not None:
            break
        failures.append("".join(before)[-2000:])
    assert line is not None, f"the device server never got ready: {failures}"
    if failures:  # shown with the module's first test should it fail
        print(f"the device server needed {len(failures) + 1} starts: {failures}", file=sys.stderr)
    try:
        # Tango's own output (stderr, merged here) may land on the same line: take the TRLs
        trls = [word for word in line.split() if word.startswith("tango://")]
        assert len(trls) == 2, line
        lima, eta = trls
        yield lima, eta
    finally:
        _stop(process, reader)


@pytest.fixture(scope="module")
def run_engine(make_run_engine):
    """One RunEngine (one event loop) for the module: ophyd-async 0.21 creates Tango
    proxies on pytango's global asyncio executor, bound to the first loop that used it;
    a later loop's connect then fails with "Event loop is closed"."""
    with make_run_engine() as run_engine:
        yield run_engine


def simulated_source() -> CrystalSource:
    """The crystal the server simulates (same options)."""
    return CrystalSource.simulate(DETECTOR, n_frames=16, roi_size=ROI, seed=SEED, eta_range=ETA)


def make_devices(tango_servers, directory, filename="scan"):
    lima, eta_trl = tango_servers
    with init_devices():
        eta = TangoRockingMotor(eta_trl)
        det = SimLimaDetector(
            lima, StaticPathProvider(StaticFilenameProvider(filename), directory)
        )
    return det, eta


def test_lima_scan_documents_file_and_frames(run_engine, tango_servers, tmp_path):
    det, eta = make_devices(tango_servers, tmp_path)
    docs: list[tuple[str, dict]] = []
    run_engine(scan([det], eta, *ETA, N_STEPS), lambda name, doc: docs.append((name, doc)))

    counts = Counter(name for name, _ in docs)
    assert counts == {
        "start": 1, "descriptor": 1, "stream_resource": 1, "stream_datum": N_STEPS,
        "event": N_STEPS, "stop": 1,
    }  # fmt: skip
    (descriptor,) = [doc for name, doc in docs if name == "descriptor"]
    path = tmp_path / "scan0000.h5"  # LIMA's <prefix><saving_next_number><suffix>
    key = descriptor["data_keys"]["det"]
    assert (key["shape"], key["dtype_numpy"], key["external"]) == ([1, ROI, ROI], "<u4", "STREAM:")
    config = descriptor["configuration"]["det"]["data"]
    assert config["det-driver-detector_name"] == DETECTOR
    (resource,) = [doc for name, doc in docs if name == "stream_resource"]
    assert resource["uri"] == f"file://localhost{path.as_posix()}"
    assert resource["parameters"]["dataset"] == DATA_PATH
    datums = [doc for name, doc in docs if name == "stream_datum"]
    assert [d["indices"] for d in datums] == [{"start": i, "stop": i + 1} for i in range(N_STEPS)]

    # the frames follow the Tango motor: the same crystal simulated here, at the event
    # angles, gives the same frames (noise of frame k: default_rng([seed, k]))
    angles = [doc["data"]["eta"] for name, doc in docs if name == "event"]
    np.testing.assert_allclose(angles, np.linspace(*ETA, N_STEPS))
    source = simulated_source()
    with h5py.File(path, "r", swmr=True) as f:
        frames = f[DATA_PATH][()]
        np.testing.assert_array_equal(f[MASK_PATH][()] != 0, source.mask)
    np.testing.assert_array_equal(frames, np.stack([source.acquire(a) for a in angles]))
    np.testing.assert_array_equal(config["det-driver-roi"], source.roi)
    assert int(frames.sum(axis=(1, 2)).argmax()) in (N_STEPS // 2 - 1, N_STEPS // 2)

    # a second scan: the next file (saving_next_number), the detector idle again
    run_engine(scan([det], eta, *ETA, 3))
    with h5py.File(tmp_path / "scan0001.h5", "r", swmr=True) as f:
        assert f[DATA_PATH].shape == (3, ROI, ROI)


def test_lima_scan_through_the_live_callback_equals_offline(
    run_engine, tango_servers, make_tiled_context, tmp_path
):
    det, eta = make_devices(tango_servers, tmp_path / "frames", "live")
    with make_tiled_context(tmp_path / "tiled") as context:
        client = from_context(context)
        live = LiveInpainting(client, device="cpu", fallback_dir=tmp_path / "fallback")
        (uid,) = run_engine(scan([det], eta, *ETA, N_STEPS), live).run_start_uids
        assert live.wait(120), live.health()
        corrected, metadata = read_corrected(client, uid)
        mask = find_corrected(client, uid)["gap_mask"]["gap_mask"].read()[0].astype(bool)
    assert metadata["status"] == "complete" and metadata["field"] == "det"
    (path,) = (tmp_path / "frames").glob("live*.h5")  # numbered by the server's saving_next_number
    with h5py.File(path, "r", swmr=True) as f:
        frames = f[DATA_PATH][()]
    assert frames.shape == (N_STEPS, ROI, ROI)
    np.testing.assert_array_equal(mask, simulated_source().mask)
    expected = inpaint(frames, mask, device="cpu")
    np.testing.assert_allclose(corrected, expected, rtol=1e-5, atol=1e-4)
