"""Fixtures shared by the Bluesky-side tests."""

from __future__ import annotations

import asyncio

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
