"""Frames through the standard data path: consolidators, legacy resource/datum, from Tiled."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from bluesky.plans import scan
from bluesky_tiled_plugins import TiledWriter
from ophyd.sim import SynAxis
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices
from tiled.client import from_uri

from bcdi_online.callbacks import FramesUnreadableError, LiveInpainting, find_run, replay_run
from bcdi_online.callbacks._frames import FileFrames, FrameSlice, TiledFrames
from bcdi_online.cli._main import build_parser
from bcdi_online.inpainting import GapInpainter
from bcdi_online.sim_devices import (
    CrystalSource,
    SimBcdiDetector,
    SimBcdiDetectorV1HDF5,
    SimRockingMotor,
)
from bcdi_online.testing import tiled_server
from bcdi_online.tiled_output import find_corrected, read_corrected

N_FRAMES, ROI, WAIT = 16, 48, 60.0
ETA = (-0.5, 0.5)


def window_max(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Cheap stand-in model: each window's largest measured count."""
    measured = torch.where(masks, torch.zeros_like(patches), patches)
    return measured.amax(dim=(1, 2, 3), keepdim=True).expand_as(patches).float()


INPAINTER = GapInpainter(window_max)


def source(seed: int) -> CrystalSource:
    return CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=seed)


def offline(src: CrystalSource) -> np.ndarray:
    return INPAINTER(src.acquired.data, src.mask)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real Tiled server that may read the detector directory and the tests' result files
    (as TiledWriter needs)."""
    root = tmp_path_factory.mktemp("standard")
    detector_dir = root / "detector"
    detector_dir.mkdir()
    srv = tiled_server(root, detector_dir, tmp_path_factory.getbasetemp())
    client = from_uri(srv.uri)
    try:
        yield client, detector_dir
    finally:
        client.context.close()
        srv.close()


def scan_async(run_engine, src, directory, name):
    with init_devices():
        eta = SimRockingMotor()
        path = StaticPathProvider(StaticFilenameProvider(name), directory)
        det = SimBcdiDetector(path, src, eta)
    return scan([det], eta, *ETA, N_FRAMES)


def scan_legacy(src, directory):
    eta = SynAxis(name="eta")
    det = SimBcdiDetectorV1HDF5(src, eta, directory=directory, name="mpx")
    return scan([det], eta, *ETA, N_FRAMES)


@pytest.mark.parametrize("frames_from", ["files", "tiled"])
@pytest.mark.parametrize("detector", ["ophyd-async", "ophyd-v1-resource-datum"])
def test_live_scan_through_tiled_writer_equals_offline(
    run_engine, server, tmp_path, detector, frames_from
):
    """A real RunEngine, its raw run written by TiledWriter; frames read from the files
    or from Tiled: the run ends ``complete``, equal to the offline inpainting."""
    client, directory = server
    src = source(seed=len(detector) + len(frames_from))
    live = LiveInpainting(client, model=INPAINTER, fallback_dir=tmp_path, frames_from=frames_from)
    run_engine.subscribe(TiledWriter(client, batch_size=1))
    run_engine.subscribe(live)
    if detector == "ophyd-async":
        plan = scan_async(run_engine, src, directory, f"scan-{frames_from}")
    else:
        plan = scan_legacy(src, directory)
    (uid,) = run_engine(plan).run_start_uids
    assert live.wait(WAIT), live.health()

    health = live.health()[uid]
    assert health["status"] == "complete", health
    assert isinstance(live.runs[uid].reader, TiledFrames if frames_from == "tiled" else FileFrames)
    assert health["frames_final"] == N_FRAMES and health["read_s"] > 0
    corrected, _ = read_corrected(client, uid)
    np.testing.assert_allclose(corrected, offline(src), rtol=1e-5, atol=1e-4)
    raw = client[uid]["primary"]["mpx_image" if detector != "ophyd-async" else "det"].read()
    np.testing.assert_array_equal(raw.reshape(-1, ROI, ROI), src.acquired.data)


def test_frames_from_tiled_needs_a_catalog_and_a_known_mode():
    with pytest.raises(ValueError, match="needs a Tiled client"):
        LiveInpainting(None, model=INPAINTER, frames_from="tiled")
    with pytest.raises(ValueError, match="frames_from must be one of"):
        LiveInpainting(None, model=INPAINTER, frames_from="nfs")


def descriptor(shape):
    return {
        "uid": "d",
        "name": "primary",
        "data_keys": {
            "det": {
                "shape": list(shape),
                "dtype": "array",
                "dtype_numpy": "<u4",
                "source": "sim",
                "external": "STREAM:",
            }
        },
    }


def test_tiff_sequence_is_read_through_its_consolidator(tmp_path):
    """A TIFF sequence (one file a frame, a filename template) reads frame by frame;
    a file not written yet is named in the error."""
    frames = np.arange(5 * 8 * 8, dtype=np.uint32).reshape(5, 8, 8)
    for i, frame in enumerate(frames[:4]):
        tifffile.imwrite(tmp_path / f"img_{i:03d}.tif", frame)
    reader = FileFrames(timeout=0.1)
    reader.add_resource(
        {
            "uid": "r",
            "data_key": "det",
            "mimetype": "multipart/related;type=image/tiff",
            "uri": f"file://localhost{tmp_path}/",
            "parameters": {"template": "img_{:03d}.tif", "chunk_shape": (1, 8, 8)},
        },
        descriptor([1, 8, 8]),
    )
    np.testing.assert_array_equal(reader.read(FrameSlice("r", 1, 3, 1)), frames[1:3])
    with pytest.raises(FramesUnreadableError, match=r"frames \[3, 5\).*img_004.tif"):
        reader.read(FrameSlice("r", 3, 5, 3), wait=False)


def test_multiplier_frames_per_point_come_out_as_frames(tmp_path):
    """Two frames a point (``multiplier``): datum rows [1, 3) are frames [2, 6)."""
    import h5py

    frames = np.arange(8 * 4 * 4, dtype=np.uint32).reshape(8, 4, 4)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f.create_dataset("/entry/data/data", data=frames, chunks=(1, 4, 4))
    reader = FileFrames(timeout=0.1)
    reader.add_resource(
        {
            "uid": "r",
            "data_key": "det",
            "mimetype": "application/x-hdf5",
            "uri": f"file://localhost{tmp_path}/m.h5",
            "parameters": {"dataset": "/entry/data/data", "multiplier": 2},
        },
        descriptor([2, 4, 4]),
    )
    np.testing.assert_array_equal(reader.read(FrameSlice("r", 1, 3, 1)), frames[2:6])


def test_replay_reads_the_frames_from_tiled(run_engine, server, tmp_path):
    """A replayed run (its stream datums merged into one) read from Tiled gives the same
    result as the live run read from the files."""
    client, directory = server
    src = source(seed=5)
    live = LiveInpainting(client, model=INPAINTER, fallback_dir=tmp_path)
    run_engine.subscribe(TiledWriter(client, batch_size=1))
    run_engine.subscribe(live)
    (uid,) = run_engine(scan_async(run_engine, src, directory, "replayed")).run_start_uids
    assert live.wait(WAIT), live.health()

    again = LiveInpainting(client, model=INPAINTER, fallback_dir=tmp_path, frames_from="tiled")
    health = replay_run(find_run(client, uid), again, timeout=WAIT)

    assert health["status"] == "complete", health
    replayed = client[health["tiled_path"]]["primary"]["corrected"].read()
    live_run = find_corrected(client, uid)  # the latest complete one: the replay's
    assert live_run.metadata["start"]["uid"] == health["corrected_run_uid"]
    np.testing.assert_array_equal(replayed, live_run["primary"]["corrected"].read())


def test_cli_services_take_frames_from():
    args = build_parser().parse_args(["replay", "abc", "--frames-from", "tiled"])
    assert args.frames_from == "tiled"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--frames-from", "nfs"])
