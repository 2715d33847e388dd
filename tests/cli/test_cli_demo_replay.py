"""The demo's Tiled server can give archived runs back as Bluesky documents (replay)."""

from __future__ import annotations

from pathlib import Path

from bluesky import RunEngine
from bluesky.plans import count
from bluesky_tiled_plugins import TiledWriter
from ophyd.sim import det
from tiled.client import from_uri

from bcdi_online.testing import tiled_server


def test_archived_run_reads_back_as_documents(tmp_path: Path) -> None:
    server = tiled_server(tmp_path, tmp_path)
    client = from_uri(server.uri)
    try:
        run_engine = RunEngine({})
        run_engine.subscribe(TiledWriter(client, batch_size=1))
        (uid,) = run_engine(count([det], 3))
        names = [name for name, _ in client[uid].documents()]
        assert names[0] == "start"
        assert names[-1] == "stop"
        assert names.count("event") + names.count("event_page") >= 1
    finally:
        client.context.close()
        server.close()
