from __future__ import annotations

import numpy as np
import pytest

from bcdi_online import GapMaskError
from bcdi_online.detectors import Stripe, gap_mask, roi_around, stripes


def frame(
    rows: tuple[int, ...] = (), columns: tuple[int, ...] = (), shape: tuple[int, int] = (40, 50)
) -> np.ndarray:
    """A mask with the given whole rows and columns dead."""
    mask = np.zeros(shape, dtype=bool)
    mask[list(rows), :] = True
    mask[:, list(columns)] = True
    return mask


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (frame(rows=(20, 21, 22), columns=(10, 11)), [Stripe(0, 20, 23), Stripe(1, 10, 12)]),
        (
            frame(rows=(2, 3, 4, 10, 30, 31, 32, 33)),
            [Stripe(0, 2, 5), Stripe(0, 10, 11), Stripe(0, 30, 34)],
        ),
        (
            frame(columns=(0, 1, 25, 48, 49)),
            [Stripe(1, 0, 2), Stripe(1, 25, 26), Stripe(1, 48, 50)],
        ),
        (frame(), []),
        (np.ones((3, 4), dtype=bool), [Stripe(0, 0, 3), Stripe(1, 0, 4)]),
    ],
    ids=["cross", "parallel-rows", "parallel-columns-at-edges", "none", "all-dead"],
)
def test_stripes(mask: np.ndarray, expected: list[Stripe]) -> None:
    assert stripes(mask) == expected


def test_isolated_pixels_and_partial_lines_are_not_stripes() -> None:
    mask = frame(rows=(5,))
    mask[20, 3] = True  # isolated dead pixel
    mask[30, :-1] = True  # row dead but for one pixel
    mask[:, 7] = True  # whole column
    mask[0, 7] = False  # ... but for one pixel: no longer a whole column
    assert stripes(mask) == [Stripe(0, 5, 6)]


def test_stripes_of_a_detector_roi() -> None:
    roi = roi_around("maxipix_2x2", (258, 258), (64, 96))
    assert stripes(gap_mask("maxipix_2x2", roi)) == [Stripe(0, 29, 35), Stripe(1, 45, 51)]


def test_stripes_of_a_full_detector() -> None:
    found = stripes(gap_mask("eiger2_cdte_4m"))
    assert [(s.axis, s.start, s.width) for s in found] == [
        (0, 512, 38),
        (0, 1062, 38),
        (0, 1612, 38),
        (1, 513, 2),
        (1, 1028, 12),
        (1, 1553, 2),
    ]


@pytest.mark.parametrize(
    "mask",
    [np.zeros((2, 40, 50), dtype=bool), np.zeros(50, dtype=bool), np.zeros((40, 50), dtype=int)],
    ids=["3d", "1d", "int"],
)
def test_stripes_rejects_non_frame_masks(mask: np.ndarray) -> None:
    with pytest.raises(GapMaskError, match=r"must be a \(ny, nx\) bool array, got shape"):
        stripes(mask)


def test_stripe_width() -> None:
    assert Stripe(axis=1, start=255, stop=261).width == 6


@pytest.mark.parametrize(("axis", "start", "stop"), [(2, 0, 1), (0, 5, 5), (1, 6, 5), (0, -1, 3)])
def test_stripe_rejects_bad_fields(axis: int, start: int, stop: int) -> None:
    with pytest.raises(GapMaskError, match=f"got axis={axis}, start={start}, stop={stop}"):
        Stripe(axis, start, stop)
