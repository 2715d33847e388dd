"""The validation set: held-out crystals and gaps, optionally seen through measurement effects."""

from __future__ import annotations

import numpy as np

from bcdi_online.evaluation import validation_set


def test_measurement_effects_keep_the_gaps_and_budgets_and_change_the_peaks():
    kwargs = {"shape": (24, 48, 48), "per_case": 1, "widths": (6,)}
    plain = validation_set(**kwargs)
    measured = validation_set(**kwargs, measurement_effects=True)
    assert [c.name for c in plain] == [c.name for c in measured]
    for a, b in zip(plain, measured, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.photons == b.photons
        assert not np.allclose(a.expected, b.expected)
        assert np.all(b.data[:, b.mask] == 0)
        np.testing.assert_array_equal(b.data[:, ~b.mask], b.truth[:, ~b.mask])
