"""One prepared GPU run: correctness, speed, the live path and a better model, in one command.

Run on a GPU node (see ``docs/how-to/gpu.md``)::

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu/run_gpu.py OUT_DIR [--budget-s 480]

and, on any CPU, the same script at tiny sizes (what the test suite runs)::

    python benchmarks/gpu/run_gpu.py OUT_DIR --dry-run

Needs only the engine (numpy, scipy, h5py, torch, scikit-image, rich, matplotlib): no
Bluesky, Tiled or hdf5plugin. Stages run in order, each with its own time budget; one
that fails or cannot run is recorded with its reason and the next one runs. After each
stage ``summary.json`` and ``summary.md`` are rewritten, so a run stopped at its time
limit still leaves what it measured. ``OUT_DIR`` receives at most these files:
``summary.json``, ``summary.md``, ``run.log``, ``gpu_tests.txt``, ``gap_unet_gpu.pt``,
``training_history.jsonl``. A new stage is a function ``(Context) -> dict`` added to
:data:`STAGES`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("bcdi_online") is None:  # a checkout that was not installed
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
    )

import gpu_correctness  # noqa: E402
import gpu_engine  # noqa: E402
import gpu_phasing  # noqa: E402
import gpu_real_space  # noqa: E402
import gpu_report  # noqa: E402
import gpu_speed  # noqa: E402
import gpu_training  # noqa: E402
import torch  # noqa: E402
from gpu_context import DRY, FULL, Context, StageSkipped  # noqa: E402

#: Least time the training stage is worth starting with.
MIN_TRAINING_S = 60.0


@dataclass(frozen=True)
class Stage:
    """A named step with its own time budget (None: whatever is left of the run)."""

    name: str
    run: Callable[[Context], dict[str, Any]]
    budget_s: float | None


STAGES = (
    Stage("correctness", gpu_correctness.run, 240.0),
    Stage("speed", gpu_speed.run, 150.0),
    Stage("engine", gpu_engine.run_engine, 90.0),
    Stage("live", gpu_engine.run_live, 40.0),
    Stage("phasing", gpu_phasing.run, 75.0),
    Stage("real_space", gpu_real_space.run, 120.0),
    Stage("training", gpu_training.run, None),
)


def _commit() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware, for the summary."""
    import bcdi_online

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_count": os.cpu_count(),
        "bcdi_online": bcdi_online.__version__,
        "commit": _commit(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=props.name,
            gpu_memory_gb=props.total_memory / 1e9,
            multiprocessors=props.multi_processor_count,
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
    return env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output directory (created; a few small files)")
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny sizes on the CPU (what the tests run)"
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="seconds for the whole run (default: 480, or 300 with --dry-run)",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=[s.name for s in STAGES],
        default=[s.name for s in STAGES],
        help="stages to run, in this order (default: all)",
    )
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda; cpu with --dry-run)"
    )
    real_space = parser.add_argument_group("real_space stage")
    real_space.add_argument(
        "--real-space-from",
        type=int,
        default=0,
        help="skip the first N cases of the round-robin order (phased by an earlier run) (0)",
    )
    real_space.add_argument(
        "--real-space-practices",
        nargs="+",
        default=None,
        metavar="NAME",
        help="phase with these practices only (default: all)",
    )
    real_space.add_argument(
        "--real-space-s", type=float, default=120.0, help="budget of the stage in seconds (120)"
    )
    training = parser.add_argument_group("training stage")
    training.add_argument("--train-volumes", type=int, default=None, help="crystals (1200)")
    training.add_argument("--train-seed", type=int, default=2029, help="data seed (2029)")
    training.add_argument("--base-channels", type=int, default=None, help="model width (24)")
    training.add_argument(
        "--blocks", type=int, default=None, help="extra convolutions per coarse level (2)"
    )
    training.add_argument("--train-batch", type=int, default=None, help="patches per step (64)")
    training.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (2e-3)")
    training.add_argument(
        "--workers",
        type=int,
        default=None,
        help="simulation processes (default: cores - 1; 0 with --dry-run: the worker "
        "processes are tested in tests/training)",
    )
    args = parser.parse_args(argv)
    dry = args.dry_run
    defaults = {
        "budget_s": 300.0 if dry else 480.0,
        "train_volumes": 4 if dry else 1200,
        "base_channels": 4 if dry else 24,
        "blocks": 1 if dry else 2,
        "train_batch": 2 if dry else 64,
        "workers": 0 if dry else None,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


class Log:
    """Timestamped lines to stdout and ``run.log``."""

    def __init__(self, path: Path, start: float) -> None:
        self.path, self.start = path, start

    def __call__(self, message: str) -> None:
        line = f"[{time.monotonic() - self.start:7.1f} s] {message}"
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


def _run_stage(stage: Stage, ctx: Context) -> dict[str, Any]:
    now = time.monotonic()
    budget_s = ctx.args.real_space_s if stage.name == "real_space" else stage.budget_s
    budget = ctx.left() if budget_s is None else min(budget_s, ctx.left())
    ctx.stage_deadline = now + budget
    record: dict[str, Any] = {"budget_s": budget}
    try:
        if stage.name == "training" and budget < MIN_TRAINING_S and not ctx.dry_run:
            raise StageSkipped(f"only {budget:.0f} s left (< {MIN_TRAINING_S:.0f} s)")
        result = stage.run(ctx)
        record["status"] = "failed" if result.get("problem") else "ok"
        record["problem"] = result.get("problem")
        record["result"] = result
    except StageSkipped as skip:
        record.update(status="skipped", reason=str(skip))
    except Exception as err:  # recorded, and the next stage runs
        record.update(
            status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc()
        )
    finally:
        if ctx.cuda:
            torch.cuda.empty_cache()
    record["seconds"] = time.monotonic() - now
    return record


def _write(summary: dict[str, Any], out: Path) -> None:
    for name, text in (
        ("summary.json", json.dumps(summary, indent=1, default=str)),
        ("summary.md", gpu_report.render(summary)),
    ):
        part = out / (name + ".part")
        part.write_text(text)
        part.replace(out / name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("run_gpu.py: no CUDA device (use --dry-run on a CPU)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "run.log", start)
    work = Path(tempfile.mkdtemp(prefix="bcdi_gpu_"))
    ctx = Context(
        out=args.out,
        work=work,
        device=device,
        dry_run=args.dry_run,
        sizes=DRY if args.dry_run else FULL,
        deadline=start + args.budget_s,
        stage_deadline=start + args.budget_s,
        args=args,
        log=log,
    )
    summary: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "dry_run": args.dry_run,
        "device": str(device),
        "budget_s": args.budget_s,
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "environment": environment(device),
        "stages": {},
    }
    log(f"environment: {summary['environment']}")
    try:
        for name in args.stages:
            stage = next(s for s in STAGES if s.name == name)
            log(f"stage {name}: starting ({ctx.left():.0f} s left in the run)")
            record = _run_stage(stage, ctx)
            summary["stages"][name] = record
            note = record.get("reason") or record.get("error") or record.get("problem") or ""
            log(f"stage {name}: {record['status']} in {record['seconds']:.1f} s {note}".strip())
            summary["seconds"] = time.monotonic() - start
            _write(summary, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    statuses = {name: r["status"] for name, r in summary["stages"].items()}
    log(f"done in {time.monotonic() - start:.1f} s: {statuses}; see summary.md")
    return 1 if "failed" in statuses.values() else 0


if __name__ == "__main__":
    sys.exit(main())
