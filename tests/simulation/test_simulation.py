from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from bcdi_online import InputDataError, SimulationError
from bcdi_online.simulation import (
    CrystalParams,
    crystal_object,
    plot_central_slices,
    read_scan,
    simulate_scan,
    simulate_volume,
    write_scan,
)
from bcdi_online.simulation._crystal import density

SHAPE = (32, 48, 48)


def inverted(volume: np.ndarray) -> np.ndarray:
    """``volume[(N - j) % N]`` along every axis: the intensity at -q (Friedel mate)."""
    out = volume
    for axis in range(volume.ndim):
        out = np.roll(np.flip(out, axis=axis), 1, axis=axis)
    return out


def minima(profile: np.ndarray) -> np.ndarray:
    """Indices of the local minima of a 1D profile."""
    inner = profile[1:-1]
    return np.flatnonzero((inner < profile[:-2]) & (inner <= profile[2:])) + 1


@pytest.mark.parametrize(
    ("shape", "seed", "crystal"),
    [(SHAPE, 0, "wulff"), (SHAPE, 1, "hull"), ((40, 32, 48), 2, "winterbottom")],
)
def test_photon_budget_respected(shape, seed, crystal):
    diffraction = simulate_volume(
        shape, seed=seed, shape=crystal, background=0.0, photon_budget=3.3e7
    )
    assert diffraction.expected.sum(dtype=np.float64) == pytest.approx(3.3e7, rel=0.01)
    # the Poisson draw holds about as many photons
    assert diffraction.counts.sum(dtype=np.float64) == pytest.approx(3.3e7, rel=0.01)


def test_background_adds_to_budget():
    diffraction = simulate_volume(SHAPE, seed=0, background=0.5, photon_budget=1e6)
    total = 1e6 + 0.5 * np.prod(SHAPE)
    assert diffraction.expected.sum(dtype=np.float64) == pytest.approx(total, rel=0.01)
    assert diffraction.expected.min() >= 0.5 * (1 - 1e-6)


@pytest.mark.parametrize("oversampling", [3.0, 4.0])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_fringe_spacing_follows_oversampling(oversampling, axis):
    params = CrystalParams(shape="cube", oversampling=oversampling, rotation=(0.0, 0.0, 0.0))
    expected = simulate_volume(SHAPE, params).expected
    peak = np.unravel_index(np.argmax(expected), SHAPE)
    assert peak == tuple(n // 2 for n in SHAPE)  # the Bragg peak at the grid centre
    line = list(peak)
    line[axis] = slice(None)
    found = minima(expected[tuple(line)]) - peak[axis]
    period = oversampling * SHAPE[axis] / min(SHAPE)
    # the central lobe is two periods wide ...
    central = (found[found > 0].min() - found[found < 0].max()) / 2
    assert central == pytest.approx(period, rel=0.15)
    # ... and the side fringes one period each
    overall = (found.max() - found.min()) / len(found)
    assert overall == pytest.approx(period, rel=0.15)


@pytest.mark.parametrize("crystal", ["wulff", "hull", "winterbottom", "octahedron"])
def test_unstrained_intensity_is_centrosymmetric(crystal):
    params = CrystalParams.random(
        np.random.default_rng(7),
        shape=crystal,
        strain_amplitude=0.0,
        interface_strain=0.0,
        dislocation=False,
    )
    expected = simulate_volume(SHAPE, params).expected
    np.testing.assert_allclose(expected, inverted(expected), rtol=0, atol=1e-3 * expected.max())


@pytest.mark.parametrize(
    "strain",
    [
        {"strain_amplitude": 1.5},
        {"dislocation": True},
        {"shape": "winterbottom", "interface_strain": 1.2},
    ],
)
def test_strained_intensity_is_not_centrosymmetric(strain):
    fields = {"strain_amplitude": 0.0, "interface_strain": 0.0, "dislocation": False}
    params = CrystalParams.random(np.random.default_rng(7), **{**fields, **strain})
    expected = simulate_volume(SHAPE, params).expected
    assert np.abs(expected - inverted(expected)).max() > 0.01 * expected.max()


def test_interface_strain_decays_away_from_substrate():
    params = CrystalParams(
        shape="winterbottom", truncation=-0.3, interface_strain=1.0, oversampling=2.0
    )
    shape = (40, 40, 40)
    obj = crystal_object(shape, params)
    inside = np.abs(obj) > 0.5
    layers = [x for x in range(shape[2]) if inside[:, :, x].any()]
    # the substrate cuts the crystal at x = truncation * radius (radius 10, centre 20)
    interface = 20 - 3
    assert layers[0] == pytest.approx(interface, abs=1)
    phase = np.array([np.angle(obj[:, :, x][inside[:, :, x]]).mean() for x in layers])
    # the strain is uniform in each layer parallel to the substrate, decaying over 0.3 radii
    np.testing.assert_allclose(phase, np.exp(-(np.array(layers) - interface) / 3.0), atol=1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_random_hulls_stay_inside_the_grid(seed):
    params = CrystalParams(
        shape="hull", hull_facets=8, oversampling=2.0, seed=seed, rotation=(0.3 * seed, 1.0, 2.0)
    )
    rho, _, _ = density((32, 32, 32), params, np.random.default_rng(seed))
    faces = [rho[0], rho[-1], rho[:, 0], rho[:, -1], rho[:, :, 0], rho[:, :, -1]]
    assert max(float(f.max()) for f in faces) < 0.5


def test_simulate_volume_is_deterministic_by_seed():
    a, b, c = (simulate_volume(SHAPE, seed=s) for s in (3, 3, 4))
    for field in ("expected", "counts", "obj"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.params == b.params
    assert a.params != c.params
    assert not np.array_equal(a.counts, c.counts)


def test_simulate_scan_is_deterministic_by_seed():
    a, b, c = (simulate_scan("maxipix_2x2", n_frames=16, roi_size=48, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.truth, b.truth)
    assert a.roi == b.roi
    assert not np.array_equal(a.truth, c.truth)


def test_gap_pixels_zero_in_data_truth_unchanged():
    scan = simulate_scan("maxipix_2x2", n_frames=16, roi_size=(48, 64), seed=1)
    assert scan.data.shape == scan.truth.shape == scan.expected.shape == (16, 48, 64)
    assert scan.data.dtype == scan.truth.dtype == np.float32
    assert scan.mask.shape == (48, 64)
    assert scan.mask.any()
    y0, y1, x0, x1 = scan.roi
    assert (y1 - y0, x1 - x0) == (48, 64)
    assert np.all(scan.data[:, scan.mask] == 0)
    assert scan.truth[:, scan.mask].sum() > 0
    np.testing.assert_array_equal(scan.data[:, ~scan.mask], scan.truth[:, ~scan.mask])
    np.testing.assert_array_equal(scan.truth, np.round(scan.truth))  # integer counts


def test_gap_lies_near_the_peak():
    # the ROI is centred on the MAXIPIX 2x2 gap crossing (within the jitter)
    scan = simulate_scan("maxipix_2x2", n_frames=16, roi_size=64, seed=2, peak_jitter=0.0)
    assert scan.mask[:, 32].all() or scan.mask[32, :].all() or scan.mask[29:35, 29:35].all()


def test_write_read_roundtrip(tmp_path):
    scan = simulate_scan("maxipix_2x2", n_frames=16, roi_size=32, seed=3)
    path = write_scan(tmp_path / "scan.h5", scan)
    back = read_scan(path)
    for field in ("data", "mask", "truth", "expected", "obj"):
        np.testing.assert_array_equal(getattr(back, field), getattr(scan, field))
        assert getattr(back, field).dtype == getattr(scan, field).dtype
    assert back.params == scan.params
    assert back.roi == scan.roi
    assert back.detector == scan.detector
    assert back.metadata == scan.metadata
    light = read_scan(path, with_truth=False)
    np.testing.assert_array_equal(light.data, scan.data)
    assert light.truth.size == 0
    with h5py.File(path) as f:  # NeXus: pixel_mask 1 = dead, a default plottable signal
        assert f["entry/data/data"].shape == scan.data.shape
        assert f["entry/instrument/detector/pixel_mask"][()].sum() == scan.mask.sum()


def test_read_scan_errors(tmp_path):
    with pytest.raises(InputDataError, match="cannot open"):
        read_scan(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputDataError, match="not a bcdi-online scan"):
        read_scan(tmp_path / "other.h5")


def test_plot_central_slices(tmp_path):
    scan = simulate_scan("maxipix_2x2", n_frames=16, roi_size=32, seed=3)
    path = plot_central_slices({"measured": scan.data, "truth": scan.truth}, tmp_path / "s.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _intensity_correlation(intensity: np.ndarray, a: int, b: int) -> float:
    """Correlation of grid coordinates ``a`` and ``b`` weighted by the peak's intensity."""
    weight = np.where(intensity > 1e-3 * intensity.max(), intensity, 0.0)
    coords = np.indices(intensity.shape).astype(float)
    centred = [c - (weight * c).sum() / weight.sum() for c in coords]
    moment = [[(weight * ci * cj).sum() for cj in centred] for ci in centred]
    return float(moment[a][b] / np.sqrt(moment[a][a] * moment[b][b]))


@pytest.mark.parametrize(("axes", "term"), [((0, 1), 0), ((0, 2), 1), ((1, 2), 2)])
@pytest.mark.parametrize("amount", [-0.4, 0.4])
def test_shear_tilts_the_peak_as_the_sampling_grid_says(axes, term, amount):
    # q = B p with B unit lower-triangular: the covariance of p is (B^T B)^-1 times that
    # of the cube's (isotropic) peak, whose off-diagonal term is -amount / sqrt(1 + amount^2)
    shear = [0.0, 0.0, 0.0]
    shear[term] = amount
    cube = CrystalParams(shape="cube", oversampling=3.0, photon_budget=1e9)
    straight = simulate_volume((48, 48, 48), cube).expected
    sheared = simulate_volume((48, 48, 48), cube, shear=tuple(shear)).expected
    assert abs(_intensity_correlation(straight, *axes)) < 0.01
    expected = -amount / np.sqrt(1 + amount**2)
    assert _intensity_correlation(sheared, *axes) == pytest.approx(expected, abs=0.03)


def test_coherence_blur_lowers_fringe_visibility_and_keeps_the_budget():
    cube = CrystalParams(shape="cube", oversampling=3.0, photon_budget=1e8)
    sharp = simulate_volume((48, 48, 48), cube).expected
    blurred = simulate_volume((48, 48, 48), cube, coherence_blur=1.0).expected
    # first fringe minimum along x (3 px from the peak at oversampling 3), over the peak
    assert sharp[24, 24, 27] / sharp[24, 24, 24] < 1e-3
    assert blurred[24, 24, 27] / blurred[24, 24, 24] > 0.05
    assert blurred.sum() == pytest.approx(1e8, rel=1e-3)


def test_random_measurement_effects_are_opt_in():
    plain = CrystalParams.random(np.random.default_rng(7))
    again = CrystalParams.random(np.random.default_rng(7))
    effects = CrystalParams.random(np.random.default_rng(7), measurement_effects=True)
    assert plain == again
    assert plain.shear == (0.0, 0.0, 0.0) and plain.coherence_blur == 0.0
    assert dataclasses.replace(effects, shear=plain.shear, coherence_blur=0.0) == plain
    assert max(abs(t) for t in effects.shear) > 0 and effects.coherence_blur > 0


@pytest.mark.parametrize(
    "fields",
    [
        {"shape": "sphere"},
        {"oversampling": 1.0},
        {"oversampling": float("nan")},
        {"photon_budget": 10.0},
        {"background": -1.0},
        {"strain_amplitude": -0.1},
        {"edge_width": 0.0},
        {"truncation": 1.5},
        {"wulff_ratio": 5.0},
        {"hull_facets": 2},
        {"rotation": (0.0, 1.0)},
        {"shear": (0.0, 1.5, 0.0)},
        {"shear": (0.1, 0.2)},
        {"coherence_blur": -0.5},
    ],
)
def test_bad_crystal_params_raise(fields):
    with pytest.raises(SimulationError):
        CrystalParams(**fields)
    with pytest.raises(ValueError):  # SimulationError is a ValueError too
        dataclasses.replace(CrystalParams(), **fields)


@pytest.mark.parametrize("shape", [(32, 32), (4, 32, 32), (32, 32, 32, 2)])
def test_bad_volume_shape_raises(shape):
    with pytest.raises(SimulationError, match="shape"):
        simulate_volume(shape, seed=0)


@pytest.mark.parametrize("kwargs", [{"n_frames": 4}, {"peak_jitter": 0.9}, {"peak_jitter": -0.1}])
def test_bad_scan_params_raise(kwargs):
    with pytest.raises(SimulationError):
        simulate_scan("maxipix_2x2", **{"n_frames": 16, "roi_size": 32, **kwargs})
