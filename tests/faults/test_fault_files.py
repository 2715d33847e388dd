"""Fault class: broken detector files (ophyd-async HDF5, read by the callback while and
after the scan writes them): truncated, deleted, garbage, frames or datasets missing."""

from __future__ import annotations

import os
import time

import h5py
import numpy as np
from bluesky.plans import scan
from faultkit import (
    ETA,
    N_FRAMES,
    ROI,
    Gate,
    check,
    expected_volume,
    make_live,
    outcome,
    run_scan,
    settled,
    sha256,
)
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices

from bcdi_online.sim_devices import DATA_PATH, SimMaxipix, SimRockingMotor


def run_gated(run_engine, live, tmp_path, after, rule=None):
    """A scan whose documents from the ``after``-th stream datum on wait at a gate."""
    with init_devices():
        eta = SimRockingMotor()
        det = SimMaxipix(
            StaticPathProvider(StaticFilenameProvider("scan"), tmp_path),
            eta,
            n_frames=N_FRAMES,
            roi_size=ROI,
        )
    gate = Gate(after)

    def route(name, doc):
        return [out for n, d in (rule or (lambda n, d: [(n, d)]))(name, doc) for out in gate(n, d)]

    uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_FRAMES), route)
    path = tmp_path / "scan.h5"
    settled(path)  # the detector has closed it
    return uid, det, path, gate, network


def test_truncated_file_fails_the_frames_past_the_cut_not_zeros(run_engine, client, tmp_path):
    """Fault: the detector file truncated after the run (SWMR readers would see zeros)."""
    live = make_live(client, tmp_path)
    uid, det, path, gate, network = run_gated(run_engine, live, tmp_path, after=5)
    with h5py.File(path, "r") as f:
        cut = f[DATA_PATH].id.get_chunk_info_by_coord((20, 0, 0)).byte_offset + 100
    os.truncate(path, cut)
    before = sha256(path, skip=48)
    gate.release(live)
    out = outcome(live, client, uid)
    data, mask = det.source.acquired.data, det.source.mask
    expected = expected_volume(data, mask, missing=range(20, N_FRAMES))
    check(
        out,
        "incomplete",
        network=network,
        expected=expected,
        missing=[[20, N_FRAMES]],
        reason="truncated",
    )
    assert np.isnan(out.corrected[20:]).all()  # never the zeros a SWMR read gives
    assert sha256(path, skip=48) == before


def test_file_deleted_after_the_run_while_being_read_misses_the_frames_not_read(
    run_engine, client, tmp_path
):
    """Fault: the detector file deleted after the run, once the callback had read part of it.

    Frames are read as Tiled reads them (its adapters open the file by path), so the
    frames not read before the deletion are missing, named, never zeros: what Tiled
    itself can still serve of the run.
    """
    live = make_live(client, tmp_path)
    uid, det, path, gate, network = run_gated(run_engine, live, tmp_path, after=5)
    deadline = time.monotonic() + 30
    while live.health()[uid]["frames_processed"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)  # the frames announced before the gate are read
    path.unlink()
    gate.release(live)
    out = outcome(live, client, uid)
    data, mask = det.source.acquired.data, det.source.mask
    check(
        out,
        "incomplete",
        network=network,
        expected=expected_volume(data, mask, missing=range(5, N_FRAMES)),
        missing=[[5, N_FRAMES]],
        reason="No such file",
    )


def test_file_deleted_before_any_frame_was_read_fails_with_the_reason(
    run_engine, client, tmp_path
):
    """Fault: the detector file deleted after the run, before the callback opened it."""
    live = make_live(client, tmp_path)
    uid, _, path, gate, network = run_gated(run_engine, live, tmp_path, after=0)
    path.unlink()
    gate.release(live)
    out = outcome(live, client, uid)
    check(out, "failed", network=network, reason="No such file")
    assert out.health["frames_missing"] == N_FRAMES
    assert out.corrected is None or out.corrected.shape[0] == 0


def test_garbage_file_fails_with_the_reason(run_engine, client, tmp_path):
    """Fault: the detector file overwritten with garbage before the callback read it."""
    live = make_live(client, tmp_path)
    uid, _, path, gate, network = run_gated(run_engine, live, tmp_path, after=0)
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    before = sha256(path)
    gate.release(live)
    out = outcome(live, client, uid)
    check(out, "failed", network=network, reason="unreadable (OSError")
    assert sha256(path) == before


def test_frames_announced_but_never_written_are_missing_not_zeros(run_engine, client, tmp_path):
    """Fault: a stream datum announcing frames the file never got."""

    def beyond_the_file(name, doc):
        if name == "stream_datum" and doc["indices"]["start"] == 10:
            doc = {**doc, "indices": {"start": 100, "stop": 101}}
        return [(name, doc)]

    live = make_live(client, tmp_path, file_timeout=0.5)
    uid, det, _, gate, network = run_gated(
        run_engine, live, tmp_path, after=N_FRAMES, rule=beyond_the_file
    )
    out = outcome(live, client, uid)
    data, mask = det.source.acquired.data, det.source.mask
    check(
        out,
        "incomplete",
        network=network,
        expected=expected_volume(data, mask, missing=[10]),
        missing=[[10, 11]],
        reason="frames never written",
    )


def test_wrong_dataset_in_the_stream_resource_fails_with_the_reason(run_engine, client, tmp_path):
    """Fault: a stream resource naming a dataset the file does not have."""

    def wrong_dataset(name, doc):
        if name == "stream_resource":
            doc = {**doc, "parameters": {**doc["parameters"], "dataset": "/entry/data/nope"}}
        return [(name, doc)]

    live = make_live(client, tmp_path)
    uid, _, _, _, network = run_gated(
        run_engine, live, tmp_path, after=N_FRAMES, rule=wrong_dataset
    )
    out = outcome(live, client, uid)
    check(out, "failed", network=network, reason="KeyError")
