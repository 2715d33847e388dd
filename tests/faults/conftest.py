"""Fixtures of the fault suite: an in-process Tiled and its outage switch (module-scoped)."""

from __future__ import annotations

import secrets

import pytest
import stamina
from faultprocs import (
    ArchiveServer,
    ProxyProcess,
    TiledProcess,
    free_port,
)
from tiled.client import from_uri

from bcdi_online.inpainting import GapInpainter
from bcdi_online.model import GapUNet, save_model


@pytest.fixture(autouse=True)
def _no_tiled_client_retry_waits():
    # The Tiled client retries transport errors itself (stamina, up to 45 s); in tests,
    # one attempt: the outage handling under test is the writer's own.
    with stamina.set_testing(True, attempts=1):
        yield


@pytest.fixture(scope="module")
def tiled(tmp_path_factory, tiled_with_outage):
    """An in-process Tiled server (``build_app(in_memory(...))``): client and outage switch.

    Module-scoped: an embedded Tiled server started by another module's test rewrites
    Tiled's process-wide settings, API key included, and would lock this client out."""
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


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A small untrained model: its checkpoint (for ``serve``) and an inpainter (reference)."""
    path = save_model(GapUNet(base_channels=4), tmp_path_factory.mktemp("model") / "tiny.pt")
    return path, GapInpainter(path, device="cpu")


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """A Tiled server (with document export, for replay), a client, a 0MQ proxy process."""
    server = ArchiveServer(tmp_path_factory.mktemp("world"))
    proxy = ProxyProcess().start()
    client = from_uri(server.uri)
    yield server, client, proxy
    proxy.kill()
    client.context.close()
    server.close()


@pytest.fixture(scope="session")
def killable_tiled(tmp_path_factory):
    """A ``tiled serve`` process the tests kill (``.start()`` it again when needed)."""
    process = TiledProcess(tmp_path_factory.mktemp("tiled"), free_port(), secrets.token_hex(16))
    yield process
    process.kill()
