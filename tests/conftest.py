"""Fixtures shared by the Bluesky-side and service tests."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bluesky import RunEngine
from tiled.client import from_uri
from tiled.server import SimpleTiledServer

#: Seconds a service process gets to load the model and inpaint a small scan on 2 CPU cores.
SERVICE_TIMEOUT = 120.0


@pytest.fixture
def run_engine():
    """A RunEngine on its own event loop, stopped and closed after the test."""
    loop = asyncio.new_event_loop()
    run_engine = RunEngine({}, call_returns_result=True, loop=loop)
    yield run_engine
    if run_engine.state not in ("idle", "panicked"):
        run_engine.halt()
    loop.call_soon_threadsafe(loop.stop)
    run_engine._th.join()
    loop.close()


def _in_process_tiled(storage: Path):
    """A Tiled client context on an in-process app with an in-memory catalog."""
    from tiled.catalog import in_memory
    from tiled.client import Context
    from tiled.server.app import build_app

    with warnings.catch_warnings():
        # starlette 1.x deprecates plain httpx in its TestClient (used by Context.from_app)
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        return Context.from_app(build_app(in_memory(writable_storage=str(storage))))


@pytest.fixture(scope="session")
def make_tiled_context():
    """Factory ``storage_dir -> tiled Context`` of an in-process, in-memory Tiled app."""
    return _in_process_tiled


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_tcp_port() -> int:
    """A TCP port nobody listens on now."""
    return free_port()


@pytest.fixture
def zmq_proxy() -> Iterator[tuple[int, int]]:
    """A real ``bluesky-0MQ-proxy`` process; its (in, out) ports."""
    ports = free_port(), free_port()
    proxy = Path(sys.executable).with_name("bluesky-0MQ-proxy")
    process = subprocess.Popen([str(proxy), *map(str, ports)])
    yield ports
    process.terminate()
    process.wait(10)


@pytest.fixture
def tiled_server(tmp_path: Path) -> Iterator[SimpleTiledServer]:
    """A real Tiled server (SQLite catalog, files under ``tmp_path``)."""
    server = SimpleTiledServer(directory=tmp_path / "tiled")
    yield server
    server.close()


@pytest.fixture
def wait_for_corrected() -> Callable:
    """``(server, uid, status) -> (corrected array, metadata)`` once the run has ``status``."""

    def wait(server: SimpleTiledServer, uid: str, status: str):
        client = from_uri(server.uri)
        try:
            deadline = time.monotonic() + SERVICE_TIMEOUT
            while time.monotonic() < deadline:
                if "bcdi_online" in client and uid in client["bcdi_online"]:
                    node = client["bcdi_online"][uid]
                    if node.metadata["status"] == status:
                        return node["corrected"].read(), node.metadata
                time.sleep(0.5)
        finally:
            client.context.close()
        raise AssertionError(f"no {status!r} corrected scan for {uid} in {SERVICE_TIMEOUT} s")

    return wait
