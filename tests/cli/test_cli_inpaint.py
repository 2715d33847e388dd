"""``bcdi-online inpaint``, ``finetune`` and ``evaluate`` on small scans with a tiny model."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import bcdi_online
from bcdi_online import evaluation
from bcdi_online.cli import build_parser, main
from bcdi_online.evaluation import amplitude_error, summarise
from bcdi_online.inpainting import DEFAULT_GUARD
from bcdi_online.model import GapUNet, load_model, model_sha256, save_model
from bcdi_online.simulation import read_scan, simulate_scan, write_scan


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(GapUNet(base_channels=4), tmp_path / "tiny.pt")


def _simulate(path: Path, frames: int, roi: int) -> Path:
    argv = ["simulate", "--frames", str(frames), "--roi", str(roi), "--seed", "1"]
    assert main([*argv, "--no-png", "--out", str(path)]) == 0
    return path


@pytest.fixture
def scan_file(tmp_path: Path) -> Path:
    return _simulate(tmp_path / "scan.h5", 16, 64)


def test_inpaint_writes_a_copy_with_the_result(
    tmp_path: Path, scan_file: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    before = _sha256(scan_file)
    out = tmp_path / "out" / "filled.h5"  # missing directories are created
    argv = ["inpaint", str(scan_file), "--model", str(tiny_model), "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--batch-size", "4", "--png"]) == 0
    assert _sha256(scan_file) == before  # the input is never modified
    scan = read_scan(scan_file)
    with h5py.File(out, "r") as f:
        group = f["entry/data_inpainted"]
        filled = group["data"][()]
        attrs = dict(group.attrs)
        copied = f["entry/instrument/detector/data"][()]
        assert "entry/simulation/truth" in f  # the input's structure is kept
    assert np.array_equal(copied, scan.data)
    assert filled.dtype == np.float32 and filled.shape == scan.data.shape
    gap = np.broadcast_to(scan.mask, filled.shape)
    assert np.array_equal(filled[~gap], scan.data[~gap])  # measured voxels bit-exact
    assert np.isfinite(filled).all() and (filled[gap] >= 0).all()
    assert attrs["NX_class"] == "NXdata" and attrs["signal"] == "data"
    assert attrs["model_path"] == str(tiny_model.resolve())
    assert attrs["model_sha256"] == model_sha256(tiny_model)
    assert attrs["package_version"] == bcdi_online.__version__
    assert attrs["seconds"] > 0 and attrs["windows"] > 0 and attrs["batch_size"] == 4
    assert attrs["guard"] == repr(DEFAULT_GUARD)
    assert -1 <= attrs["strict_pcc_model"] <= 1 and -1 <= attrs["strict_pcc_linear"] <= 1
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.parent.glob("*.part"))
    printed = capsys.readouterr().out
    for word in ("windows", "strict PCC", "linear interpolation", str(out), "time"):
        assert word in printed


def test_inpaint_refills_from_the_crystal_where_the_peak_was_measured(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aside = simulate_scan(  # the Bragg peak well away from the gaps
        "maxipix_2x2", n_frames=32, roi_size=64, seed=3, peak_jitter=0.5
    )
    source = write_scan(tmp_path / "aside.h5", aside)
    out = tmp_path / "refilled.h5"
    argv = ["inpaint", str(source), "--model", str(tiny_model), "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--refill"]) == 0
    with h5py.File(out, "r") as f:
        filled = f["entry/data_inpainted/data"][()]
        refilled = f["entry/data_refilled/data"][()]
        attrs = dict(f["entry/data_refilled"].attrs)
    assert attrs["refill_converged"] and not attrs["refill_peak_in_gap"]
    assert attrs["refill_reason"] == "" and attrs["source_group"] == "data_inpainted"
    z0, z1, y0, y1, x0, x1 = attrs["refill_region"]
    assert (z1 - z0, y1 - y0, x1 - x0) == (32, 64, 64)  # the CPU box, clipped to the scan
    gap = np.broadcast_to(aside.mask, filled.shape)
    np.testing.assert_array_equal(refilled[~gap], filled[~gap])  # measured voxels kept
    # the tiny model's fill is rough; the crystal's far field is closer to the truth
    before = amplitude_error(filled, aside.expected, aside.mask)
    after = amplitude_error(refilled, aside.expected, aside.mask)
    assert after < 0.7 * before, (before, after)  # measured: 0.366 -> 0.184
    printed = capsys.readouterr().out
    assert "refilled from the crystal" in printed
    assert f"error on the gap {before:.3f} inpainted, {after:.3f} refilled" in printed


def test_inpaint_says_why_it_did_not_refill(
    tmp_path: Path, scan_file: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = tmp_path / "filled.h5"  # the peak at the gap crossing: no refill
    argv = ["inpaint", str(scan_file), "--model", str(tiny_model), "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--refill"]) == 0
    with h5py.File(out, "r") as f:
        assert "entry/data_refilled" not in f
        reason = f["entry/data_inpainted"].attrs["refill_reason"]
    assert reason and f"refill       none: {reason}" in capsys.readouterr().out


def test_inpaint_keeps_its_result_when_the_crystal_cannot_be_phased(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = simulate_scan("maxipix_2x2", n_frames=16, roi_size=64, seed=1)
    dark = dataclasses.replace(scan, data=np.zeros_like(scan.data))  # nothing to phase
    source = write_scan(tmp_path / "dark.h5", dark)
    out = tmp_path / "filled.h5"
    argv = ["inpaint", str(source), "--model", str(tiny_model), "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--refill"]) == 0
    with h5py.File(out, "r") as f:
        assert "entry/data_refilled" not in f and "entry/data_inpainted/data" in f
        reason = f["entry/data_inpainted"].attrs["refill_reason"]
    assert reason.startswith("the reconstruction failed: ") and "all zero" in reason
    assert "refill       none: the reconstruction failed" in capsys.readouterr().out


def test_inpaint_default_output_and_rerun_on_its_own_output(
    scan_file: Path, tiny_model: Path
) -> None:
    assert main(["inpaint", str(scan_file), "--model", str(tiny_model), "--device", "cpu"]) == 0
    out = scan_file.with_name("scan_inpainted.h5")
    assert out.is_file() and not out.with_suffix(".png").exists()
    again = scan_file.with_name("again.h5")  # an inpainted file as input: result replaced
    assert main(["inpaint", str(out), "--model", str(tiny_model), "--out", str(again)]) == 0
    with h5py.File(out, "r") as f1, h5py.File(again, "r") as f2:
        assert list(f2["entry"]) == list(f1["entry"])
        assert np.array_equal(f1["entry/data_inpainted/data"][()], f2["entry/data_inpainted/data"])


def test_inpaint_without_the_guard(tmp_path: Path, scan_file: Path, tiny_model: Path) -> None:
    out = tmp_path / "filled.h5"
    argv = ["inpaint", str(scan_file), "--model", str(tiny_model), "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--no-guard"]) == 0
    with h5py.File(out, "r") as f:
        assert f["entry/data_inpainted"].attrs["guard"] == "None"


def test_inpaint_without_truth_prints_no_score(
    tmp_path: Path, scan_file: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = tmp_path / "measured.h5"
    with h5py.File(scan_file, "r") as src, h5py.File(measured, "w") as dst:
        src.copy("entry/instrument", dst.require_group("entry"))
    out = tmp_path / "measured_filled.h5"
    assert main(["inpaint", str(measured), "--model", str(tiny_model), "--out", str(out)]) == 0
    assert "strict PCC" not in capsys.readouterr().out
    with h5py.File(out, "r") as f:
        assert "strict_pcc_model" not in f["entry/data_inpainted"].attrs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inpaint", "{tmp}/missing.h5"], "cannot open scan file"),
        (["inpaint", "{scan}", "--model", "{tmp}/missing.pt"], "does not exist"),
        (["inpaint", "{scan}", "--out", "{scan}"], "never modified"),
        (["inpaint", "{model}"], "cannot open scan file"),  # not HDF5
        (["finetune", "{tmp}/missing.h5"], "cannot open scan file"),
        (["finetune", "{scan}", "--out", "{model}"], "starting checkpoint"),
        (["finetune", "{scan}", "--steps", "1"], "smaller than a patch"),
    ],
)
def test_bad_inputs_are_clean_errors(
    argv: list[str],
    message: str,
    tmp_path: Path,
    scan_file: Path,
    tiny_model: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # where default outputs would go
    capsys.readouterr()
    before = _sha256(scan_file)
    values = {"tmp": tmp_path, "scan": scan_file, "model": tiny_model}
    argv = [a.format(**values) for a in argv]
    if "--model" not in argv:  # never fall back on the shipped weights here
        argv += ["--model", str(tiny_model)]
    assert main(argv) == 2  # bad input: the package's own error
    err = capsys.readouterr().err
    assert err.startswith(f"bcdi-online {argv[0]}: error:") and message in err
    assert "Traceback" not in err
    assert _sha256(scan_file) == before
    assert not list(tmp_path.glob("*.part")) and not (tmp_path / "finetuned.pt").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["inpaint"],
        ["inpaint", "s.h5", "--device", "gpu"],
        ["inpaint", "s.h5", "--batch-size", "0"],
        ["finetune", "s.h5", "--steps", "-1"],
        ["evaluate", "--per-case", "0"],
        ["evaluate", "--widths"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: bcdi-online" in capsys.readouterr().err


def test_parser_defaults_and_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["inpaint", "s.h5"])
    assert (args.scan, args.out, args.model, args.device, args.batch_size, args.png) == (
        Path("s.h5"),
        None,
        None,
        None,
        None,
        False,
    )
    args = parser.parse_args(["finetune", "s.h5", "--model", "m.pt", "--device", "CUDA:1"])
    assert (args.steps, args.out, args.model, args.device) == (
        200,
        Path("finetuned.pt"),
        Path("m.pt"),
        "cuda:1",
    )
    assert not parser.parse_args(["inpaint", "s.h5"]).no_guard
    assert parser.parse_args(["inpaint", "s.h5", "--no-guard"]).no_guard
    args = parser.parse_args(["evaluate"])
    assert (args.per_case, args.widths, args.out) == (1, [6, 12, 38], Path("evaluation"))
    assert not args.no_guard and parser.parse_args(["evaluate", "--no-guard"]).no_guard
    args = parser.parse_args(["evaluate", "--per-case", "3", "--widths", "6", "12", "--out", "d"])
    assert (args.per_case, args.widths, args.out) == (3, [6, 12], Path("d"))


@pytest.mark.slow
def test_finetune_writes_a_loadable_checkpoint(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = _simulate(tmp_path / "scan96.h5", 32, 96)  # room for gap-free 32^3 patches
    capsys.readouterr()
    out = tmp_path / "ft" / "adapted.pt"
    argv = ["finetune", str(scan), "--model", str(tiny_model), "--steps", "2", "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 0
    model = load_model(out, device="cpu")
    start = load_model(tiny_model, device="cpu")
    assert model.config == start.config
    changed = [
        not torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), start.state_dict().values(), strict=True)
    ]
    assert any(changed)
    extra = torch.load(out, weights_only=True)
    assert extra["finetuned_from_sha256"] == model_sha256(tiny_model)
    assert extra["finetune_steps"] == 2
    printed = capsys.readouterr().out
    for word in ("before", "after", "linear", "not the real gap", str(out)):
        assert word in printed


def _rows() -> list[dict[str, float | str]]:
    rows: list[dict[str, float | str]] = []
    for width, cross, case in ((6, "False", "a"), (6, "True", "b"), (38, "False", "c")):
        for method, strict in (("model", 0.9), ("biharmonic", 0.8 if case != "c" else 0.95)):
            rows.append(
                {
                    "case": case,
                    "width": width,
                    "cross": cross,
                    "photons": 1e7,
                    "method": method,
                    "seconds": 0.5,
                    "strict_pcc": strict,
                    "oracle_pcc": 1.0,
                    "pcc_ratio": strict,
                    "paper_pcc": 0.99,
                    "paper_pcc_oracle": 1.0,
                    "paper_pcc_noise_free": strict + 0.05,
                    "photon_error": 0.1,
                }
            )
    rows.append({**rows[0], "case": "d", "strict_pcc": 0.7, "pcc_ratio": 0.7})
    return rows


def test_summarise_table() -> None:
    table = summarise(_rows())
    lines = table.splitlines()
    assert lines[0].startswith("| gap | method | strict PCC | oracle | strict / oracle |")
    assert "paper PCC" in lines[0] and lines[1].startswith("|---|")
    body = [line for line in lines[2:] if line.startswith("|")]
    assert [line.split(" | ")[:2] for line in body] == [
        ["| 6 px single", "biharmonic"],
        ["| 6 px single", "model"],
        ["| 6 px cross", "biharmonic"],
        ["| 6 px cross", "model"],
        ["| 38 px single", "biharmonic"],
        ["| 38 px single", "model"],
    ]
    assert (
        "| 6 px single | model | 0.8000 | 1.0000 | 0.8000 | 0.9900 | 1.0000 | 0.9500 | 0.100 "
        "| 0.50 |" in body
    )
    # case d has no biharmonic row: compared on 3 volumes, the model wins a and b
    assert lines[-2] == "Model strict PCC > biharmonic on 2 of 3 volumes."
    assert lines[-1] == "Model paper PCC vs noise-free > biharmonic on 2 of 3 volumes."


def test_summarise_shows_amplitude_columns_when_every_row_has_them() -> None:
    amplitude = {
        "amplitude_error": 0.3,
        "amplitude_floor": 0.05,
        "peak_ratio": 0.5,
        "photon_ratio": 1.2,
    }
    rows = [{**r, **amplitude} for r in _rows()]
    header = summarise(rows).splitlines()[0]
    assert header.endswith(
        "| photon error | amplitude error | Poisson floor | peak ratio | photon ratio "
        "| s / volume |"
    )
    assert "| 0.300 | 0.050 | 0.50 | 1.20 | 0.50 |" in summarise(rows)
    assert "amplitude error" not in summarise([*rows, _rows()[0]])


def test_summarise_without_the_compared_methods_and_bad_rows() -> None:
    rows = [r for r in _rows() if r["method"] == "model"]
    assert "volumes" not in summarise(rows)
    assert "Linear strict PCC" in summarise(
        [{**r, "method": "linear"} for r in _rows()], candidate="linear", reference="linear"
    )
    with pytest.raises(ValueError, match="no scores"):
        summarise([])
    with pytest.raises(ValueError, match="lacks"):
        summarise([{"case": "a"}])


@pytest.mark.slow
def test_evaluate_on_a_small_validation_set(
    tmp_path: Path,
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    small = functools.partial(evaluation.validation_set, shape=(32, 64, 64))
    monkeypatch.setattr(evaluation, "validation_set", small)
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(tiny_model), "--widths", "6", "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 0
    report = json.loads((out / "validation.json").read_text())
    assert report["model_sha256"] == model_sha256(tiny_model) and report["widths"] == [6]
    assert report["guard"] == repr(DEFAULT_GUARD)
    assert len(report["rows"]) == 4 * 4  # single/cross x low/high, 4 methods
    assert {r["method"] for r in report["rows"]} == {"model", "linear", "biharmonic", "idw"}
    table = (out / "validation.md").read_text()
    assert table.strip() == summarise(report["rows"])
    assert table.strip() in capsys.readouterr().out
