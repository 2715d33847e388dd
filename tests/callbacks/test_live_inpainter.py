"""Live gap inpainting in real Bluesky scans, written to an in-process Tiled server."""

from __future__ import annotations

import time

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
import torch
from bluesky.plans import count, scan
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import DirectImage, SynAxis, det1
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices

from bcdi_online.callbacks import LiveInpainting
from bcdi_online.inpainting import GapInpainter
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetectorV1, SimMaxipix, SimRockingMotor
from bcdi_online.tiled_output import corrected_metadata, find_corrected, read_result_file

N_FRAMES = 40  # small scans: 2 CPU cores, shared with a training job
ROI = 64
ETA = (-0.5, 0.5)
WAIT = 60  # seconds for a run's worker and upload to finish


def mean_predictor(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Cheap deterministic stand-in model: each window's mean measured count."""
    keep = (~masks).float()
    total = (patches * keep).sum(dim=(1, 2, 3), keepdim=True)
    return (total / keep.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1)).expand_as(patches)


INPAINTER = GapInpainter(mean_predictor)
PATIENT = 30.0  # seconds a finished run waits for Tiled before its result file stands for it
GIVE_UP = 0.5


def make_live(client, tmp_path, **kwargs) -> LiveInpainting:
    kwargs.setdefault("fallback_after", PATIENT)
    kwargs.setdefault("model", INPAINTER)
    return LiveInpainting(client, fallback_dir=tmp_path / "fallback", **kwargs)


def v1_detector(n_frames: int = N_FRAMES, seed: int = 0):
    source = CrystalSource.simulate("maxipix_2x2", n_frames=n_frames, roi_size=ROI, seed=seed)
    eta = SynAxis(name="eta")
    return SimBcdiDetectorV1(source, eta, name="mpx"), eta


def run(run_engine, plan, live) -> str:
    (uid,) = run_engine(plan, live).run_start_uids
    return uid


def offline(det) -> np.ndarray:
    return INPAINTER(det.source.acquired.data, det.source.mask)


def assert_same(live: np.ndarray, expected: np.ndarray) -> None:
    assert live.dtype == np.float32 and live.shape == expected.shape
    np.testing.assert_allclose(live, expected, rtol=1e-5, atol=1e-4)


def corrected(client, uid: str):
    run = find_corrected(client, uid)
    mask = run["gap_mask"]["gap_mask"].read()[0].astype(bool)
    return np.asarray(run["primary"]["corrected"].read()), mask, corrected_metadata(run.metadata)


@pytest.mark.parametrize("n_frames", [N_FRAMES, 10], ids=["scan", "shorter-than-a-window"])
def test_v1_inline_frames_live_equals_offline(run_engine, client, tmp_path, n_frames):
    det, eta = v1_detector(n_frames)
    live = make_live(client, tmp_path)
    uid = run(run_engine, scan([det], eta, *ETA, n_frames), live)
    assert live.wait(WAIT)

    data, mask, metadata = corrected(client, uid)
    assert_same(data, offline(det))
    np.testing.assert_array_equal(mask, det.source.mask)
    assert metadata["status"] == "complete" and metadata["exit_status"] == "success"
    assert metadata["raw_uid"] == uid and metadata["scan_id"] == 1
    assert metadata["detector"] == "maxipix_2x2" and metadata["roi"] == list(det.source.roi)
    assert metadata["model"]["name"] == "mean_predictor"
    assert metadata["window_plan"]["depth"] == INPAINTER.plan.depth
    assert metadata["local_fallback"] is None and metadata["frames_in_tiled"] == n_frames
    health = live.health()[uid]
    assert health["frames_received"] == health["frames_final"] == n_frames
    assert health["expected_frames"] == n_frames  # the start document's num_points
    assert health["queue_depth"] == 0 and health["frames_failed"] == 0
    assert health["windows"] > 0 and health["last_error"] is None


def test_more_frames_than_announced_republishes_the_provisional_tail(run_engine, client, tmp_path):
    # the last frames are uploaded once the announced count is in; a frame beyond it
    # makes the callback publish them again from the first one that changed
    det, eta = v1_detector()
    live = make_live(client, tmp_path)

    @bpp.run_decorator(md={"num_points": N_FRAMES - 4})
    def longer_than_announced():
        for position in np.linspace(*ETA, N_FRAMES):
            yield from bps.mv(eta, position)
            yield from bps.trigger_and_read([det, eta])

    uid = run(run_engine, longer_than_announced(), live)
    assert live.wait(WAIT)
    data, _, metadata = corrected(client, uid)
    assert_same(data, offline(det))
    assert metadata["status"] == "complete" and metadata["frames_in_tiled"] == N_FRAMES
    health = live.health()[uid]
    assert health["expected_frames"] == N_FRAMES - 4
    assert health["frames_republished"] == N_FRAMES - 4  # a short scan: none final before


def test_ophyd_async_hdf5_frames_live_equals_offline(run_engine, client, tmp_path):
    with init_devices():
        eta = SimRockingMotor()
        det = SimMaxipix(
            StaticPathProvider(StaticFilenameProvider("scan"), tmp_path),
            eta,
            n_frames=24,
            roi_size=ROI,
        )
    live = make_live(client, tmp_path)
    uid = run(run_engine, scan([det], eta, *ETA, 24), live)
    assert live.wait(WAIT)

    data, mask, metadata = corrected(client, uid)
    assert_same(data, offline(det))
    np.testing.assert_array_equal(mask, det.source.mask)
    assert metadata["status"] == "complete" and metadata["field"] == det.name
    assert live.health()[uid]["read_s"] > 0  # frames came from the HDF5 file


def test_ophyd_async_mask_from_the_detector_file_pixel_mask(run_engine, client, tmp_path):
    with init_devices():
        eta = SimRockingMotor()
        det = SimMaxipix(
            StaticPathProvider(StaticFilenameProvider("scan"), tmp_path), eta, n_frames=16,
            roi_size=ROI,
        )  # fmt: skip
    live = make_live(client, tmp_path)

    def without_geometry(name, doc):  # a detector that does not publish its geometry
        if name == "descriptor":
            doc = {**doc, "configuration": {}}
        live(name, doc)

    uid = run(run_engine, scan([det], eta, *ETA, 16), without_geometry)
    assert live.wait(WAIT)
    data, mask, metadata = corrected(client, uid)
    assert metadata["mask_source"] == "pixel_mask of the detector file"
    np.testing.assert_array_equal(mask, det.source.mask)
    assert_same(data, offline(det))


def test_overflow_degrades_but_loses_no_frame(run_engine, client, tmp_path):
    def slow(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        time.sleep(0.1)  # a model slower than the scan
        return mean_predictor(patches, masks)

    det, eta = v1_detector()
    live = make_live(client, tmp_path, model=GapInpainter(slow, batch_size=1), queue_size=1)
    uid = run(run_engine, scan([det], eta, *ETA, N_FRAMES), live)
    assert live.wait(WAIT)

    health = live.health()[uid]
    assert health["degraded"] and health["overflow_events"] > 0
    assert health["frames_final"] == N_FRAMES and health["status"] == "complete"
    data, _, metadata = corrected(client, uid)
    assert_same(data, offline(det))
    assert metadata["processing"]["degraded"]


def _interrupted_scan(det, eta, n_ok: int, how: str):
    @bpp.run_decorator()
    def plan():
        for i, position in enumerate(np.linspace(*ETA, N_FRAMES)):
            if i == n_ok and how == "raise":
                raise RuntimeError("beam lost")
            if i == n_ok:
                yield from bps.pause()
            yield from bps.mv(eta, position)
            yield from bps.trigger_and_read([det, eta])

    return plan()


def test_plan_raising_ends_aborted_with_partial_data(run_engine, client, tmp_path):
    det, eta = v1_detector()
    live = make_live(client, tmp_path)
    with pytest.raises(RuntimeError, match="beam lost"):
        run_engine(_interrupted_scan(det, eta, 12, "raise"), live)
    assert live.wait(WAIT)
    (uid,) = live.runs

    data, _, metadata = corrected(client, uid)
    assert metadata["status"] == "aborted" and metadata["exit_status"] == "fail"
    assert_same(data, offline(det))  # the 12 frames measured, fully inpainted
    assert data.shape[0] == 12


def test_run_engine_abort_ends_aborted(run_engine, client, tmp_path):
    det, eta = v1_detector()
    live = make_live(client, tmp_path)
    run_engine.subscribe(live)
    with pytest.raises(RunEngineInterrupted):  # paused
        run_engine(_interrupted_scan(det, eta, 20, "pause"))
    run_engine.abort("sample moved")
    assert live.wait(WAIT)
    (uid,) = live.runs

    data, _, metadata = corrected(client, uid)
    assert metadata["status"] == "aborted" and metadata["exit_status"] == "abort"
    assert_same(data, offline(det))


def test_two_scans_back_to_back_give_two_containers(run_engine, client, tmp_path):
    live = make_live(client, tmp_path)
    results = []
    for seed in (1, 2):
        det, eta = v1_detector(16, seed=seed)
        results.append((run(run_engine, scan([det], eta, *ETA, 16), live), offline(det)))
    assert live.wait(WAIT)
    assert results[0][0] != results[1][0]
    for uid, expected in results:
        data, _, metadata = corrected(client, uid)
        assert_same(data, expected)
        assert metadata["raw_uid"] == uid and metadata["status"] == "complete"
    assert [m["scan_id"] for m in (corrected(client, u)[2] for u, _ in results)] == [1, 2]


def test_tiled_down_then_up_keeps_everything(run_engine, client, outage, tmp_path):
    det, eta = v1_detector()
    live = make_live(client, tmp_path)
    outage.down = True
    uid = run(run_engine, scan([det], eta, *ETA, N_FRAMES), live)
    assert not live.wait(0.3)  # waiting for Tiled, nothing lost
    refused = outage.refused
    assert refused > 0 and live.health()[uid]["write_failures"] > 0
    outage.down = False
    assert live.wait(WAIT)

    data, _, metadata = corrected(client, uid)
    assert_same(data, offline(det))
    assert metadata["status"] == "complete" and metadata["local_fallback"] is None
    assert not list((tmp_path / "fallback").glob("*.jsonl"))  # TiledWriter's backup, done with


def test_tiled_down_for_good_falls_back_to_local_hdf5(run_engine, client, outage, tmp_path):
    det, eta = v1_detector()
    live = make_live(client, tmp_path, fallback_after=GIVE_UP)
    outage.down = True
    uid = run(run_engine, scan([det], eta, *ETA, N_FRAMES), live)
    assert live.wait(WAIT)
    health = live.health()[uid]
    assert health["status"] == "complete" and health["frames_in_tiled"] == 0

    data, mask, metadata = read_result_file(health["local_fallback"])
    assert_same(data, offline(det))
    np.testing.assert_array_equal(mask, det.source.mask)
    assert metadata["status"] == "complete" and metadata["raw_uid"] == uid
    assert metadata["result_file"] == health["local_fallback"]
    outage.down = False
    assert find_corrected(client, uid) is None


def test_run_without_2d_detector_is_ignored(run_engine, client, tmp_path):
    live = make_live(client, tmp_path)
    uid = run(run_engine, count([det1], 3), live)
    assert live.wait(WAIT)
    health = live.health()[uid]
    assert health["status"] == "ignored" and "no 2D detector" in health["reason"]
    assert find_corrected(client, uid) is None


def test_missing_mask_is_reported_not_guessed(run_engine, client, tmp_path):
    det, eta = v1_detector(8)
    image = DirectImage(name="img", func=lambda: det.source.acquire(0.0))  # no geometry
    live = make_live(client, tmp_path)
    uid = run(run_engine, count([image], 8), live)
    assert live.wait(WAIT)

    metadata = corrected_metadata(find_corrected(client, uid).metadata)
    assert metadata["status"] == "failed" and "no gap mask" in metadata["error"]
    assert live.health()[uid]["status"] == "failed"


def test_callback_errors_never_reach_the_run_engine(run_engine, client, tmp_path):
    def broken(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("model exploded")

    det, eta = v1_detector(16)
    live = make_live(client, tmp_path, model=GapInpainter(broken))
    uid = run(run_engine, scan([det], eta, *ETA, 16), live)  # does not raise
    live("event_page", {"descriptor": "no-such-descriptor", "data": {}})  # junk: no raise
    live("no_such_document", {})
    assert live.wait(WAIT)

    health = live.health()[uid]
    assert health["status"] == "failed" and "model exploded" in health["last_error"]
    metadata = corrected_metadata(find_corrected(client, uid).metadata)
    assert metadata["status"] == "failed" and "model exploded" in metadata["error"]


def test_wrong_mask_shape_fails_the_run_not_the_scan(run_engine, client, tmp_path):
    det, eta = v1_detector(8)
    live = make_live(client, tmp_path, mask=np.zeros((10, 10), bool))
    uid = run(run_engine, scan([det], eta, *ETA, 8), live)
    assert live.wait(WAIT)
    health = live.health()[uid]
    assert health["status"] == "failed" and "does not match frame shape" in health["last_error"]
