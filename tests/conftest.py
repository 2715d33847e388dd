"""Fixtures shared by the Bluesky-side and service tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from bluesky import RunEngine
from tiled.client import from_uri
from tiled.server import SimpleTiledServer

from bcdi_online.tiled_output import read_corrected

#: Seconds a service process gets to load the model and inpaint a small scan on 2 CPU cores.
SERVICE_TIMEOUT = 120.0


def pytest_configure(config: pytest.Config) -> None:
    """Share the cores among pytest-xdist's workers: without this each worker's torch and
    BLAS (and the service processes it starts) use every core, and they oversubscribe."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


@contextmanager
def _running_engine() -> Iterator[RunEngine]:
    """A RunEngine on its own event loop, stopped and closed on exit."""
    loop = asyncio.new_event_loop()
    run_engine = RunEngine({}, call_returns_result=True, loop=loop)
    try:
        yield run_engine
    finally:
        if run_engine.state not in ("idle", "panicked"):
            run_engine.halt()
        loop.call_soon_threadsafe(loop.stop)
        run_engine._th.join()
        loop.close()


@pytest.fixture(scope="session")
def make_run_engine() -> Callable[[], AbstractContextManager[RunEngine]]:
    """Context manager factory of RunEngines, for fixtures wider than one test."""
    return _running_engine


@pytest.fixture
def run_engine() -> Iterator[RunEngine]:
    """A RunEngine on its own event loop, stopped and closed after the test."""
    with _running_engine() as run_engine:
        yield run_engine


def _in_process_tiled(storage: Path, readable: list[Path] | None = None):
    """A Tiled client context on an in-process app with a SQLite catalog in ``storage``.

    Files anywhere under the temporary directory are readable storage (the result files
    and detector files that runs register), unless ``readable`` names the folders."""
    from bluesky_tiled_plugins.exporters import json_seq_exporter
    from tiled.catalog import from_uri
    from tiled.client import Context
    from tiled.media_type_registration import default_serialization_registry
    from tiled.server.app import build_app

    default_serialization_registry.register(
        "BlueskyRun", "application/json-seq", json_seq_exporter
    )

    storage.mkdir(parents=True, exist_ok=True)
    catalog = from_uri(
        f"sqlite:///{storage}/catalog.db",
        writable_storage=str(storage),
        readable_storage=[str(p) for p in readable] if readable else [tempfile.gettempdir()],
        init_if_not_exists=True,
    )
    with warnings.catch_warnings():
        # starlette 1.x deprecates plain httpx in its TestClient (used by Context.from_app)
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        return Context.from_app(build_app(catalog))


@pytest.fixture(scope="session")
def make_tiled_context():
    """Factory ``(storage_dir, readable=None) -> tiled Context`` of an in-process Tiled app."""
    return _in_process_tiled


class OutageTransport(httpx.BaseTransport):
    """Wraps the Tiled client's transport; while ``down``, every request fails to connect."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            self.refused += 1
            raise httpx.ConnectError("connection refused (simulated outage)", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # e.g. tiled's ``transport.cache``
        return getattr(self.inner, name)


@contextmanager
def _tiled_with_outage(storage: Path) -> Iterator[tuple[Any, OutageTransport]]:
    from tiled.client import from_context

    context = _in_process_tiled(storage)
    outage = OutageTransport(context.http_client._transport)
    context.http_client._transport = outage
    with context:
        yield from_context(context), outage


@pytest.fixture(scope="session")
def tiled_with_outage() -> Callable[[Path], AbstractContextManager[tuple[Any, Any]]]:
    """``f(storage_dir)``: context manager giving an in-process Tiled client and its outage
    switch (``outage.down = True``: every request fails to connect)."""
    return _tiled_with_outage


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
    """A real ``bluesky-0MQ-proxy`` process bound to loopback; its (in, out) ports."""
    ports = free_port(), free_port()
    proxy = Path(sys.executable).with_name("bluesky-0MQ-proxy")
    process = subprocess.Popen(
        [
            str(proxy),
            "--in-address",
            f"127.0.0.1:{ports[0]}",
            "--out-address",
            f"127.0.0.1:{ports[1]}",
        ],
        stdout=subprocess.DEVNULL,
    )
    yield ports
    process.terminate()
    process.wait(10)


@pytest.fixture
def tiled_server(tmp_path: Path) -> Iterator[SimpleTiledServer]:
    """A real Tiled server (SQLite catalog, files under ``tmp_path``)."""
    server = SimpleTiledServer(directory=tmp_path / "tiled", readable_storage=[tmp_path])
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
                found = read_corrected(client, uid, status=status)
                if found is not None:
                    return found
                time.sleep(0.5)
        finally:
            client.context.close()
        raise AssertionError(f"no {status!r} corrected scan for {uid} in {SERVICE_TIMEOUT} s")

    return wait


def _archive_hdf5_scan(run_engine, client, live, source, detector_dir: Path) -> tuple[str, str]:
    """Run an ophyd-async HDF5 rocking scan of ``source``, saved by ``TiledWriter`` and
    followed by ``live``; its uid and the detector's data key, once ``live`` is done."""
    from bluesky.plans import scan
    from bluesky_tiled_plugins import TiledWriter
    from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices

    from bcdi_online.sim_devices import SimBcdiDetector, SimRockingMotor

    run_engine.subscribe(TiledWriter(client, batch_size=1))
    run_engine.subscribe(live)
    with init_devices():
        eta = SimRockingMotor()
        det = SimBcdiDetector(
            StaticPathProvider(StaticFilenameProvider("scan"), detector_dir), source, eta
        )
    (uid,) = run_engine(scan([det], eta, -0.5, 0.5, source.n_frames)).run_start_uids
    assert live.wait(120), live.health()
    return uid, det.name


@pytest.fixture(scope="session")
def archive_hdf5_scan() -> Callable[..., tuple[str, str]]:
    """``f(run_engine, client, live, source, detector_dir) -> (uid, data key)``: a scan
    saved to Tiled by ``TiledWriter`` (raw) and processed by ``live`` (corrected)."""
    return _archive_hdf5_scan


@contextmanager
def _tiled_process(arguments: list[str], api_key: str) -> Iterator[str]:
    """``tiled serve ARGUMENTS`` in a process on a free port; its URI once it answers.

    Its log goes to a temporary file (a pipe nobody reads would block the server once
    full: it logs every request), shown if it fails to start.
    """
    import tempfile

    port = free_port()
    tiled = Path(sys.executable).with_name("tiled")
    command = [str(tiled), "serve", *arguments, "--host", "127.0.0.1", "--port", str(port)]
    env = dict(os.environ, TILED_SINGLE_USER_API_KEY=api_key)
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(log.read().decode(errors="replace")[-4000:])
            try:
                if httpx.get(f"{uri}/api/v1/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tiled serve did not answer in 60 s"
            time.sleep(0.3)
        yield uri
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture(scope="session")
def tiled_process() -> Callable[[list[str], str], AbstractContextManager[str]]:
    """``f(arguments, api_key)``: context manager running ``tiled serve ARGUMENTS`` in a
    process (single-user ``api_key``) and giving its URI once it answers."""
    return _tiled_process


#: Redis of the run-queue tests (a database of the machine's server; each test its own keys).
REDIS_URL = os.environ.get("BCDI_ONLINE_TEST_REDIS", "redis://127.0.0.1:6379/0")
#: Redis database of the test Tiled servers' streaming cache (Tiled's keys have no prefix).
REDIS_CACHE_URL = os.environ.get("BCDI_ONLINE_TEST_REDIS_CACHE", "redis://127.0.0.1:6379/1")
#: PostgreSQL server of the deployment tests (an asyncpg DSN of a user who creates databases).
POSTGRES_DSN = os.environ.get(
    "BCDI_ONLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
#: The Tiled configuration deploy/ ships.
DEPLOY_TILED_CONFIG = Path(__file__).parents[1] / "deploy" / "tiled" / "config.yml"


def service_missing(reason: str) -> None:
    """Skip a test whose service (Redis, PostgreSQL) is missing; fail instead where ``CI``
    or ``BCDI_ONLINE_REQUIRE_SERVICES`` (set by ``.ci/run``) is set."""
    if os.environ.get("CI") or os.environ.get("BCDI_ONLINE_REQUIRE_SERVICES"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis server's URL (:func:`service_missing` without one)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        service_missing(f"no Redis server at {REDIS_URL} for the run-queue tests: {err}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_cache_url(redis_url: str) -> str:
    """Redis of the test Tiled servers' streaming cache (a database of its own)."""
    return REDIS_CACHE_URL


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def postgres_database() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database (dropped afterwards): its URI for Tiled's catalog
    (asyncpg) and for its tables; :func:`service_missing` without a server."""
    import asyncio
    import uuid

    import asyncpg

    name = f"bcdi_online_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        service_missing(f"no PostgreSQL to create a test database at {POSTGRES_DSN}: {err}")
    server = POSTGRES_DSN.rsplit("/", 1)[0]
    yield (
        f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{name}",
        f"{server}/{name}",
    )
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _deploy_tiled_config(
    database: tuple[str, str], root: Path, cache: str, readable: list[Path] | None = None
) -> Path:
    import yaml

    config = yaml.safe_load(DEPLOY_TILED_CONFIG.read_text())
    args = config["trees"][0]["args"]
    args["uri"] = database[0]
    args["writable_storage"] = [str(root / "data"), database[1]]
    args["readable_storage"] = [
        str(path) for path in (readable or [root / "detector", root / "fallback"])
    ]
    config["streaming_cache"]["uri"] = cache
    (root / "detector").mkdir(parents=True, exist_ok=True)
    path = root / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def deploy_tiled_config(redis_cache_url: str) -> Callable[..., Path]:
    """``f(database, root, readable=None) -> path``: deploy/tiled/config.yml with this
    test's PostgreSQL database (catalog and tables), directories under ``root`` (detector
    files in ``root / "detector"``, result files in ``root / "fallback"``, unless
    ``readable`` names the readable folders) and the streaming cache on
    :func:`redis_cache_url`."""

    def make(database: tuple[str, str], root: Path, readable: list[Path] | None = None) -> Path:
        return _deploy_tiled_config(database, root, redis_cache_url, readable)

    return make


@pytest.fixture
def queue_stream(redis_url: str) -> Iterator[str]:
    """A run-queue stream key of this test only (deleted afterwards, claims included)."""
    import uuid

    import redis

    key = f"bcdi_online_test:{uuid.uuid4().hex}"
    yield key
    client = redis.Redis.from_url(redis_url)
    client.delete(key, f"{key}:claims")
    client.close()
