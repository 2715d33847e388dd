"""Our phase retrieval against a peer: APS's cohere-core on the same gap-free data."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from bcdi_online.phasing import Recipe, compare, phase_retrieval
from bcdi_online.simulation import simulate_volume

cohere_phasing = pytest.importorskip("cohere_core.controller.phasing")
nplib = pytest.importorskip("cohere_core.lib.nplib")

#: The same schedule in both notations: ER 20, HIO 100, ER 20, HIO 100, ER 40, with a
#: shrink-wrap (sigma 1, threshold 0.2) every 20 iterations.
COHERE_SEQUENCE = "2*(20*ER+100*HIO)+40*ER"
OURS = Recipe.parse("ER**20 HIO**100 ER**20 HIO**100 ER**40", shrink_wrap_threshold=0.2)


def _seeded_random(shape, **kwargs):
    """cohere seeds its random start from the clock; make it repeatable."""
    rng = np.random.default_rng(0)
    return rng.random(shape) + 1j * rng.random(shape)


@pytest.mark.slow
def test_comparable_to_cohere_on_gap_free_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crystal = simulate_volume(
        (32, 32, 32), seed=7, photon_budget=1e8, oversampling=3.0, strain_amplitude=1.0
    )
    data_file = tmp_path / "amplitudes.npy"
    np.save(
        data_file, np.sqrt(crystal.counts.astype(np.float64))
    )  # peak centred, as cohere reads it
    monkeypatch.setattr(nplib.nplib, "random", staticmethod(_seeded_random))
    params = {
        "algorithm_sequence": COHERE_SEQUENCE,
        "shrink_wrap_trigger": [1, 20],
        "shrink_wrap_type": "GAUSS",
        "shrink_wrap_threshold": 0.2,
        "shrink_wrap_gauss_sigma": 1.0,
        "initial_support_area": [0.5, 0.5, 0.5],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        rec = cohere_phasing.create_rec(params, str(data_file), "np", -1, debug=True)
        assert rec.iterate() == 0
    # cohere's forward transform is the inverse FFT: its object is our object's conjugate
    theirs = compare(np.conj(np.asarray(rec.get_image())), crystal.obj)
    ours = compare(
        phase_retrieval(crystal.counts, recipe=OURS, n_starts=1, device="cpu").obj, crystal.obj
    )
    assert theirs.phase_error < 0.1, theirs.as_dict()
    assert ours.phase_error < 1.5 * theirs.phase_error + 0.03, (ours.as_dict(), theirs.as_dict())
    assert ours.modulus_error < 1.5 * theirs.modulus_error + 0.03, (
        ours.as_dict(),
        theirs.as_dict(),
    )
