"""Fixtures of the live-inpainting tests: an in-process Tiled and an outage switch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stamina


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


@pytest.fixture(autouse=True)
def _no_tiled_client_retry_waits():
    # The Tiled client retries transport errors itself (stamina, up to 45 s); in tests,
    # one attempt: the outage handling under test is the writer's own.
    with stamina.set_testing(True, attempts=1):
        yield


@pytest.fixture(scope="module")
def tiled(tmp_path_factory, make_tiled_context):
    """An in-process Tiled server (``build_app(in_memory(...))``): client and outage switch."""
    from tiled.client import from_context

    context = make_tiled_context(tmp_path_factory.mktemp("tiled"))
    outage = OutageTransport(context.http_client._transport)
    context.http_client._transport = outage
    with context:
        yield from_context(context), outage


@pytest.fixture
def outage(tiled):
    """The outage switch of the Tiled client's transport, reset after the test."""
    yield tiled[1]
    tiled[1].down = False


@pytest.fixture
def client(tiled, outage):
    """The Tiled client (reachable unless a test sets ``outage.down``)."""
    return tiled[0]
