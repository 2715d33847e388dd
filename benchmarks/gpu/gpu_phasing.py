"""Stage ``phasing``: phase retrieval on the GPU, and the crystal at scan end.

Iterations per second of :func:`bcdi_online.phasing.phase_retrieval` (4 starts in one
batch) on growing grids; then the scan-end reconstruction of a simulated
128 x 256 x 256 scan with a 6 px gap (filled with its true counts, so the time and the
verdict are the engine's): at full resolution (goal: < 30 s on a GPU) and as the
CPU-style preview (the 64 x 64 x 64 box around the peak), with the phase error against the
simulated crystal.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from gpu_context import Context, StageSkipped, peak_memory, synchronize

from bcdi_online.phasing import Recipe, compare, phase_retrieval, reconstruct_scan
from bcdi_online.simulation import simulate_volume

GOAL_SCAN_END_S = 30.0
#: (grids timed, scan shape) on the GPU node and in a dry run.
FULL_SIZES = (((64, 64, 64), (128, 128, 128), (128, 256, 256)), (128, 256, 256))
DRY_SIZES = (((16, 16, 16),), (16, 32, 32))


def _iterations_per_second(ctx: Context, shape: tuple[int, int, int]) -> dict[str, Any]:
    """Time a short recipe (4 starts) after a warm-up call on one grid."""
    sim = simulate_volume(shape, seed=1, photon_budget=1e9, oversampling=3.0)
    recipe = Recipe.parse("HIO**40 ER**20", shrink_wrap_every=20)
    phase_retrieval(sim.counts, recipe=Recipe.parse("ER**2"), n_starts=4, device=ctx.device)
    row: dict[str, Any] = {"grid": list(shape), "starts": 4}
    with peak_memory(ctx.device, row):
        synchronize(ctx.device)
        started = time.perf_counter()
        phase_retrieval(sim.counts, recipe=recipe, n_starts=4, device=ctx.device)
        synchronize(ctx.device)
        seconds = time.perf_counter() - started
    row["iterations_per_s"] = recipe.iterations / seconds
    row["seconds_650_iterations"] = 650 / row["iterations_per_s"]
    return row


def run(ctx: Context) -> dict[str, Any]:
    """Measure phasing speed and the scan-end reconstruction time."""
    if not ctx.dry_run and not ctx.cuda:
        raise StageSkipped("no CUDA device: the phasing figures are GPU figures")
    grids, scan_shape = DRY_SIZES if ctx.dry_run else FULL_SIZES
    result: dict[str, Any] = {"speed": []}
    for shape in grids:
        if ctx.stage_left() < 10:
            result["speed_stopped"] = f"stage time left {ctx.stage_left():.0f} s"
            break
        result["speed"].append(_iterations_per_second(ctx, shape))
        ctx.log(f"phasing speed {result['speed'][-1]}")
    sim = simulate_volume(
        scan_shape, seed=3, photon_budget=1e9, oversampling=3.0, strain_amplitude=1.0
    )
    mask = np.zeros(scan_shape[1:], dtype=bool)
    centre = scan_shape[2] // 2 + 8
    mask[:, centre : centre + 6] = True
    for name, region, binning in (
        ("full", scan_shape, (1, 1, 1)),
        ("preview", (scan_shape[0] // 2, scan_shape[1] // 4, scan_shape[2] // 4), (1, 1, 1)),
    ):
        if ctx.stage_left() < 5:
            result[f"scan_end_{name}"] = {"skipped": f"stage time left {ctx.stage_left():.0f} s"}
            continue
        row: dict[str, Any] = {
            "scan": list(scan_shape),
            "region": list(region),
            "binning": list(binning),
        }
        with peak_memory(ctx.device, row):
            synchronize(ctx.device)
            started = time.perf_counter()
            recon = reconstruct_scan(
                sim.counts, mask, region_shape=region, binning=binning, device=str(ctx.device)
            )
            synchronize(ctx.device)
            row["seconds"] = time.perf_counter() - started
        row.update(converged=recon.converged, reason=recon.reason, mode_weight=recon.mode_weight)
        if name == "full":
            row["phase_error_rad"] = compare(recon.obj, sim.obj).phase_error
            row["goal_s"] = GOAL_SCAN_END_S
            row["meets_goal"] = row["seconds"] < GOAL_SCAN_END_S
        result[f"scan_end_{name}"] = row
        ctx.log(f"scan end {name}: {row}")
    return result
