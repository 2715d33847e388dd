"""Speed and memory of the patch engine, and of the paper's stride-1 procedure.

Run (CPU, 2 cores on the development machines)::

    python benchmarks/bench_inpaint.py [--device cpu] [--weights PATH] [--skip-large]

Cases:

* 128 x 256 x 256 with a MAXIPIX cross (6 px rows and columns);
* 128 x 256 x 256 with an EIGER2 cross (12 px columns, 38 px rows);
* 256 x 516 x 516 MAXIPIX 2x2 full frame (peak memory goal < 2 GB), unless --skip-large;
* Masto et al. (2024) procedure on 48 x 96 x 96 with one 6 px stripe: a 32^3 window at
  every voxel position along the gap (stride 1 in the rocking and along-stripe axes),
  predicted one at a time, uniformly averaged; versus our engine on the same volume and
  the same model. Reports the speed-up.

Peak memory is the process's peak resident set (``ru_maxrss``) measured in a fresh
subprocess per case, so cases do not inherit each other's peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from bcdi_online.detectors import gap_mask
from bcdi_online.inpainting import GapInpainter
from bcdi_online.model import ModelPredictor, load_model


def _volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(5.0, size=shape).astype(np.uint32)


def _cross(shape: tuple[int, int], rows: int, cols: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    ny, nx = shape
    mask[ny // 2 - rows // 2 : ny // 2 - rows // 2 + rows, :] = True
    mask[:, nx // 2 - cols // 2 : nx // 2 - cols // 2 + cols] = True
    return mask


class CountingPredictor:
    """Wrap a predictor, counting windows."""

    def __init__(self, predictor: ModelPredictor) -> None:
        self.predictor = predictor
        self.windows = 0
        self.size_multiple = predictor.size_multiple

    def __call__(self, patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.windows += len(patches)
        return self.predictor(patches, masks)


def run_case(name: str, device: str, weights: str | None) -> dict:
    """Run one engine case in this process."""
    if name == "maxipix_cross":
        data, mask = _volume((128, 256, 256)), _cross((256, 256), 6, 6)
    elif name == "eiger2_cross":
        data, mask = _volume((128, 256, 256)), _cross((256, 256), 38, 12)
    elif name == "maxipix_2x2_full":
        data, mask = _volume((256, 516, 516)), gap_mask("maxipix_2x2")
    else:
        raise ValueError(name)
    predictor = CountingPredictor(ModelPredictor(load_model(weights, device), device))
    inpainter = GapInpainter(predictor)
    start = time.perf_counter()
    inpainter(data, mask)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {
        "case": name,
        "shape": list(data.shape),
        "seconds": seconds,
        "windows": predictor.windows,
        "windows_per_s": predictor.windows / seconds,
        "peak_rss_gb": peak,
        "data_gb": data.nbytes / 1024**3,
    }


def paper_procedure(device: str, weights: str | None) -> dict:
    """Stride-1, one-window-at-a-time, uniformly averaged inference vs our engine."""
    shape = (48, 96, 96)
    data = _volume(shape)
    mask = np.zeros(shape[1:], dtype=bool)
    mask[:, 45:51] = True
    predictor = ModelPredictor(load_model(weights, device), device)
    acc = np.zeros(shape, np.float64)
    count = np.zeros(shape, np.float64)
    x0 = 48 - 16
    start = time.perf_counter()
    n_windows = 0
    for t0 in range(shape[0] - 31):
        for y0 in range(shape[1] - 31):
            sl = np.s_[t0 : t0 + 32, y0 : y0 + 32, x0 : x0 + 32]
            patch = torch.from_numpy(np.where(mask[sl[1:]], 0, data[sl]).astype(np.float32))
            window_mask = torch.from_numpy(np.broadcast_to(mask[sl[1:]], (32, 32, 32)).copy())
            acc[sl] += predictor(patch[None], window_mask[None])[0].numpy()
            count[sl] += 1
            n_windows += 1
    paper_seconds = time.perf_counter() - start
    inpainter = GapInpainter(predictor)
    start = time.perf_counter()
    inpainter(data, mask)
    ours = time.perf_counter() - start
    return {
        "case": "paper_procedure_48x96x96",
        "paper_windows": n_windows,
        "paper_seconds": paper_seconds,
        "ours_seconds": ours,
        "speedup": paper_seconds / ours,
    }


def main() -> None:
    """Run every case, each engine case in a fresh subprocess."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.case:
        print(json.dumps(run_case(args.case, args.device, args.weights)))
        return
    cases = ["maxipix_cross", "eiger2_cross"] + ([] if args.skip_large else ["maxipix_2x2_full"])
    results = []
    for case in cases:
        cmd = [sys.executable, __file__, "--case", case, "--device", args.device]
        if args.weights:
            cmd += ["--weights", args.weights]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    results.append(paper_procedure(args.device, args.weights))
    print(results[-1])
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
