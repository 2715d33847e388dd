"""Fault class: Tiled unreachable, killed or restarted, and the local fallback unwritable:
a run is ``complete`` only once its result is stored, within a bounded time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from bluesky.plans import scan
from faultkit import (
    ETA,
    N_FRAMES,
    check,
    expected_volume,
    make_live,
    outcome,
    run_scan,
    v1_detector,
)
from tiled.client import from_uri

GIVE_UP = 2.0  # seconds a finished run waits for Tiled before its result file stands for it


def test_tiled_down_for_good_falls_back_within_the_bound(run_engine, client, outage, tmp_path):
    """Fault: Tiled unreachable for the whole run and after it."""
    det, eta = v1_detector()
    live = make_live(client, tmp_path, fallback_after=GIVE_UP)
    outage.down = True
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES))
    ended = time.monotonic()
    time.sleep(0.5)
    health = live.health()[uid]
    assert health["status"] == "running" and health["saved_to"] is None  # not yet stored
    out = outcome(live, client, uid)
    took = time.monotonic() - ended
    check(
        out,
        "complete",
        network=network,
        where="fallback",
        expected=expected_volume(np.stack(det.frames), det.source.mask),
    )
    assert GIVE_UP <= took < GIVE_UP + 10.0, took
    assert (
        out.health["write_failures"] > 0 and "simulated outage" in out.health["last_write_error"]
    )


def test_tiled_down_then_back_keeps_everything_in_tiled(run_engine, client, outage, tmp_path):
    """Fault: Tiled unreachable during the scan, back before the fallback time."""

    def outage_mid_scan(name, doc):
        if name == "event" and doc["seq_num"] in (5, 30):
            outage.down = doc["seq_num"] == 5
        return [(name, doc)]

    det, eta = v1_detector()
    live = make_live(client, tmp_path)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES), outage_mid_scan)
    out = outcome(live, client, uid)
    expected = expected_volume(np.stack(det.frames), det.source.mask)
    check(out, "complete", network=network, expected=expected)
    assert out.metadata["local_fallback"] is None


def test_result_saved_nowhere_fails_with_both_errors(run_engine, client, outage, tmp_path):
    """Fault: Tiled down for good and the result directory impossible to create."""
    (tmp_path / "blocked").write_text("a file where the result directory should be")
    target = tmp_path / "blocked" / "fallback"
    det, eta = v1_detector()
    live = make_live(client, tmp_path, fallback_after=GIVE_UP, fallback_dir=target)
    outage.down = True
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES))
    out = outcome(live, client, uid)
    check(out, "failed", network=network, where=None, reason="result saved nowhere: Tiled: ")
    assert "simulated outage" in out.health["last_error"]
    assert "result file" in out.health["last_error"]
    assert not list(tmp_path.rglob("*.h5"))


@pytest.fixture
def served(killable_tiled):
    """The ``tiled serve`` process, running, and a client of it."""
    killable_tiled.ensure()
    client = from_uri(killable_tiled.uri, api_key=killable_tiled.api_key)
    yield killable_tiled, client
    client.context.close()


def test_tiled_killed_mid_scan_and_never_back_falls_back(run_engine, served, tmp_path):
    """Fault: the Tiled server process killed (SIGKILL) mid-scan, never restarted."""
    process, client = served

    def kill_at_10(name, doc):
        if name == "event" and doc["seq_num"] == 10:
            process.kill()
        return [(name, doc)]

    det, eta = v1_detector()
    live = make_live(client, tmp_path, fallback_after=GIVE_UP)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES), kill_at_10)
    out = outcome(live, None, uid)
    expected = expected_volume(np.stack(det.frames), det.source.mask)
    check(out, "complete", network=network, where="fallback", expected=expected)


def test_tiled_restarted_mid_scan_gets_the_whole_result(run_engine, served, tmp_path):
    """Fault: the Tiled server process killed mid-scan and started again on its storage."""
    process, client = served
    restart = threading.Thread(target=process.start)

    def restart_at_10(name, doc):
        if name == "event" and doc["seq_num"] == 10:
            process.kill()
            restart.start()  # back within seconds, while the scan goes on
        return [(name, doc)]

    det, eta = v1_detector(exposure_time=0.05)
    live = make_live(client, tmp_path)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES), restart_at_10)
    restart.join(60)
    out = outcome(live, client, uid)
    expected = expected_volume(np.stack(det.frames), det.source.mask)
    check(out, "complete", network=network, expected=expected)
    assert out.health["write_failures"] > 0 and out.metadata["frames_in_tiled"] == N_FRAMES
