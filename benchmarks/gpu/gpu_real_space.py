"""Stage ``real_space``: the crystals each gap practice gives, on as many cases as fit.

The real-space evaluation of ``bcdi-online evaluate --real-space`` (every case filled by
the model and by biharmonic inpainting, phased once per practice of
:data:`bcdi_online.evaluation.PRACTICES`, compared with the true crystal), on the GPU,
over a larger set than the CPU run: ``per_group`` crystals per (width, single/cross,
centre/off) group, taken round-robin over the groups so that a stage stopped by its
budget still covers every group evenly. Each case appends its rows to
``real_space.jsonl`` (``kind``: ``fill`` or ``reconstruction``) as soon as it is done.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gpu_context import Context, StageSkipped

from bcdi_online.evaluation import (
    PRACTICES,
    biharmonic,
    fill_scores,
    real_space_cases,
    reconstruct_case,
)
from bcdi_online.inpainting import FillUncertainty, GapInpainter
from bcdi_online.phasing import Recipe

#: (per_group, widths, scan shape, crop, recipe) on the GPU node and in a dry run.
FULL = (4, (6, 12, 38), (64, 128, 128), (64, 64, 64), None)
DRY = (1, (6,), (32, 64, 64), (16, 16, 16), "HIO**6 ER**4")


def run(ctx: Context) -> dict[str, Any]:
    """Phase the real-space cases with every practice until the stage budget is spent."""
    if not ctx.dry_run and not ctx.cuda:
        raise StageSkipped("no CUDA device: the CPU run is `bcdi-online evaluate --real-space`")
    per_group, widths, shape, crop, recipe_text = DRY if ctx.dry_run else FULL
    recipe = Recipe.parse(recipe_text, shrink_wrap_every=4) if recipe_text else Recipe()
    cases = real_space_cases(per_group=per_group, widths=widths, shape=shape)
    cases.sort(key=lambda case: int(case.name.rsplit("-", 1)[1]))  # round-robin over groups
    cases = cases[ctx.args.real_space_from :]
    inpainter = GapInpainter(device=str(ctx.device))  # the shipped model
    uncertainty = FillUncertainty.load()
    wanted = ctx.args.real_space_practices
    practices = [p for p in PRACTICES if wanted is None or p.name in wanted]
    rows_path = ctx.out / "real_space.jsonl"
    result: dict[str, Any] = {
        "cases_planned": len(cases),
        "cases_done": 0,
        "per_group": per_group,
        "crop": list(crop),
        "recipe": [(s.algorithm, s.iterations, s.beta) for s in recipe.stages],
        "rows": rows_path.name,
    }
    slowest = 0.0
    for case in cases:
        if ctx.stage_left() < 1.5 * slowest + 5:
            result["stopped"] = f"stage time left {ctx.stage_left():.0f} s"
            break
        started = time.perf_counter()
        fills = {
            "model": inpainter(case.data, case.mask),
            "biharmonic": biharmonic(case.data, case.mask),
        }
        rows = [{"kind": "fill", **row, "group": case.group} for row in fill_scores(case, fills)]
        reconstructions = reconstruct_case(
            case,
            fills,
            fill_sigma=uncertainty(fills["model"], case.mask),
            practices=practices,
            crop=crop,
            recipe=recipe,
            device=str(ctx.device),
        )
        rows += [{"kind": "reconstruction", **row} for row in reconstructions]
        with rows_path.open("a") as stream:
            stream.writelines(json.dumps(row) + "\n" for row in rows)
        seconds = time.perf_counter() - started
        slowest = max(slowest, seconds)
        result["cases_done"] += 1
        ctx.log(f"real space {case.name}: {len(reconstructions)} phasings in {seconds:.1f} s")
    result["seconds_per_case_max"] = slowest
    return result
