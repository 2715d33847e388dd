"""The batch size a live run really used is in its metadata, and later runs keep it."""

from __future__ import annotations

import torch
from bluesky.plans import scan
from ophyd.sim import SynAxis

from bcdi_online.callbacks import LiveInpainting
from bcdi_online.inpainting import GapInpainter
from bcdi_online.sim_devices import CrystalSource, SimBcdiDetectorV1
from bcdi_online.tiled_output import read_result_file


def test_out_of_memory_halving_is_recorded_and_kept_for_the_next_run(run_engine, tmp_path) -> None:
    def fits_four(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if len(patches) > 4:
            raise torch.OutOfMemoryError(f"simulated: {len(patches)} windows")
        return torch.ones_like(patches)

    inpainter = GapInpainter(fits_four, batch_size=8)
    live = LiveInpainting(None, model=inpainter, fallback_dir=tmp_path)  # no Tiled: local files
    source = CrystalSource.simulate("maxipix_2x2", n_frames=36, roi_size=64, seed=0)
    eta = SynAxis(name="eta")
    det = SimBcdiDetectorV1(source, eta, name="mpx")
    uids = [run_engine(scan([det], eta, -0.5, 0.5, 36), live).run_start_uids[0] for _ in "ab"]
    assert live.wait(60)
    for uid in uids:
        _, _, metadata = read_result_file(live.health()[uid]["local_fallback"])
        assert metadata["status"] == "complete"
        assert metadata["batch_size"] == 8  # asked for
        assert metadata["processing"]["batch_size"] == 4  # used
    assert inpainter.batch.halvings == 1  # found in the first run only
