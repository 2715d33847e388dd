"""``benchmarks/gpu/run_gpu.py --dry-run``: the prepared GPU run, at tiny sizes on the CPU.

So that the one-shot run on a GPU node cannot rot: every stage runs here (on a GPU node
the same code runs at full size), the output folder holds what the device tool can
bring back (at most 8 files of at most 16 MB), and a stage that fails or cannot run is
recorded with its reason while the next one runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bcdi_online.evaluation import PRACTICES
from bcdi_online.model import load_model

SCRIPT_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu"
FILES = {
    "summary.json",
    "summary.md",
    "run.log",
    "gpu_tests.txt",
    "gap_unet_gpu.pt",
    "training_history.jsonl",
    "real_space.jsonl",
}


@pytest.fixture(scope="module")
def run_gpu():
    sys.path.insert(0, str(SCRIPT_DIR))
    threads = torch.get_num_threads()
    try:
        import run_gpu

        yield run_gpu
    finally:
        torch.set_num_threads(threads)  # the training stage sets it
        sys.path.remove(str(SCRIPT_DIR))


@pytest.fixture(scope="module")
def dry_run(run_gpu, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_dry_run")
    code = run_gpu.main([str(out), "--dry-run"])
    return code, out, json.loads((out / "summary.json").read_text())


def test_every_stage_runs_and_the_output_fits_the_device_tool(dry_run) -> None:
    code, out, summary = dry_run
    stages = summary["stages"]
    assert code == 0, {k: v.get("error") or v.get("problem") for k, v in stages.items()}
    assert {p.name for p in out.iterdir()} == FILES
    assert all(p.stat().st_size < 16 * 1024**2 for p in out.iterdir())
    assert list(stages) == [
        *("correctness", "speed", "engine", "live", "phasing", "real_space", "training")
    ]
    assert {k: v["status"] for k, v in stages.items()} == dict.fromkeys(stages, "ok")
    assert summary["dry_run"] and summary["environment"]["torch"] == torch.__version__
    report = (out / "summary.md").read_text()
    assert "DRY RUN" in report and "## Goals" in report and "| phasing | ok |" in report
    assert "Crystal at scan end" in report


@pytest.mark.skipif(torch.cuda.is_available(), reason="the gpu tests run where CUDA is")
def test_gpu_tests_are_collected_and_skipped_with_their_reason(dry_run) -> None:
    result = dry_run[2]["stages"]["correctness"]["result"]
    assert result["exit_code"] == 0 and result["passed"] == result["failed"] == 0
    assert result["skipped"] == len(result["tests"]) >= 8
    assert result["skip_reasons"] == ["needs a CUDA device: torch.cuda.is_available() is False"]


def test_measurements_are_recorded(dry_run) -> None:
    _, out, summary = dry_run
    stages = summary["stages"]
    speed = stages["speed"]["result"]
    assert speed["variants"]["fp32"]["rows"][0]["windows_per_s"] > 0
    assert speed["variants"]["bf16_cuda_graph"] == {"skipped": "needs CUDA"}
    assert speed["best"]["windows_per_s"] >= speed["fp32_best_windows_per_s"]
    (case,) = stages["engine"]["result"].values()
    for precision in ("fp32", "bf16"):
        entry = case[precision]
        assert entry["windows"] > 0 and entry["seconds"] > 0
        assert 0 <= entry["host_share"] <= 1 and entry["device_compute_s"] > 0
    live = stages["live"]["result"]["fp32"]
    assert 1 <= live["calls"] <= live["frames"]
    assert live["windows"] > 0 and live["end_of_scan_latency_s"] >= 0
    phasing = stages["phasing"]["result"]
    assert phasing["speed"][0]["iterations_per_s"] > 0
    for name in ("scan_end_full", "scan_end_preview"):
        assert phasing[name]["seconds"] > 0 and isinstance(phasing[name]["converged"], bool)
    real_space = stages["real_space"]["result"]
    assert real_space["cases_done"] == real_space["cases_planned"] == 4
    rows = [json.loads(line) for line in (out / "real_space.jsonl").read_text().splitlines()]
    phasings = [row for row in rows if row["kind"] == "reconstruction"]
    assert len(phasings) == 4 * len(PRACTICES) and len(rows) == len(phasings) + 4 * 2
    assert all(0 <= row["phase_error"] <= np.pi for row in phasings)


def test_trained_weights_history_and_validation_come_back(dry_run) -> None:
    _, out, summary = dry_run
    training = summary["stages"]["training"]["result"]
    model = load_model(out / "gap_unet_gpu.pt", device="cpu")  # weights_only=True
    assert model.config == {"base_channels": 4, "blocks": 1} == training["model_config"]
    assert training["config"]["precision"] == "bf16" and training["steps"] == 2
    history = [
        json.loads(line) for line in (out / "training_history.jsonl").read_text().splitlines()
    ]
    assert [record["step"] for record in history] == [1, 2]  # calibration step, then resumed
    methods = {row["method"] for row in training["validation"]["rows"]}
    assert methods == {"model", "linear"}
    assert "| 6 px single | model |" in training["validation_table"]


def test_a_failing_stage_is_recorded_and_the_next_one_runs(run_gpu, monkeypatch, tmp_path) -> None:
    def broken(ctx):
        raise RuntimeError("simulated failure")

    def skipped(ctx):
        raise run_gpu.StageSkipped("nothing to measure here")

    stages = (run_gpu.Stage("speed", broken, 10.0), run_gpu.Stage("phasing", skipped, 10.0))
    monkeypatch.setattr(run_gpu, "STAGES", stages)
    code = run_gpu.main([str(tmp_path), "--dry-run", "--stages", "speed", "phasing"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert code == 1
    assert summary["stages"]["speed"]["status"] == "failed"
    assert "RuntimeError: simulated failure" in summary["stages"]["speed"]["error"]
    assert summary["stages"]["phasing"]["status"] == "skipped"
    assert summary["stages"]["phasing"]["reason"] == "nothing to measure here"


def test_the_compile_child_process_measures_one_variant() -> None:
    # torch.compile is measured in a child process (killed if it hangs); fp32 here, for speed
    command = [sys.executable, str(SCRIPT_DIR / "gpu_speed.py"), "fp32", "1", "cpu", "0.01"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["batch"] == 1 and row["windows_per_s"] > 0 and row["calls"] >= 1
