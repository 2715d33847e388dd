"""``deploy/tiled/config.yml`` served for real: PostgreSQL catalog and tables, Redis
streaming cache, detector files registered in place, corrected scans written, runs
replayed, all kept across a server restart.

Needs PostgreSQL (127.0.0.1:5432, user ``postgres``, trust, or
``$BCDI_ONLINE_TEST_POSTGRES`` as an asyncpg DSN) and Redis (``$BCDI_ONLINE_TEST_REDIS_CACHE``,
default database 1 of 127.0.0.1:6379): skipped without them, except where ``CI`` or
``BCDI_ONLINE_REQUIRE_SERVICES`` is set (``.ci/run`` sets it), where it fails.
"""

from __future__ import annotations

import secrets
import time

import numpy as np
import redis
from tiled.client import from_uri
from tiled.queries import Key

from bcdi_online import inpaint
from bcdi_online.callbacks import LiveInpainting, find_run, replay_run
from bcdi_online.sim_devices import CrystalSource
from bcdi_online.tiled_output import corrected_status

API_KEY = secrets.token_hex(32)  # Tiled refuses weak single-user keys
N_FRAMES, ROI, WAIT = 24, 64, 120.0


def test_deploy_config_serves_raw_runs_corrected_scans_and_replay(
    postgres_database, redis_cache_url, deploy_tiled_config, run_engine, archive_hdf5_scan,
    tiled_process, tmp_path
):  # fmt: skip
    config = deploy_tiled_config(postgres_database, tmp_path)
    source = CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=11)
    cache = redis.Redis.from_url(redis_cache_url).pubsub(ignore_subscribe_messages=True)
    cache.psubscribe("notify:*")  # the streaming cache: each write is announced there

    with tiled_process(["config", str(config)], API_KEY) as uri:
        client = from_uri(uri, api_key=API_KEY)
        try:
            live = LiveInpainting(client, device="cpu", fallback_dir=tmp_path / "fallback")
            uid, data_key = archive_hdf5_scan(
                run_engine, client, live, source, tmp_path / "detector"
            )
            assert live.health()[uid]["status"] == "complete"
            assert len(_messages(cache)) >= N_FRAMES  # one a row appended, at least
            cache.close()

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


def _messages(pubsub: redis.client.PubSub, quiet: float = 1.0) -> list[dict]:
    """The messages ``pubsub`` received, until none came for ``quiet`` seconds."""
    messages, deadline = [], time.monotonic() + quiet
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            messages.append(message)
            deadline = time.monotonic() + quiet
    return messages
