"""Fault class: the service's processes: ``bcdi-online serve`` killed and restarted,
stopped while Tiled is down, out of disk for its fallback files, and the 0MQ proxy
restarted mid-scan. Real processes: a bluesky-0MQ-proxy, ``serve``, Tiled servers."""

from __future__ import annotations

import resource
import time

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
from bluesky.plans import scan
from bluesky.utils import RunEngineInterrupted
from bluesky_tiled_plugins import TiledWriter
from faultkit import (
    ETA,
    N_FRAMES,
    Network,
    expected_volume,
    v1_detector,
)
from faultprocs import (
    publisher,
    serve,
    wait_record,
)

from bcdi_online.callbacks import LiveInpainting, find_run, replay_run
from bcdi_online.tiled_output import find_corrected, read_result_file


def test_serve_killed_mid_run_then_restarted_marks_it_interrupted_and_replay_redoes_it(
    run_engine, world, tiny, tmp_path
):
    """Fault: ``serve`` killed (SIGKILL) mid-run, then started again."""
    server, client, proxy = world
    uri = server.uri.split("?")[0]
    first = serve(tmp_path, proxy, uri, server.api_key, "--model", str(tiny[0]), name="kill")
    first.start()
    pub = publisher(proxy)

    def kill_at_20(name, doc):
        if name == "event" and doc["seq_num"] == 20:
            first.process.kill()
        return [(name, doc)]

    det, eta = v1_detector(exposure_time=0.03)
    run_engine.subscribe(TiledWriter(client, batch_size=1))  # the raw run, for replay
    (uid,) = run_engine(scan([det], eta, *ETA, N_FRAMES), Network(pub, kill_at_20)).run_start_uids
    pub.close()
    first.process.wait(30)
    assert wait_record(client, uid, ("running",)).metadata["service"]["owner"] == "kill"

    second = serve(tmp_path, proxy, uri, server.api_key, "--model", str(tiny[0]), name="kill")
    second.start()
    node = wait_record(client, uid, ("interrupted",), timeout=10)
    assert "replay it" in node.metadata["error"]
    code, out, _ = second.stop()
    assert code == 0 and f"run {uid} left running: interrupted" in out

    live = LiveInpainting(client, model=tiny[1], fallback_dir=tmp_path / "replay")
    health = replay_run(find_run(client, uid), live, timeout=120)
    assert health["status"] == "complete"
    assert find_corrected(client, uid).metadata["start"]["uid"] == health["tiled_path"]
    expected = expected_volume(np.stack(det.frames), det.source.mask, inpainter=tiny[1])
    np.testing.assert_allclose(
        client[health["tiled_path"]]["primary"]["corrected"].read(), expected, 1e-4, 1e-3
    )


def test_sigterm_with_tiled_down_saves_the_unfinished_run_within_the_grace(
    run_engine, world, killable_tiled, tiny, tmp_path
):
    """Fault: SIGTERM while a run is in progress and Tiled is down."""
    _, _, proxy = world
    tiled = (
        killable_tiled
        if killable_tiled.process and killable_tiled.process.poll() is None
        else killable_tiled.start()
    )
    service = serve(
        tmp_path, proxy, tiled.uri, tiled.api_key, "--model", str(tiny[0]), "--grace", "2",
        name="sigterm",
    )  # fmt: skip
    service.start()
    pub = publisher(proxy)
    det, eta = v1_detector(80)

    @bpp.run_decorator(md={"num_points": 80})
    def paused_after_50():
        for position in np.linspace(*ETA, 80)[:50]:
            yield from bps.mv(eta, position)
            yield from bps.trigger_and_read([det, eta])
        yield from bps.pause()  # the run stays open: no stop document

    token = run_engine.subscribe(pub)
    with pytest.raises(RunEngineInterrupted):
        run_engine(paused_after_50())
    tiled.kill()
    time.sleep(1.0)  # the last frames reach the service
    started = time.monotonic()
    code, _, err = service.stop()
    took = time.monotonic() - started
    run_engine.unsubscribe(token)
    pub.close()
    assert code == 1 and took < 2.0 + 4.0, (took, err)  # within the grace (and the exit)
    line = next(ln for ln in err.splitlines() if "still in progress at shutdown" in ln)
    assert "interrupted, saved to" in line
    corrected, _, metadata = read_result_file(line.rsplit("saved to ", 1)[1].strip())
    assert metadata["status"] == "interrupted" and "grace period" in metadata["error"]
    assert metadata["raw_uid"] in line
    assert 0 < len(corrected) <= 50  # the final frames (no provisional ones)
    expected = expected_volume(np.stack(det.frames), det.source.mask, inpainter=tiny[1])
    np.testing.assert_allclose(corrected, expected[: len(corrected)], rtol=1e-4, atol=1e-3)


def _small_files() -> None:
    """Files of this process cannot grow beyond 256 kB: the disk is full for it."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))


def test_disk_full_for_the_fallback_and_tiled_down_fails_with_both_errors(
    run_engine, world, killable_tiled, tiny, tmp_path
):
    """Fault: Tiled down and no room for the result file (a size-limited disk)."""
    _, _, proxy = world
    tiled = (
        killable_tiled
        if killable_tiled.process and killable_tiled.process.poll() is None
        else killable_tiled.start()
    )
    service = serve(
        tmp_path, proxy, tiled.uri, tiled.api_key, "--model", str(tiny[0]), "--fallback-after",
        "1", name="diskfull", preexec_fn=_small_files,
    )  # fmt: skip
    service.start()
    tiled.kill()
    pub = publisher(proxy)
    det, eta = v1_detector()
    run_engine(scan([det], eta, *ETA, N_FRAMES), pub)
    pub.close()
    deadline = time.monotonic() + 60
    while "saved nowhere" not in service.err.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    code, _, err = service.stop()
    assert code == 1, err
    line = next(ln for ln in err.splitlines() if "NOT SAVED" in ln)
    assert "result saved nowhere: Tiled:" in line and "result file" in line
    assert "too large" in line.lower()
    assert not list((tmp_path / "diskfull" / "fallback").glob("*.h5*"))  # nothing half-written


def test_proxy_restarted_mid_scan_never_gives_a_wrong_volume(run_engine, world, tiny, tmp_path):
    """Fault: the 0MQ proxy killed mid-scan and started again 10 frames later.

    0MQ queues what the RunEngine publishes while the proxy is down (up to its high-water
    mark) and sends it once the publisher has reconnected; whatever does not get through
    is a hole the run names. Either way the volume is what arrived, in place.
    """
    server, client, proxy = world
    uri = server.uri.split("?")[0]
    service = serve(tmp_path, proxy, uri, server.api_key, "--model", str(tiny[0]), name="proxy")
    service.start()
    pub = publisher(proxy)

    def restart_proxy(name, doc):
        if name == "event" and doc["seq_num"] == 10:
            proxy.kill()
        if name == "event" and doc["seq_num"] == 20:
            proxy.start()
            time.sleep(2.0)  # both ends reconnect (0MQ does it by itself)
        return [(name, doc)]

    det, eta = v1_detector()
    network = Network(pub, restart_proxy)
    (uid,) = run_engine(scan([det], eta, *ETA, N_FRAMES), network).run_start_uids
    pub.close()
    node = wait_record(client, uid, ("incomplete", "complete", "failed"))
    code, _, err = service.stop()
    assert code == 0, err
    metadata = node.metadata
    holes = metadata["processing"]["missing_frames"]
    assert metadata["status"] == ("incomplete" if holes else "complete"), metadata
    missing = [p for a, b in holes for p in range(a, b)]
    assert all(9 <= p < 24 for p in missing), holes  # only around the outage
    expected = expected_volume(
        np.stack(det.frames), det.source.mask, missing=missing, inpainter=tiny[1]
    )
    np.testing.assert_allclose(node.read(), expected, rtol=1e-4, atol=1e-3)
