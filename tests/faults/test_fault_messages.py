"""Fault class: lost, repeated, reordered and altered documents between the RunEngine and
the live callback (ophyd v1 event pages, ophyd-async stream datums)."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky.plans import scan
from faultkit import (
    ETA,
    N_FRAMES,
    ROI,
    assert_file_frames,
    check,
    expected_volume,
    make_live,
    outcome,
    run_scan,
    v1_detector,
)
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices

from bcdi_online.sim_devices import SimMaxipix, SimRockingMotor


def _seq(doc: dict) -> list[int]:
    return list(doc["seq_num"]) if isinstance(doc["seq_num"], list) else [doc["seq_num"]]


def run_v1(run_engine, live, rule, *, pages: int = 4, n_frames: int = N_FRAMES):
    """A v1 scan whose events reach ``live`` as pages of ``pages`` through ``rule``."""
    det, eta = v1_detector(n_frames)
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, n_frames), rule, pages=pages)
    return uid, det, network


def lose_page(first_seq: int):
    return lambda name, doc: (
        [] if name == "event_page" and _seq(doc)[0] == first_seq else [(name, doc)]
    )


def test_duplicated_event_page_same_values_is_ignored(run_engine, client, tmp_path):
    """Fault: an event page delivered twice (same values)."""

    def twice(name, doc):
        return [(name, doc)] * (2 if name == "event_page" and _seq(doc)[0] == 9 else 1)

    live = make_live(client, tmp_path)
    uid, det, network = run_v1(run_engine, live, twice)
    out = outcome(live, client, uid)
    check(
        out,
        "complete",
        network=network,
        expected=expected_volume(np.stack(det.frames), det.source.mask),
    )
    assert out.health["duplicates_ignored"] == 4


def test_duplicated_event_page_other_values_fails_naming_frames(run_engine, client, tmp_path):
    """Fault: an event page delivered again with other values for the same frames."""

    def altered_copy(name, doc):
        if name == "event_page" and _seq(doc)[0] == 9:
            other = dict(doc, data={**doc["data"]})
            other["data"]["mpx_image"] = [np.asarray(f) + 1 for f in doc["data"]["mpx_image"]]
            return [(name, doc), (name, other)]
        return [(name, doc)]

    live = make_live(client, tmp_path)
    uid, _, network = run_v1(run_engine, live, altered_copy)
    out = outcome(live, client, uid)
    check(
        out,
        "failed",
        network=network,
        reason="frames [[8, 12]] (half-open position ranges) received twice",
    )


def test_reordered_event_pages_give_the_scan_in_order(run_engine, client, tmp_path):
    """Fault: event pages arriving out of order (one held back past three others)."""
    held: list = []

    def late(name, doc):
        if name == "event_page" and _seq(doc)[0] == 5:
            held.append((name, doc))
            return []
        if name == "event_page" and _seq(doc)[0] == 17:
            return [(name, doc), *held]
        return [(name, doc)]

    live = make_live(client, tmp_path)
    uid, det, network = run_v1(run_engine, live, late)
    out = outcome(live, client, uid)
    check(
        out,
        "complete",
        network=network,
        expected=expected_volume(np.stack(det.frames), det.source.mask),
    )


@pytest.mark.parametrize(
    ("first_seq", "missing"),
    [(9, [[8, 12]]), (37, [[36, 40]]), (1, [[0, 4]])],
    ids=["middle", "last", "first"],
)
def test_lost_event_page_makes_the_run_incomplete(
    run_engine, client, tmp_path, first_seq, missing
):
    """Fault: an event page lost (the middle, the last one, the first one)."""
    live = make_live(client, tmp_path)
    uid, det, network = run_v1(run_engine, live, lose_page(first_seq))
    out = outcome(live, client, uid)
    lost = range(*missing[0])
    expected = expected_volume(np.stack(det.frames), det.source.mask, missing=lost)
    check(out, "incomplete", network=network, expected=expected, missing=missing)
    assert out.metadata["frames_in_tiled"] == N_FRAMES  # NaN frames hold the holes


def test_clock_jumps_in_document_timestamps_change_nothing(run_engine, client, tmp_path):
    """Fault: document clocks jumping back a day, then ahead a day."""

    def jumps(name, doc):
        if name == "event_page":
            shift = {5: -86400.0, 21: 86400.0}.get(_seq(doc)[0], 0.0)
            doc = dict(doc, time=[t + shift for t in doc["time"]])
        return [(name, doc)]

    live = make_live(client, tmp_path)
    uid, det, network = run_v1(run_engine, live, jumps)
    out = outcome(live, client, uid)
    check(
        out,
        "complete",
        network=network,
        expected=expected_volume(np.stack(det.frames), det.source.mask),
    )
    assert 0 <= out.health["max_latency_s"] < 60


def test_lost_descriptor_fails_the_run_with_a_record(run_engine, client, tmp_path):
    """Fault: the descriptor of the frames' stream lost (its events cannot be placed)."""
    live = make_live(client, tmp_path)
    uid, _, network = run_v1(run_engine, live, lambda n, d: [] if n == "descriptor" else [(n, d)])
    out = outcome(live, client, uid)
    check(out, "failed", network=network, reason="descriptor never arrived")
    assert out.corrected is None or out.corrected.shape[0] == 0


def test_lost_stop_document_ends_interrupted_after_the_run_timeout(run_engine, client, tmp_path):
    """Fault: the stop document lost: no document for ``run_timeout`` seconds."""
    live = make_live(client, tmp_path, run_timeout=1.0)
    uid, det, network = run_v1(run_engine, live, lambda n, d: [] if n == "stop" else [(n, d)])
    out = outcome(live, client, uid)
    expected = expected_volume(np.stack(det.frames), det.source.mask)
    check(out, "interrupted", network=network, expected=expected, reason="no stop document")


@pytest.mark.parametrize("document", ["start", "stop"])
def test_repeated_start_or_stop_document_changes_nothing(run_engine, client, tmp_path, document):
    """Fault: the start (or stop) document delivered twice."""
    live = make_live(client, tmp_path)
    uid, det, network = run_v1(
        run_engine, live, lambda n, d: [(n, d)] * (2 if n == document else 1)
    )
    out = outcome(live, client, uid)
    check(
        out,
        "complete",
        network=network,
        expected=expected_volume(np.stack(det.frames), det.source.mask),
    )


def test_junk_and_unknown_documents_change_nothing(run_engine, client, tmp_path):
    """Fault: unknown document names, documents of unknown runs, malformed documents."""

    def junk(name, doc):
        if name == "event_page" and _seq(doc)[0] == 9:
            return [
                ("no_such_document", {}),
                ("event_page", {"descriptor": "unknown", "data": {}}),
                ("stream_datum", {"stream_resource": "unknown"}),
                ("stop", {"run_start": "unknown", "uid": "x"}),
                (name, doc),
            ]
        return [(name, doc)]

    live = make_live(client, tmp_path)
    uid, det, network = run_v1(run_engine, live, junk)
    out = outcome(live, client, uid)
    check(
        out,
        "complete",
        network=network,
        expected=expected_volume(np.stack(det.frames), det.source.mask),
    )


# -- ophyd-async: stream datums ------------------------------------------------------------


def run_async(run_engine, live, rule, tmp_path):
    """An ophyd-async HDF5 scan whose documents reach ``live`` through ``rule``."""
    with init_devices():
        eta = SimRockingMotor()
        det = SimMaxipix(
            StaticPathProvider(StaticFilenameProvider("scan"), tmp_path),
            eta,
            n_frames=N_FRAMES,
            roi_size=ROI,
        )
    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES), rule)
    return uid, det, tmp_path / "scan.h5", network


def _start(doc: dict) -> int:
    return int(doc["indices"]["start"])


@pytest.mark.parametrize("fault", ["duplicated", "reordered", "lost"])
def test_stream_datum_faults(run_engine, client, tmp_path, fault):
    """Fault: a stream datum repeated, held back past others, or lost."""
    held: list = []

    def rule(name, doc):
        if name != "stream_datum":
            return [(name, doc)]
        if fault == "duplicated" and _start(doc) == 10:
            return [(name, doc), (name, doc)]
        if fault == "reordered" and _start(doc) == 10:
            held.append((name, doc))
            return []
        if fault == "reordered" and _start(doc) == 14:
            return [(name, doc), *held]
        if fault == "lost" and _start(doc) == 10:
            return []
        return [(name, doc)]

    live = make_live(client, tmp_path)
    uid, det, path, network = run_async(run_engine, live, rule, tmp_path)
    out = outcome(live, client, uid)
    data, mask = det.source.acquired.data, det.source.mask
    if fault == "lost":
        check(
            out,
            "incomplete",
            network=network,
            expected=expected_volume(data, mask, missing=[10]),
            missing=[[10, 11]],
        )
    else:
        check(out, "complete", network=network, expected=expected_volume(data, mask))
        assert out.health["duplicates_ignored"] == (1 if fault == "duplicated" else 0)
    assert_file_frames(path, data)  # the detector file is only read


@pytest.mark.parametrize("corruption", ["seq-num-huge", "seq-num-zero", "num-events-huge"])
def test_corrupt_positions_fail_the_run_without_filling_memory(
    run_engine, client, tmp_path, corruption
):
    """Fault: a corrupt event ``seq_num`` (10**9, 0) or stop ``num_events`` (10**9)."""

    def corrupt(name, doc):
        if name == "event_page" and _seq(doc)[0] == 9 and corruption.startswith("seq"):
            bad = 10**9 if corruption == "seq-num-huge" else 0
            doc = dict(doc, seq_num=[bad, *_seq(doc)[1:]])
        if name == "stop" and corruption == "num-events-huge":
            doc = dict(doc, num_events={"primary": 10**9})
        return [(name, doc)]

    live = make_live(client, tmp_path)
    uid, _, network = run_v1(run_engine, live, corrupt)
    out = outcome(live, client, uid)
    check(out, "failed", network=network, reason="is impossible here")
    assert out.corrected is None or len(out.corrected) <= N_FRAMES
