"""Fit the fill uncertainty of the shipped model and check its coverage on held-out scans.

    python benchmarks/calibrate_uncertainty.py [--per-case 2] [--out PATH]

Fits :class:`bcdi_online.inpainting.FillUncertainty` on the model's fills of the
calibration scans (``validation_set(seed=UNCERTAINTY_SEED)``: other crystals than the
validation set and the training data), then measures on the validation set
(``seed=VALIDATION_SEED``) how often the noise-free intensity falls in the 68 % and
95 % bands, per gap width. Writes the JSON shipped beside the weights.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bcdi_online.evaluation import VALIDATION_SEED, validation_set
from bcdi_online.inpainting import FillUncertainty, GapInpainter, coverage
from bcdi_online.model import DEFAULT_WEIGHTS, model_sha256

#: Seeds of the calibration scans.
UNCERTAINTY_SEED = 950_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-case", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_WEIGHTS.with_name("gap_unet_uncertainty.json")
    )
    args = parser.parse_args()
    started = time.perf_counter()
    inpainter = GapInpainter(device="cpu")

    def filled(seed: int):
        for case in validation_set(per_case=args.per_case, seed=seed):
            yield inpainter(case.data, case.mask), case.expected, case.mask, case.width

    fit_cases = [(f, e, m) for f, e, m, _ in filled(UNCERTAINTY_SEED)]
    held_out = list(filled(VALIDATION_SEED))
    held = [(f, e, m) for f, e, m, _ in held_out]
    fitted = FillUncertainty.fit(fit_cases)
    report = {}
    for level in (0.68, 0.95):
        report[f"coverage_{int(level * 100)}"] = coverage(fitted, held, level=level)
        for width in (6, 12, 38):
            subset = [(f, e, m) for f, e, m, w in held_out if w == width]
            report[f"coverage_{int(level * 100)}_w{width}"] = coverage(fitted, subset, level=level)
    calibration = FillUncertainty.fit(
        fit_cases,
        model_sha256=model_sha256(DEFAULT_WEIGHTS),
        fitted_on=f"validation_set(per_case={args.per_case}, seed={UNCERTAINTY_SEED})",
        checked_on=f"validation_set(per_case={args.per_case}, seed={VALIDATION_SEED})",
        command="python benchmarks/calibrate_uncertainty.py",
        **{key: round(value, 4) for key, value in report.items()},
    )
    calibration.to_json(args.out)
    for key, value in report.items():
        print(f"{key:20s} {value:.3f}")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
