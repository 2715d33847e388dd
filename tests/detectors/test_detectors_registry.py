from __future__ import annotations

import dataclasses

import numpy as np
import pyFAI
import pytest

from bcdi_online import GapMaskError, UnknownDetectorError
from bcdi_online.detectors import (
    DETECTORS,
    DetectorSpec,
    checked_mask,
    detector_names,
    get_detector,
)

# (name, frame shape (ny, nx), pixel size in m, modules (along y, along x))
PUBLISHED = [
    ("maxipix_1x1", (256, 256), 55e-6, (1, 1)),
    ("maxipix_2x2", (516, 516), 55e-6, (2, 2)),
    ("maxipix_5x1", (256, 1296), 55e-6, (1, 5)),
    ("eiger_500k", (514, 1030), 75e-6, (1, 1)),
    ("eiger_1m", (1065, 1030), 75e-6, (2, 1)),
    ("eiger_4m", (2167, 2070), 75e-6, (4, 2)),
    ("eiger_9m", (3269, 3110), 75e-6, (6, 3)),
    ("eiger_16m", (4371, 4150), 75e-6, (8, 4)),
    ("eiger2_500k", (512, 1028), 75e-6, (1, 1)),
    ("eiger2_1m", (1062, 1028), 75e-6, (2, 1)),
    ("eiger2_4m", (2162, 2068), 75e-6, (4, 2)),
    ("eiger2_9m", (3262, 3108), 75e-6, (6, 3)),
    ("eiger2_16m", (4362, 4148), 75e-6, (8, 4)),
    ("eiger2_cdte_500k", (512, 1028), 75e-6, (1, 1)),
    ("eiger2_cdte_1m", (1062, 1028), 75e-6, (2, 1)),
    ("eiger2_cdte_4m", (2162, 2068), 75e-6, (4, 2)),
    ("eiger2_cdte_9m", (3262, 3108), 75e-6, (6, 3)),
    ("eiger2_cdte_16m", (4362, 4148), 75e-6, (8, 4)),
    ("id01_eiger2m", (2164, 1030), 75e-6, (4, 1)),
    ("pilatus_300k", (619, 487), 172e-6, (3, 1)),
    ("pilatus_300kw", (195, 1475), 172e-6, (1, 3)),
    ("pilatus_1m", (1043, 981), 172e-6, (5, 2)),
    ("pilatus_2m", (1679, 1475), 172e-6, (8, 3)),
    ("pilatus_6m", (2527, 2463), 172e-6, (12, 5)),
    ("lambda_250k", (516, 516), 55e-6, (2, 2)),
    ("lambda_750k", (516, 1556), 55e-6, (2, 6)),
    ("lambda_2m", (1556, 1556), 55e-6, (6, 6)),
    ("merlin", (515, 515), 55e-6, (2, 2)),
]

WITH_PYFAI = [spec for spec in DETECTORS.values() if spec.pyfai is not None]


def test_registry_holds_exactly_the_published_detectors() -> None:
    assert detector_names() == sorted(name for name, *_ in PUBLISHED)


@pytest.mark.parametrize(("name", "shape", "pixel", "modules"), PUBLISHED)
def test_published_geometry(
    name: str, shape: tuple[int, int], pixel: float, modules: tuple[int, int]
) -> None:
    spec = get_detector(name)
    assert spec.name == name
    assert spec.shape == shape
    assert spec.pixel_size == (pixel, pixel)
    assert spec.n_modules == modules
    assert spec.full_mask().shape == shape
    assert spec.source


@pytest.mark.parametrize("spec", WITH_PYFAI, ids=lambda spec: spec.name)
def test_mask_matches_pyfai_calc_mask(spec: DetectorSpec) -> None:
    detector = pyFAI.detector_factory(spec.pyfai)
    assert detector.max_shape == spec.shape
    assert (detector.pixel1, detector.pixel2) == pytest.approx(spec.pixel_size)
    expected = detector.calc_mask()
    expected = np.zeros(spec.shape, bool) if expected is None else expected.astype(bool)
    # pyFAI masks the empty pixels of a gap, not the enlarged chip-edge pixels
    np.testing.assert_array_equal(spec.full_mask(mark_edges=False), expected)


def test_only_id01_eiger2m_and_merlin_lack_a_pyfai_class() -> None:
    assert sorted(set(DETECTORS) - {spec.name for spec in WITH_PYFAI}) == [
        "id01_eiger2m",
        "merlin",
    ]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("maxipix_2x2", "maxipix_2x2"),
        ("Maxipix-2x2", "maxipix_2x2"),
        ("MAXIPIX 2x2", "maxipix_2x2"),
        ("Maxipix2x2", "maxipix_2x2"),
        ("Eiger2CdTe_1M", "eiger2_cdte_1m"),
        ("eiger2-cdte-1m", "eiger2_cdte_1m"),
        ("EIGER-4M", "eiger_4m"),
        ("Eiger2_4M", "eiger2_4m"),
        ("ID01-Eiger2M", "id01_eiger2m"),
        ("Pilatus300kw", "pilatus_300kw"),
        ("Merlin", "merlin"),
    ],
)
def test_lookup_ignores_case_and_separators(query: str, name: str) -> None:
    assert get_detector(query) is DETECTORS[name]


def test_names_stay_distinct_without_separators() -> None:
    squashed = {name.replace("_", "") for name in DETECTORS}
    assert len(squashed) == len(DETECTORS)


@pytest.mark.parametrize("query", ["eiger_2m", "pilatus_100k", "maxipix", ""])
def test_unknown_name_lists_known_names(query: str) -> None:
    with pytest.raises(UnknownDetectorError, match="known detectors: eiger2_16m") as info:
        get_detector(query)
    assert f"unknown detector {query!r}" in str(info.value)
    assert "maxipix_2x2" in str(info.value)
    assert isinstance(info.value, KeyError)


def test_name_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="must be a str, got int"):
        get_detector(516)  # type: ignore[arg-type]


def test_registry_and_specs_are_read_only() -> None:
    spec = get_detector("maxipix_2x2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.shape = (512, 512)  # type: ignore[misc]
    with pytest.raises(TypeError):
        DETECTORS["mine"] = spec  # type: ignore[index]


def test_spec_rejects_a_frame_not_tiled_by_its_modules() -> None:
    with pytest.raises(ValueError, match="frame size 517 along axis 0"):
        DetectorSpec(
            name="odd",
            shape=(517, 516),
            pixel_size=(55e-6, 55e-6),
            module_shape=(256, 256),
            module_gap=(4, 4),
            source="test",
        )


def test_checked_mask_is_the_one_mask_check() -> None:
    frame = np.zeros((4, 5), dtype=bool)
    assert checked_mask(frame, (4, 5)) is frame  # a frame mask for a frame
    assert checked_mask(frame, (3, 4, 5)) is frame  # ... and for a volume
    volume = np.zeros((3, 4, 5), dtype=bool)
    assert checked_mask(volume, (3, 4, 5)) is volume
    with pytest.raises(GapMaskError, match=r"mask shape \(3, 4, 5\) does not match frame"):
        checked_mask(volume, (4, 5))
    with pytest.raises(GapMaskError, match=r"expected \(4, 5\) or \(2, 4, 5\)"):
        checked_mask(volume, (2, 4, 5))
    with pytest.raises(GapMaskError, match="dtype must be bool"):
        checked_mask(frame.astype(np.uint8), (4, 5))
