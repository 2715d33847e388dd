"""Fault class: runs the callback cannot process as described (bad geometry, no mask, no
frames, a changing detector, an aborted plan): every one still ends in a final status."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
from bluesky.plans import count, scan
from faultkit import (
    ETA,
    N_FRAMES,
    Network,
    check,
    expected_volume,
    make_live,
    outcome,
    run_scan,
    v1_detector,
)
from ophyd.sim import DirectImage, det1


@pytest.mark.parametrize(
    ("md", "reason"),
    [
        ({"bcdi_detector": "no_such_detector"}, "unknown detector 'no_such_detector'"),
        ({"bcdi_detector": "maxipix_2x2", "bcdi_roi": [500, 600, 0, 64]}, "outside the frame"),
    ],
    ids=["unknown-detector", "roi-outside-the-detector"],
)
def test_bad_geometry_in_the_start_document_fails_with_a_record(
    run_engine, client, tmp_path, md, reason
):
    """Fault: a start document naming an unknown detector, or an ROI outside it."""
    det, eta = v1_detector()
    live = make_live(client, tmp_path)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES, md=md))
    out = outcome(live, client, uid)
    check(out, "failed", network=network, reason=reason)
    assert out.metadata["raw_uid"] == uid  # a record in Tiled, not a run left "waiting"
    assert out.health["frames_failed"] == N_FRAMES


def test_no_gap_mask_anywhere_fails_with_the_reason(run_engine, client, tmp_path):
    """Fault: a detector that publishes no geometry and no pixel mask."""
    det, _ = v1_detector(8)
    image = DirectImage(name="img", func=lambda: det.source.acquire(0.0))
    live = make_live(client, tmp_path)
    uid, network = run_scan(run_engine, live, count([image], 8))
    check(outcome(live, client, uid), "failed", network=network, reason="no gap mask")


def test_mask_of_the_wrong_shape_fails_with_the_reason(run_engine, client, tmp_path):
    """Fault: a configured gap mask that does not fit the frames."""
    det, eta = v1_detector(8)
    live = make_live(client, tmp_path, mask=np.zeros((10, 10), bool))
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, 8))
    out = outcome(live, client, uid)
    check(out, "failed", network=network, reason="does not match frame shape")


def test_run_without_a_detector_is_ignored_not_left_waiting(run_engine, client, tmp_path):
    """Fault: a run with no 2D detector (an alignment count), and one with no event at all."""
    live = make_live(client, tmp_path)
    uid, _ = run_scan(run_engine, live, count([det1], 3))

    @bpp.run_decorator()
    def empty():
        yield from bps.null()

    empty_uid, _ = run_scan(run_engine, live, empty())
    assert live.wait(10)
    health = live.health()
    assert health[uid]["status"] == "ignored" and "no 2D detector" in health[uid]["reason"]
    assert (
        health[empty_uid]["status"] == "ignored" and "no 'primary'" in health[empty_uid]["reason"]
    )


def test_frame_shape_changing_mid_scan_fails_naming_the_position(run_engine, client, tmp_path):
    """Fault: a detector whose frames change shape in the middle of the scan."""

    def cropped(name, doc):
        if name == "event" and doc["seq_num"] == 12:
            doc = {**doc, "data": {**doc["data"], "mpx_image": doc["data"]["mpx_image"][:-1]}}
        return [(name, doc)]

    det, eta = v1_detector()
    live = make_live(client, tmp_path)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES), cropped)
    out = outcome(live, client, uid)
    check(out, "failed", network=network, reason="frames at position 11 have shape")


@pytest.mark.parametrize("how", ["plan-raises", "run-engine-abort"])
def test_scan_stopped_early_ends_aborted_with_the_frames_measured(
    run_engine, client, tmp_path, how
):
    """Fault: the plan raising mid-scan, or the scan paused then aborted."""
    det, eta = v1_detector()
    live = make_live(client, tmp_path)

    @bpp.run_decorator(md={"num_points": N_FRAMES})
    def stopped_at_12():
        for i, position in enumerate(np.linspace(*ETA, N_FRAMES)):
            if i == 12:
                if how == "plan-raises":
                    raise RuntimeError("beam lost")
                yield from bps.pause()
            yield from bps.mv(eta, position)
            yield from bps.trigger_and_read([det, eta])

    network = Network(live)
    with pytest.raises(Exception):  # noqa: B017 - the plan's own failure, not the callback's
        run_engine(stopped_at_12(), network)
    if how == "run-engine-abort":
        run_engine.abort("sample moved")
    (uid,) = live.runs
    out = outcome(live, client, uid)
    expected = expected_volume(np.stack(det.frames), det.source.mask)
    exit_status = "fail" if how == "plan-raises" else "abort"  # the plan's, not ours
    check(out, "aborted", network=network, exit_status=exit_status, expected=expected)
    assert out.corrected.shape[0] == 12
