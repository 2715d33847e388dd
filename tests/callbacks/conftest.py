"""Fixtures of the live-inpainting tests: an in-process Tiled and an outage switch."""

from __future__ import annotations

import pytest
import stamina


@pytest.fixture(autouse=True)
def _no_tiled_client_retry_waits():
    # The Tiled client retries transport errors itself (stamina, up to 45 s); in tests,
    # one attempt: the outage handling under test is the writer's own.
    with stamina.set_testing(True, attempts=1):
        yield


@pytest.fixture(scope="module")
def tiled(tmp_path_factory, tiled_with_outage):
    """An in-process Tiled server (``build_app(in_memory(...))``): client and outage switch."""
    with tiled_with_outage(tmp_path_factory.mktemp("tiled")) as pair:
        yield pair


@pytest.fixture
def outage(tiled):
    """The outage switch of the Tiled client's transport, reset after the test."""
    yield tiled[1]
    tiled[1].down = False


@pytest.fixture
def client(tiled, outage):
    """The Tiled client (reachable unless a test sets ``outage.down``)."""
    return tiled[0]
