from __future__ import annotations

import numpy as np
import pytest

from bcdi_online import GapMaskError, UnknownDetectorError
from bcdi_online.detectors import DetectorSpec, gap_mask, get_detector, roi_around

QUAD = DetectorSpec(
    name="quad",
    shape=(512, 512),
    pixel_size=(55e-6, 55e-6),
    module_shape=(256, 256),
    module_gap=(0, 0),
    source="test: four chips, no gap",
)


def dead_lines(mask: np.ndarray, axis: int) -> list[int]:
    """Indices of rows (axis=0) or columns (axis=1) that are entirely dead."""
    return np.flatnonzero(mask.all(axis=1 - axis)).tolist()


def spans(*ranges: tuple[int, int]) -> list[int]:
    """Half-open ranges joined into one sorted list of indices."""
    return [i for start, stop in ranges for i in range(start, stop)]


# (name, maxipix_gap, dead rows, dead columns); positions from the published module
# size + gap of each detector (see the registry) and, for MAXIPIX and the ID01
# Eiger2M, from the masks of carnisj/bcdi.
GAPS = [
    ("maxipix_1x1", 6, [], []),
    ("maxipix_2x2", 6, spans((255, 261)), spans((255, 261))),
    ("maxipix_2x2", 4, spans((256, 260)), spans((256, 260))),
    ("maxipix_5x1", 6, [], spans((255, 261), (515, 521), (775, 781), (1035, 1041))),
    ("maxipix_5x1", 4, [], spans((256, 260), (516, 520), (776, 780), (1036, 1040))),
    ("eiger_500k", 6, [], []),
    ("eiger_1m", 6, spans((514, 551)), []),
    ("eiger_4m", 6, spans((514, 551), (1065, 1102), (1616, 1653)), spans((1030, 1040))),
    ("eiger2_1m", 6, spans((512, 550)), []),
    ("eiger2_4m", 6, spans((512, 550), (1062, 1100), (1612, 1650)), spans((1028, 1040))),
    ("eiger2_cdte_500k", 6, [], spans((513, 515))),
    (
        "eiger2_cdte_4m",
        6,
        spans((512, 550), (1062, 1100), (1612, 1650)),
        spans((513, 515), (1028, 1040), (1553, 1555)),
    ),
    ("id01_eiger2m", 6, spans((514, 550), (1064, 1100), (1614, 1650)), []),
    ("pilatus_300k", 6, spans((195, 212), (407, 424)), []),
    ("pilatus_300kw", 6, [], spans((487, 494), (981, 988))),
    ("pilatus_1m", 6, spans((195, 212), (407, 424), (619, 636), (831, 848)), spans((487, 494))),
    (
        "lambda_750k",
        6,
        spans((256, 260)),
        spans(*((256 + 260 * k, 260 + 260 * k) for k in range(5))),
    ),
    ("merlin", 6, spans((255, 260)), spans((255, 260))),
    ("merlin", 4, spans((256, 259)), spans((256, 259))),
]


@pytest.mark.parametrize(("name", "maxipix_gap", "rows", "columns"), GAPS)
def test_gap_lines_at_published_positions(
    name: str, maxipix_gap: int, rows: list[int], columns: list[int]
) -> None:
    mask = gap_mask(name, maxipix_gap=maxipix_gap)
    assert mask.dtype == np.bool_
    assert mask.shape == get_detector(name).shape
    assert dead_lines(mask, 0) == rows
    assert dead_lines(mask, 1) == columns
    # module gaps only: every dead pixel lies on a dead row or column
    assert not (mask & ~mask.all(axis=1, keepdims=True) & ~mask.all(axis=0, keepdims=True)).any()


def test_id01_eiger2m_gaps_lie_inside_bcdi_masked_rows() -> None:
    rows = dead_lines(gap_mask("id01_eiger2m"), 0)
    assert set(rows) <= set(spans((511, 552), (1061, 1102), (1611, 1652)))


@pytest.mark.parametrize("name", ["maxipix_2x2", "eiger_4m", "eiger2_cdte_1m", "pilatus_6m"])
def test_roi_is_the_cropped_full_mask(name: str) -> None:
    roi = roi_around(name, (300, 500), (96, 128))
    mask = gap_mask(name, roi)
    assert mask.shape == (96, 128)
    assert mask.flags.c_contiguous
    y0, y1, x0, x1 = roi
    np.testing.assert_array_equal(mask, gap_mask(name)[y0:y1, x0:x1])


def test_accepts_a_spec_and_returns_a_fresh_array() -> None:
    spec = get_detector("maxipix_2x2")
    mask = gap_mask(spec, (200, 300, 200, 300))
    mask[:] = True
    assert gap_mask(spec, (200, 300, 200, 300)).sum() == 100 * 6 * 2 - 6 * 6


@pytest.mark.parametrize("full_frame", [True, False])
def test_user_mask_is_ored_in(full_frame: bool) -> None:
    roi = (200, 320, 240, 300)
    user = np.zeros((516, 516) if full_frame else (120, 60), dtype=bool)
    hot = (210, 250) if full_frame else (10, 10)
    user[hot] = True
    mask = gap_mask("maxipix_2x2", roi, user_mask=user)
    expected = gap_mask("maxipix_2x2", roi)
    expected[10, 10] = True
    np.testing.assert_array_equal(mask, expected)
    assert user.sum() == 1  # left untouched


def test_user_mask_of_the_wrong_shape() -> None:
    with pytest.raises(
        GapMaskError, match=r"^mask shape \(516, 516\) does not match frame shape \(512, 512\)$"
    ):
        gap_mask(QUAD, user_mask=np.zeros((516, 516), dtype=bool))
    with pytest.raises(
        GapMaskError,
        match=r"mask shape \(64, 64\) does not match frame shape \(512, 512\) "
        r"or roi shape \(32, 32\)",
    ):
        gap_mask(QUAD, (0, 32, 0, 32), user_mask=np.zeros((64, 64), dtype=bool))


def test_user_mask_must_be_bool() -> None:
    with pytest.raises(GapMaskError, match="must be bool .* got dtype uint8"):
        gap_mask(QUAD, user_mask=np.zeros((512, 512), dtype=np.uint8))


@pytest.mark.parametrize(
    ("roi", "message"),
    [
        (
            (0, 600, 0, 100),
            r"\(0, 600, 0, 100\) is empty or outside the frame of shape \(516, 516\)",
        ),
        ((-1, 10, 0, 10), r"\(-1, 10, 0, 10\) is empty or outside"),
        ((10, 10, 0, 10), r"\(10, 10, 0, 10\) is empty"),
        ((0, 10, 20, 5), r"\(0, 10, 20, 5\) is empty"),
        ((0, 10, 0), r"four integers .* got \(0, 10, 0\)"),
        ((0, 10.5, 0, 10), r"four integers .* got \(0, 10.5, 0, 10\)"),
    ],
)
def test_bad_roi(roi: tuple, message: str) -> None:
    with pytest.raises(GapMaskError, match=message):
        gap_mask("maxipix_2x2", roi)


def test_numpy_integer_roi() -> None:
    roi = tuple(np.array([250, 270, 0, 516]))
    assert gap_mask("maxipix_2x2", roi).shape == (20, 516)


@pytest.mark.parametrize("maxipix_gap", [5, 0, 3])
def test_bad_maxipix_gap(maxipix_gap: int) -> None:
    with pytest.raises(GapMaskError, match=f"must be 6 or 4, got {maxipix_gap}"):
        gap_mask("maxipix_2x2", maxipix_gap=maxipix_gap)


def test_unknown_detector() -> None:
    with pytest.raises(UnknownDetectorError, match="'maxipix_3x3'"):
        gap_mask("maxipix_3x3")


@pytest.mark.parametrize(
    ("center", "size", "roi"),
    [
        ((258, 258), (128, 64), (194, 322, 226, 290)),
        ((258.4, 257.6), (127, 65), (195, 322, 226, 291)),
        ((3, 510), (64, 64), (0, 64, 452, 516)),
        ((0, 0), (516, 516), (0, 516, 0, 516)),
    ],
)
def test_roi_around_centres_and_clamps(
    center: tuple[float, float], size: tuple[int, int], roi: tuple[int, ...]
) -> None:
    result = roi_around("maxipix_2x2", center, size)
    assert result == roi
    assert all(type(v) is int for v in result)


@pytest.mark.parametrize(
    ("center", "size", "message"),
    [
        (
            (10, 10),
            (517, 16),
            r"size \(517, 16\) must be positive and fit in frame shape \(516, 516\)",
        ),
        ((10, 10), (0, 16), r"size \(0, 16\) must be positive"),
        ((516, 10), (16, 16), r"center \(516, 10\) is outside frame shape \(516, 516\)"),
        ((10, -1), (16, 16), r"center \(10, -1\) is outside"),
    ],
)
def test_roi_around_rejects(center: tuple, size: tuple, message: str) -> None:
    with pytest.raises(GapMaskError, match=message):
        roi_around("maxipix_2x2", center, size)


@pytest.mark.parametrize("name", ["eiger_4m", "pilatus_1m", "lambda_250k", "eiger2_cdte_1m"])
def test_maxipix_gap_only_affects_enlarged_edge_pixels(name: str) -> None:
    np.testing.assert_array_equal(gap_mask(name, maxipix_gap=4), gap_mask(name, maxipix_gap=6))
