"""Fault class: measured pixels that cannot be counts (NaN, inf, negative): dead for their
frame, filled and counted; a frame with too many fails the run, naming it."""

from __future__ import annotations

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

from bcdi_online.inpainting import MAX_BAD_FRACTION


def _put(value, where):
    """``alter`` putting ``value`` at ``where`` (frame -> list of (y, x) or slices)."""

    def alter(index, frame):
        for spot in where.get(index, []):
            frame[spot] = value
        return frame

    return alter


CASES = {
    "nan-pixel": (np.nan, {7: [(5, 7)], 30: [(40, 50)]}),
    "negative-pixel": (-3.0, {0: [(10, 12)], 20: [(10, 12), (11, 12)]}),
    "inf-pixel": (np.inf, {N_FRAMES - 1: [(60, 3)]}),
    "row-fragment": (np.nan, {15: [(np.s_[20], np.s_[0:20])]}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_pixels_are_filled_counted_and_the_run_completes(run_engine, client, tmp_path, case):
    """Fault: NaN, negative and inf measured pixels; a glitch along part of a row."""
    value, where = CASES[case]
    det, eta = v1_detector(alter=_put(value, where))
    live = make_live(client, tmp_path)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES))
    out = outcome(live, client, uid)
    frames = np.stack(det.frames)
    check(out, "complete", network=network, expected=expected_volume(frames, det.source.mask))
    assert np.isfinite(out.corrected).all() and (out.corrected >= 0).all()
    bad = int((~np.isfinite(frames) | (frames < 0)).sum())
    assert out.health["bad_pixels"] == out.metadata["processing"]["bad_pixels"] == bad > 0
    assert out.health["bad_frames"] == [[i, i + 1] for i in sorted(where)]


def test_bad_values_inside_the_gap_are_not_bad_pixels(run_engine, client, tmp_path):
    """Fault: NaN and negative values in the detector gap (dead anyway)."""
    probe = v1_detector()[0].source.mask
    gap = [tuple(int(v) for v in np.argwhere(probe)[i]) for i in (0, 100)]
    det, eta = v1_detector(alter=_put(np.nan, {3: gap, 4: gap}))
    live = make_live(client, tmp_path)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES))
    out = outcome(live, client, uid)
    expected = expected_volume(np.stack(det.frames), det.source.mask)
    check(out, "complete", network=network, expected=expected)
    assert out.health["bad_pixels"] == 0


def test_a_frame_above_the_bad_fraction_fails_the_run_naming_it(run_engine, client, tmp_path):
    """Fault: a read-out error: one frame entirely NaN (above ``max_bad_fraction``)."""
    det, eta = v1_detector(alter=_put(np.nan, {9: [np.s_[:, :]]}))
    live = make_live(client, tmp_path)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES))
    out = outcome(live, client, uid)
    check(
        out, "failed", network=network, reason=f"frames [9] have more than {MAX_BAD_FRACTION:.2%}"
    )
