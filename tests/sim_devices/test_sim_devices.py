"""Simulated BCDI devices in real Bluesky scans: documents, HDF5 files, inline images."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import h5py
import numpy as np
import pytest
from bluesky.plans import scan
from ophyd.sim import SynAxis
from ophyd_async.core import (
    StaticFilenameProvider,
    StaticPathProvider,
    TriggerInfo,
    UUIDFilenameProvider,
    init_devices,
)

from bcdi_online import SimulationError
from bcdi_online.sim_devices import (
    DATA_PATH,
    MASK_PATH,
    CrystalSource,
    SimBcdiDetector,
    SimBcdiDetectorV1,
    SimBcdiDetectorV1HDF5,
    SimEiger,
    SimMaxipix,
    SimRockingMotor,
)
from bcdi_online.simulation import CrystalParams

N_FRAMES = 16  # small scans: 2 CPU cores, shared with a training job
ROI = 64
ETA = (10.0, 11.0)
BRAGG_INDEX = N_FRAMES // 2  # the simulator puts the Bragg peak at the grid centre


def make_source(seed: int = 0, detector: str = "maxipix_2x2") -> CrystalSource:
    # An unstrained, unrotated crystal: every pixel's rocking curve peaks at the centre,
    # so the brightest frame is the Bragg frame whatever the noise.
    return CrystalSource.simulate(
        detector, n_frames=N_FRAMES, roi_size=ROI, params=CrystalParams(), seed=seed,
        eta_range=ETA,
    )  # fmt: skip


def run_scan(run_engine, det, eta) -> list[tuple[str, dict]]:
    docs: list[tuple[str, dict]] = []
    run_engine(scan([det], eta, *ETA, N_FRAMES), lambda name, doc: docs.append((name, doc)))
    return docs


def path_provider(directory: Path, filename: str = "scan") -> StaticPathProvider:
    return StaticPathProvider(StaticFilenameProvider(filename), directory)


def read_frames(path: Path) -> np.ndarray:
    with h5py.File(path, "r", swmr=True) as f:
        return f[DATA_PATH][()]


def test_source_expected_frame_interpolates_between_grid_frames_and_clips():
    source = make_source()
    angles = source.frame_angles
    assert angles[0] == ETA[0] and angles[-1] == ETA[1]
    assert source.bragg_angle == pytest.approx(angles[BRAGG_INDEX])
    np.testing.assert_allclose(source.expected_frame(angles[3]), source.expected[3], rtol=1e-5)
    middle = source.expected_frame((angles[3] + angles[4]) / 2)
    np.testing.assert_allclose(middle, (source.expected[3] + source.expected[4]) / 2, rtol=1e-5)
    np.testing.assert_array_equal(source.expected_frame(ETA[0] - 5), source.expected[0])
    np.testing.assert_array_equal(source.expected_frame(ETA[1] + 5), source.expected[-1])


def test_source_acquire_records_gap_free_truth():
    source = make_source()
    frames = np.stack([source.acquire(eta) for eta in (10.1, 10.5, 10.5)])
    acquired = source.acquired
    assert frames.dtype == np.uint32 and frames.shape == (3, ROI, ROI)
    assert source.mask.any() and not source.mask.all()
    assert not frames[:, source.mask].any()
    np.testing.assert_array_equal(acquired.data, frames)
    np.testing.assert_array_equal(acquired.truth[:, ~source.mask], frames[:, ~source.mask])
    assert acquired.truth[:, source.mask].any()  # the truth has counts in the gaps
    np.testing.assert_array_equal(acquired.angles, [10.1, 10.5, 10.5])
    np.testing.assert_array_equal(acquired.counters, [0, 1, 2])
    assert not np.array_equal(frames[1], frames[2])  # a new draw per frame
    np.testing.assert_allclose(acquired.expected[1], source.expected_frame(10.5))


def test_source_noise_is_deterministic_by_seed_and_frame_counter():
    a, b, c = make_source(seed=1), make_source(seed=1), make_source(seed=2)
    frames_a = [a.acquire(10.5) for _ in range(2)]
    np.testing.assert_array_equal(frames_a, [b.acquire(10.5) for _ in range(2)])
    assert not np.array_equal(frames_a[0], c.acquire(10.5))
    a.reset()
    assert a.acquired.data.shape == (0, ROI, ROI)
    np.testing.assert_array_equal(a.acquire(10.5), frames_a[0])


def test_source_rejects_an_empty_or_reversed_range():
    scan_ = make_source().scan
    with pytest.raises(SimulationError, match="eta_start < eta_stop"):
        CrystalSource(scan_, eta_range=(1.0, 1.0))


def test_async_scan_emits_stream_documents(run_engine, tmp_path):
    with init_devices():
        eta = SimRockingMotor()
        det = SimBcdiDetector(path_provider(tmp_path), make_source(), eta)
    docs = run_scan(run_engine, det, eta)

    counts = Counter(name for name, _ in docs)
    assert counts == {
        "start": 1, "descriptor": 1, "stream_resource": 1, "stream_datum": N_FRAMES,
        "event": N_FRAMES, "stop": 1,
    }  # fmt: skip
    (descriptor,) = [doc for name, doc in docs if name == "descriptor"]
    uri = f"file://localhost{tmp_path.as_posix()}/scan.h5"
    assert descriptor["data_keys"]["det"] == {
        "source": uri, "shape": [1, ROI, ROI], "dtype": "array", "dtype_numpy": "<u4",
        "external": "STREAM:", "object_name": "det",
    }  # fmt: skip
    assert descriptor["data_keys"]["eta"]["units"] == "deg"
    config = descriptor["configuration"]["det"]["data"]
    assert config["det-detector_name"] == "maxipix_2x2"
    np.testing.assert_array_equal(config["det-roi"], det.source.roi)
    assert config["det-maxipix_gap"] == 6
    assert descriptor["hints"]["det"] == {"fields": ["det"]}

    (resource,) = [doc for name, doc in docs if name == "stream_resource"]
    assert resource["uri"] == uri
    assert resource["mimetype"] == "application/x-hdf5"
    assert resource["data_key"] == "det"
    assert resource["parameters"]["dataset"] == DATA_PATH
    assert tuple(resource["parameters"]["chunk_shape"]) == (1, ROI, ROI)
    datums = [doc for name, doc in docs if name == "stream_datum"]
    assert [d["indices"] for d in datums] == [{"start": i, "stop": i + 1} for i in range(N_FRAMES)]
    assert {d["stream_resource"] for d in datums} == {resource["uid"]}
    assert {d["descriptor"] for d in datums} == {descriptor["uid"]}


def test_async_scan_file_holds_the_source_frames(run_engine, tmp_path):
    with init_devices():
        eta = SimRockingMotor()
        det = SimBcdiDetector(path_provider(tmp_path), make_source(), eta)
    docs = run_scan(run_engine, det, eta)

    acquired = det.source.acquired
    frames = read_frames(tmp_path / "scan.h5")
    assert frames.shape == (N_FRAMES, ROI, ROI) and frames.dtype == np.uint32
    np.testing.assert_array_equal(frames, acquired.data)
    assert not frames[:, det.source.mask].any()  # gap pixels are zero
    assert int(frames.sum(axis=(1, 2)).argmax()) == BRAGG_INDEX
    events = [doc for name, doc in docs if name == "event"]
    np.testing.assert_allclose(acquired.angles, [e["data"]["eta"] for e in events])
    np.testing.assert_allclose(acquired.angles, np.linspace(*ETA, N_FRAMES))
    with h5py.File(tmp_path / "scan.h5", "r") as f:
        assert f[DATA_PATH].chunks == (1, ROI, ROI)
        np.testing.assert_array_equal(f[MASK_PATH][()] != 0, det.source.mask)
        assert f[MASK_PATH].parent.attrs["detector"] == "maxipix_2x2"


_READER = """import sys, h5py
with h5py.File(sys.argv[1], "r", swmr=True) as f:
    ds = f[sys.argv[2]]; ds.refresh(); print(ds.shape[0], int(ds[-1].sum()))
"""


def test_async_frames_are_readable_during_the_scan(run_engine, tmp_path):
    with init_devices():
        eta = SimRockingMotor()
        det = SimBcdiDetector(path_provider(tmp_path), make_source(), eta)
    path = tmp_path / "scan.h5"
    seen: list[tuple[int, np.ndarray]] = []
    other_process: list[str] = []

    def on_datum(name, doc):
        if name != "stream_datum":
            return
        start, stop = doc["indices"]["start"], doc["indices"]["stop"]
        with h5py.File(path, "r", swmr=True) as f:
            ds = f[DATA_PATH]
            ds.refresh()
            seen.append((ds.shape[0], ds[start:stop]))
        if stop == BRAGG_INDEX:  # once, mid-scan: a reader in another process
            out = subprocess.run(
                [sys.executable, "-c", _READER, str(path), DATA_PATH],
                capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            other_process.append(out.stdout)

    run_engine(scan([det], eta, *ETA, N_FRAMES), on_datum)

    acquired = det.source.acquired
    assert [n for n, _ in seen] == list(range(1, N_FRAMES + 1))  # the file grew frame by frame
    np.testing.assert_array_equal(np.concatenate([a for _, a in seen]), acquired.data)
    assert other_process == [f"{BRAGG_INDEX} {int(acquired.data[BRAGG_INDEX - 1].sum())}\n"]


@pytest.mark.parametrize(
    ("cls", "detector"), [(SimMaxipix, "maxipix_2x2"), (SimEiger, "eiger2_1m")]
)
def test_async_family_detectors_are_deterministic_by_seed(run_engine, tmp_path, cls, detector):
    kwargs = {"detector": detector, "n_frames": N_FRAMES, "roi_size": ROI, "eta_range": ETA}
    with init_devices():
        eta = SimRockingMotor()
        det_a = cls(path_provider(tmp_path, "a"), eta, seed=5, **kwargs)
        det_b = cls(path_provider(tmp_path, "b"), eta, seed=5, **kwargs)
        det_c = cls(path_provider(tmp_path, "c"), eta, seed=6, **kwargs)
    for det in (det_a, det_b, det_c):
        run_scan(run_engine, det, eta)
    frames = {key: read_frames(tmp_path / f"{key}.h5") for key in "abc"}
    assert frames["a"].shape == (N_FRAMES, ROI, ROI)
    assert det_a.source.detector == detector and det_a.source.mask.any()
    np.testing.assert_array_equal(frames["a"], frames["b"])
    assert not np.array_equal(frames["a"], frames["c"])


@pytest.mark.parametrize(("cls", "detector"), [(SimMaxipix, "eiger2_1m"), (SimEiger, "merlin")])
def test_family_detectors_reject_another_family(tmp_path, cls, detector):
    with pytest.raises(ValueError, match="detectors, got"):
        cls(path_provider(tmp_path), SimRockingMotor(), detector=detector)


def test_family_detectors_take_every_option_of_the_simulation(tmp_path):
    """One signature (ScanOptions): the MAXIPIX gap convention reaches the simulation."""
    masks = {
        gap: SimMaxipix(
            path_provider(tmp_path, str(gap)), SimRockingMotor(), n_frames=8, maxipix_gap=gap
        ).source
        for gap in (6, 4)
    }
    assert masks[6].maxipix_gap == 6 and masks[4].maxipix_gap == 4
    assert masks[6].mask.sum() > masks[4].mask.sum()  # 6 px stripes vs 4 px


def test_async_detector_rejects_an_angle_without_readback(tmp_path):
    with pytest.raises(TypeError, match="user_readback"):
        SimBcdiDetector(path_provider(tmp_path), make_source(), object())  # type: ignore[arg-type]


def test_async_detector_takes_many_frames_per_kickoff(run_engine, tmp_path):
    with init_devices():
        det = SimBcdiDetector(
            StaticPathProvider(UUIDFilenameProvider(), tmp_path), make_source(), SimRockingMotor()
        )

    @bpp.stage_decorator([det])
    @bpp.run_decorator()
    def fly(n: int):
        yield from bps.prepare(det, TriggerInfo(number_of_events=n), wait=True)
        yield from bps.declare_stream(det, name="primary")
        yield from bps.kickoff(det, wait=True)
        yield from bps.complete(det, wait=True)
        yield from bps.collect(det, name="primary")

    docs: list[tuple[str, dict]] = []
    run_engine(fly(4), lambda name, doc: docs.append((name, doc)))
    (path,) = tmp_path.glob("*.h5")
    assert det.source.acquired.data.shape[0] == 4
    np.testing.assert_array_equal(read_frames(path), det.source.acquired.data)
    datums = [doc for name, doc in docs if name == "stream_datum"]
    assert [d["indices"] for d in datums] == [{"start": 0, "stop": 4}]


def test_v1_scan_has_inline_images(run_engine):
    source = make_source(detector="eiger2_1m")
    eta = SynAxis(name="eta")
    det = SimBcdiDetectorV1(source, eta, name="det")
    docs = run_scan(run_engine, det, eta)

    (descriptor,) = [doc for name, doc in docs if name == "descriptor"]
    key = descriptor["data_keys"]["det_image"]
    assert (key["shape"], key["dtype"], key["dtype_numpy"]) == ([ROI, ROI], "array", "<u4")
    assert "external" not in key
    config = descriptor["configuration"]["det"]["data"]
    assert config["det_detector_name"] == "eiger2_1m"
    np.testing.assert_array_equal(config["det_roi"], source.roi)
    assert not [name for name, _ in docs if name.startswith("stream")]
    events = [doc for name, doc in docs if name == "event"]
    images = np.stack([e["data"]["det_image"] for e in events])
    assert images.shape == (N_FRAMES, ROI, ROI) and images.dtype == np.uint32
    np.testing.assert_array_equal(images, source.acquired.data)
    np.testing.assert_allclose(source.acquired.angles, [e["data"]["eta"] for e in events])
    assert not images[:, source.mask].any()
    assert int(images.sum(axis=(1, 2)).argmax()) == BRAGG_INDEX


def test_v1_hdf5_scan_emits_legacy_resource_and_datums(run_engine, tmp_path):
    source = make_source(detector="maxipix_2x2")
    eta = SynAxis(name="eta")
    det = SimBcdiDetectorV1HDF5(source, eta, directory=tmp_path, name="det")
    docs = run_scan(run_engine, det, eta)

    (descriptor,) = [doc for name, doc in docs if name == "descriptor"]
    key = descriptor["data_keys"]["det_image"]
    assert (key["shape"], key["external"]) == ([ROI, ROI], "FILESTORE:")
    (resource,) = [doc for name, doc in docs if name == "resource"]
    assert resource["spec"] == "AD_HDF5" and resource["resource_kwargs"] == {"frame_per_point": 1}
    datums = [doc for name, doc in docs if name == "datum"]
    assert [d["datum_kwargs"]["point_number"] for d in datums] == list(range(N_FRAMES))
    events = [doc for name, doc in docs if name == "event"]
    assert [e["data"]["det_image"] for e in events] == [d["datum_id"] for d in datums]
    assert all(e["filled"] == {"det_image": False} for e in events)
    path = Path(resource["root"]) / resource["resource_path"]
    np.testing.assert_array_equal(read_frames(path), source.acquired.data)
