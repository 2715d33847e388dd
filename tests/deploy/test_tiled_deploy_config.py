"""``deploy/tiled/config.yml`` served for real: PostgreSQL catalog, DuckDB tables,
detector files registered in place, corrected scans written, runs replayed, all kept
across a server restart.

Needs a PostgreSQL server (127.0.0.1:5432, user ``postgres``, trust or
``$BCDI_ONLINE_TEST_POSTGRES`` as an asyncpg DSN): skipped without one, except where
``BCDI_ONLINE_REQUIRE_SERVICES`` is set (``.ci/run`` sets it), where it fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest
import yaml
from tiled.client import from_uri
from tiled.queries import Key

from bcdi_online import inpaint
from bcdi_online.callbacks import LiveInpainting, find_run, replay_run
from bcdi_online.sim_devices import CrystalSource
from bcdi_online.tiled_output import corrected_status

CONFIG = Path(__file__).parents[2] / "deploy" / "tiled" / "config.yml"
ADMIN_DSN = os.environ.get(
    "BCDI_ONLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
API_KEY = secrets.token_hex(32)  # Tiled refuses weak single-user keys
N_FRAMES, ROI, WAIT = 24, 64, 120.0


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards); its asyncpg URI for Tiled."""
    name = f"bcdi_online_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        reason = f"no PostgreSQL to create a test database at {ADMIN_DSN}: {err}"
        if os.environ.get("BCDI_ONLINE_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason)
    server_dsn = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{server_dsn}/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def deploy_config(database: str, root: Path) -> Path:
    """The deploy config with this test's database and directories."""
    config = yaml.safe_load(CONFIG.read_text())
    args = config["trees"][0]["args"]
    args["uri"] = database
    args["writable_storage"] = [str(root / "data"), f"duckdb:///{root / 'tables.duckdb'}"]
    args["readable_storage"] = [str(root / "detector"), str(root / "fallback")]
    path = root / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_deploy_config_serves_raw_runs_corrected_scans_and_replay(
    database, run_engine, archive_hdf5_scan, tiled_process, tmp_path
):
    detector_dir = tmp_path / "detector"
    detector_dir.mkdir()
    config = deploy_config(database, tmp_path)
    source = CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=11)

    with tiled_process(["config", str(config)], API_KEY) as uri:
        client = from_uri(uri, api_key=API_KEY)
        try:
            live = LiveInpainting(client, device="cpu", fallback_dir=tmp_path / "fallback")
            uid, data_key = archive_hdf5_scan(run_engine, client, live, source, detector_dir)
            assert live.health()[uid]["status"] == "complete"

            replayed = replay_run(
                find_run(client, uid),
                LiveInpainting(client, device="cpu", fallback_dir=tmp_path / "fallback"),
                timeout=WAIT,
            )
            assert replayed["status"] == "complete"
            expected = inpaint(source.acquired.data, source.mask, device="cpu")
        finally:
            client.context.close()

    with tiled_process(["config", str(config)], API_KEY) as uri:  # the catalog is in PostgreSQL
        client = from_uri(uri, api_key=API_KEY)
        try:
            raw = client[uid]["primary"][data_key].read()  # the detector file, in place
            np.testing.assert_array_equal(
                np.asarray(raw).reshape(source.acquired.data.shape), source.acquired.data
            )
            runs = client.search(Key("start.original_run_uid") == uid)
            assert set(runs) == {live.health()[uid]["corrected_run_uid"], replayed["tiled_path"]}
            live_frames = runs[live.health()[uid]["corrected_run_uid"]]["primary"]["corrected"]
            np.testing.assert_allclose(live_frames.read(), expected, rtol=1e-4, atol=1e-3)
            replay_frames = client[replayed["tiled_path"]]["primary"]["corrected"].read()
            np.testing.assert_array_equal(replay_frames, live_frames.read())
            assert corrected_status(client[replayed["tiled_path"]].metadata) == "complete"
        finally:
            client.context.close()
