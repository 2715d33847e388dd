"""The scan end of a live run: fill uncertainty and crystal published beside the corrected scan."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bluesky.plans import scan
from ophyd.sim import SynAxis

from bcdi_online.callbacks import LiveInpainting, ScanEndSettings, read_refilled
from bcdi_online.inpainting import FillUncertainty, GapInpainter
from bcdi_online.phasing import RECOMMENDED_TREATMENT, Recipe
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetectorV1
from bcdi_online.tiled_output import corrected_metadata, corrected_products, find_corrected

N_FRAMES = 32  # small scans: the whole reconstruction takes a few seconds on one core
ROI = 64
QUICK = Recipe.parse("HIO**150 RAAR**100 ER**60")
SETTINGS = ScanEndSettings(region_shape=(32, 64, 64), recipe=QUICK, device="cpu")
WAIT = 120  # seconds for a run's worker, upload and scan-end products


def mean_predictor(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Cheap stand-in model: each window's mean measured count."""
    keep = (~masks).float()
    total = (patches * keep).sum(dim=(1, 2, 3), keepdim=True)
    return (total / keep.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1)).expand_as(patches)


INPAINTER = GapInpainter(mean_predictor)


@pytest.fixture(scope="module")
def source() -> CrystalSource:
    return CrystalSource.simulate("maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=3)


def live_run(run_engine, client, tmp_path, source, **options) -> tuple[str, LiveInpainting]:
    """One live scan of ``source`` with the mean-count stand-in model."""
    live = LiveInpainting(
        client,
        model=INPAINTER,
        fallback_dir=tmp_path / "fallback",
        **options,
    )
    eta = SynAxis(name="eta")
    det = SimBcdiDetectorV1(source, eta, name="mpx")
    (uid,) = run_engine(scan([det], eta, -0.5, 0.5, N_FRAMES), live).run_start_uids
    assert live.wait(WAIT), live.health()
    return uid, live


def corrected_run(client, uid: str):
    """The corrected run of ``uid`` (read afresh) and its products' container."""
    run = find_corrected(client, uid)
    return run, corrected_products(client, run)


def test_a_complete_run_publishes_its_crystal_and_fill_uncertainty(
    run_engine, client, tmp_path, source
):
    uncertainty = FillUncertainty.load()
    uid, live = live_run(
        run_engine,
        client,
        tmp_path,
        source,
        crystal=True,
        fill_uncertainty=uncertainty,
        scan_end=SETTINGS,
    )
    run, node = corrected_run(client, uid)
    metadata = corrected_metadata(run.metadata)
    assert metadata["status"] == "complete"
    assert metadata["scan_end"] == {"crystal": True, "fill_uncertainty": True}

    corrected = run["primary"]["corrected"].read()
    sigma = node["fill_sigma"].read()
    assert sigma.shape == corrected.shape == (N_FRAMES, ROI, ROI)
    assert sigma.dtype == np.float32 and np.all(np.isfinite(sigma))
    assert np.all(sigma[:, ~source.mask] == 0) and np.all(sigma[:, source.mask] > 0)
    np.testing.assert_array_equal(sigma, uncertainty(corrected, source.mask))
    assert node["fill_sigma"].metadata["units"] == "log1p(counts)"

    crystal = node["crystal"]
    foms = crystal.metadata
    assert foms["converged"] is True and foms["reason"] == ""
    assert foms["treatment"] == RECOMMENDED_TREATMENT
    assert foms["binning"] == [1, 1, 1] and foms["region"] == [0, 32, 0, 64, 0, 64]
    assert foms["latency_s"] >= foms["seconds"] > 0
    assert 0.8 <= foms["mode_weight"] <= 1 and np.isfinite(foms["llk"])
    products = run.metadata["bcdi_online_products"]  # the run links to them
    assert products["crystal"] == {
        "path": f"bcdi_online/{run.metadata['start']['uid']}/crystal",
        **foms,
    }
    assert products["fill_sigma"]["path"].endswith("/fill_sigma")
    modulus, phase = crystal["modulus"].read(), crystal["phase"].read()
    support = crystal["support"].read()
    assert modulus.shape == phase.shape == support.shape == (32, 64, 64)
    assert modulus.dtype == phase.dtype == np.float32 and support.dtype == bool
    assert modulus.max() == pytest.approx(1.0)
    assert np.all(phase[~support] == 0) and 64 <= support.sum() <= 0.25 * support.size
    # the peak sits at the gap crossing: said, no refill from the crystal, and why
    assert foms["peak_in_gap"] is True
    assert "refined_fill" not in crystal
    assert not foms["refined_fill"]["published"]
    assert "Bragg peak may lie in the gap" in foms["refined_fill"]["reason"]
    volume, refill = read_refilled(client, uid)  # the corrected scan as it is, and why
    np.testing.assert_array_equal(volume, corrected)
    assert not refill["refilled"] and "Bragg peak may lie in the gap" in refill["reason"]
    figure = crystal["figure"].read()  # central slices, as crystal.png shows them
    assert figure.dtype == np.uint8 and figure.ndim == 3 and figure.shape[2] == 4
    assert figure.shape[0] > 100 and len(np.unique(figure[..., 0])) > 10  # not blank
    health = live.health()[uid]
    assert health["phase"] == "done" and health["scan_end"]["crystal"]["converged"]


def test_where_the_peak_was_measured_the_crystal_refills_the_gap(run_engine, client, tmp_path):
    aside = CrystalSource.simulate(  # the Bragg peak well away from the gaps
        "maxipix_2x2", n_frames=N_FRAMES, roi_size=ROI, seed=3, peak_jitter=0.5
    )
    uid, _ = live_run(run_engine, client, tmp_path, aside, crystal=True, scan_end=SETTINGS)
    run, node = corrected_run(client, uid)
    crystal = node["crystal"]
    assert crystal.metadata["converged"] and crystal.metadata["refined_fill"]["published"]
    assert crystal.metadata["peak_in_gap"] is False
    corrected = run["primary"]["corrected"].read()
    z0, z1, y0, y1, x0, x1 = crystal.metadata["region"]
    region, gap = corrected[z0:z1, y0:y1, x0:x1], aside.mask[y0:y1, x0:x1]
    refined = crystal["refined_fill"].read()  # the phased region, measured counts kept
    assert refined.shape == region.shape and refined.dtype == np.float32
    assert crystal["refined_fill"].dims == ("frame", "y", "x")
    np.testing.assert_array_equal(refined[:, ~gap], region[:, ~gap])
    assert np.all(refined[:, gap] >= 0) and not np.array_equal(refined[:, gap], region[:, gap])
    # read back whole: the corrected scan with the crystal's refill in its region
    volume, refill = read_refilled(client, uid)
    assert refill == {"refilled": True, "region": [z0, z1, y0, y1, x0, x1], "reason": ""}
    np.testing.assert_array_equal(volume[z0:z1, y0:y1, x0:x1], refined)
    outside = np.ones(corrected.shape, dtype=bool)
    outside[z0:z1, y0:y1, x0:x1] = False
    np.testing.assert_array_equal(volume[outside], corrected[outside])
    assert read_refilled(client, "no-such-run") is None


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        # on an 8 x 8 x 8 grid the crystal is a few voxels: no trustworthy support
        (ScanEndSettings(region_shape=(8, 16, 16), recipe=QUICK, device="cpu"), "support"),
        # bins larger than the region: the reconstruction raises
        (
            ScanEndSettings(region_shape=(4, 8, 8), binning=(8, 1, 1), recipe=QUICK),
            "the reconstruction failed",
        ),
    ],
    ids=["not-converged", "raises"],
)
def test_a_failed_reconstruction_is_recorded_without_arrays(
    run_engine, client, tmp_path, source, settings, reason
):
    uid, live = live_run(
        run_engine,
        client,
        tmp_path,
        source,
        crystal=True,
        fill_uncertainty=False,
        scan_end=settings,
    )
    run, node = corrected_run(client, uid)
    assert corrected_metadata(run.metadata)["status"] == "complete"  # still good
    crystal = node["crystal"]
    assert crystal.metadata["converged"] is False and reason in crystal.metadata["reason"]
    assert list(crystal) == []  # no modulus, phase, support or figure
    refill = read_refilled(client, uid)[1]
    assert not refill["refilled"] and reason in refill["reason"]
    assert run.metadata["bcdi_online_products"]["crystal"]["converged"] is False
    assert "fill_sigma" not in node
    assert live.health()[uid]["status"] == "complete"


def test_defaults_on_cpu_with_an_uncalibrated_model_add_nothing(
    run_engine, client, tmp_path, source
):
    uid, live = live_run(run_engine, client, tmp_path, source)
    assert not live.scan_end.crystal and live.scan_end.uncertainty is None
    run, node = corrected_run(client, uid)
    metadata = corrected_metadata(run.metadata)
    assert metadata["status"] == "complete" and node is None  # no product
    assert read_refilled(client, uid)[1]["reason"] == "no crystal was made"
    assert metadata["scan_end"] == {"crystal": False, "fill_uncertainty": False}


def test_the_shipped_model_gets_the_shipped_calibration(client):
    live = LiveInpainting(client, crystal=False)
    assert live.scan_end.uncertainty == FillUncertainty.load()
    # a CPU preview crops a smaller box around the peak; binning would lose oversampling
    assert live.scan_end.region_shape == (64, 64, 64) and live.scan_end.binning == (1, 1, 1)
