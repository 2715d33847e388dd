"""Fixtures shared by the Bluesky-side tests."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
from bluesky import RunEngine


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
