"""Replay of archived runs: raw runs saved by TiledWriter, read back, processed again."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from bluesky.plans import count
from bluesky_tiled_plugins import TiledWriter
from ophyd.sim import det
from tiled.client import from_uri
from tiled.queries import Key

from bcdi_online import ReplayError, inpaint
from bcdi_online.callbacks import LiveInpainting, find_run, replay_run
from bcdi_online.inpainting import GapInpainter
from bcdi_online.sim_devices import CrystalSource
from bcdi_online.testing import tiled_server
from bcdi_online.tiled_output import corrected_metadata

N_FRAMES, ROI, WAIT = 24, 64, 60.0


def window_max(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Cheap stand-in model: each window's largest measured count."""
    measured = torch.where(masks, torch.zeros_like(patches), patches)
    return measured.amax(dim=(1, 2, 3), keepdim=True).expand_as(patches).float()


INPAINTER = GapInpainter(window_max)


@pytest.fixture(scope="module")
def archive(tmp_path_factory, make_run_engine, archive_hdf5_scan):
    """A Tiled server with json-seq export, one ophyd-async HDF5 run saved by TiledWriter
    and processed live during the scan: (server, client, uid, source)."""
    root = tmp_path_factory.mktemp("archive")
    detector_dir = root / "detector"
    detector_dir.mkdir()
    server = tiled_server(root, detector_dir, tmp_path_factory.getbasetemp())
    client = from_uri(server.uri)
    try:
        source = CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=9)
        live = LiveInpainting(client, model=INPAINTER, fallback_dir=root / "fallback")
        with make_run_engine() as run_engine:
            uid, _ = archive_hdf5_scan(run_engine, client, live, source, detector_dir)
        yield server, client, uid, source
    finally:
        client.context.close()
        server.close()


def test_replay_processes_the_archived_run_again_beside_the_live_result(archive, tmp_path):
    _, client, uid, source = archive
    live = LiveInpainting(client, model=INPAINTER, fallback_dir=tmp_path)

    health = replay_run(find_run(client, uid), live, timeout=WAIT)

    assert health["status"] == "complete" and health["frames_final"] == N_FRAMES
    assert health["read_s"] > 0  # frames read from the detector's HDF5 file again
    runs = client.search(Key("start.original_run_uid") == uid)  # tiled's own search
    assert len(runs) == 2  # the live result stays, the replay is a run of its own
    replayed = client[health["tiled_path"]]
    assert health["tiled_path"] == health["corrected_run_uid"] in runs
    (live_uid,) = set(runs) - {health["corrected_run_uid"]}
    live_result = runs[live_uid]["primary"]["corrected"].read()
    np.testing.assert_array_equal(replayed["primary"]["corrected"].read(), live_result)
    expected = INPAINTER(source.acquired.data, source.mask)
    np.testing.assert_allclose(
        replayed["primary"]["corrected"].read(), expected, rtol=1e-5, atol=1e-4
    )
    np.testing.assert_array_equal(replayed["gap_mask"]["gap_mask"].read()[0], source.mask)
    assert replayed.metadata["start"]["original_run_uid"] == uid
    assert corrected_metadata(replayed.metadata)["status"] == "complete"


def test_find_run_says_what_is_wrong(archive):
    _, client, uid, _ = archive
    with pytest.raises(ReplayError, match="no run 'not-a-uid'"):
        find_run(client, "not-a-uid")
    with pytest.raises(ReplayError, match="is not a Bluesky run"):
        find_run(client, client.create_container("plain").item["id"])


def test_cli_replay_with_the_shipped_model(archive, tmp_path):
    server, client, uid, source = archive
    command = [
        str(Path(sys.executable).with_name("bcdi-online")),
        "replay",
        uid,
        "--tiled",
        server.uri,  # carries the API key
        "--device",
        "cpu",
        "--fallback-dir",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["uid"] == uid and line["status"] == "complete"
    assert line["frames_final"] == N_FRAMES and line["windows"] > 0
    corrected = client[line["tiled_path"]]["primary"]["corrected"].read()
    expected = inpaint(source.acquired.data, source.mask, device="cpu")
    np.testing.assert_allclose(corrected, expected, rtol=1e-4, atol=1e-3)

    # a bad uid among good ones: reported, the others still replayed, exit 1
    mixed = subprocess.run(
        [*command[:2], "no-such-uid", *command[2:]], capture_output=True, text=True, timeout=300
    )
    assert mixed.returncode == 1
    assert "bcdi-online replay: no-such-uid: no run 'no-such-uid'" in mixed.stderr
    bad, good = (json.loads(line) for line in mixed.stdout.strip().splitlines()[-2:])
    assert bad["uid"] == "no-such-uid" and bad["status"] == "error" and "no run" in bad["error"]
    assert good["uid"] == uid and good["status"] == "complete"


def test_realtime_replay_keeps_the_scan_timing(archive, tmp_path):
    _, client, uid, _ = archive
    run = find_run(client, uid)
    scan_seconds = run.metadata["stop"]["time"] - run.metadata["start"]["time"]
    live = LiveInpainting(client, model=INPAINTER, fallback_dir=tmp_path)

    started = time.monotonic()
    health = replay_run(run, live, realtime=True, timeout=WAIT)

    assert health["status"] == "complete"
    assert time.monotonic() - started >= 0.9 * scan_seconds > 0


def test_a_server_without_document_export_gets_a_clear_error(run_engine, tiled_process, tmp_path):
    key = secrets.token_hex(32)
    with tiled_process(["catalog", "--temp"], key) as uri:  # no json-seq exporter
        client = from_uri(uri, api_key=key)
        try:
            run_engine.subscribe(TiledWriter(client, batch_size=1))
            (uid,) = run_engine(count([det], 3)).run_start_uids
            live = LiveInpainting(client, model=INPAINTER, fallback_dir=tmp_path)
            with pytest.raises(ReplayError, match="needs bluesky_tiled_plugins' json-seq"):
                replay_run(find_run(client, uid), live, timeout=WAIT)
        finally:
            client.context.close()
