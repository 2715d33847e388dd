"""``bcdi-online evaluate --real-space``: phases the cases, writes its report, resumes."""

from __future__ import annotations

import json

from bcdi_online.cli import main

ARGS = [
    "evaluate",
    "--real-space",
    "--device",
    "cpu",
    "--per-group",
    "1",
    "--widths",
    "6",
    "--crop",
    "16",
    "16",
    "16",
    "--starts",
    "2",
    "--recipe",
    "HIO**6 ER**4",
    "--practices",
    "gap-free",
    "free",
    "model start + TV",
    "--figures",
    "1",
]


def test_real_space_report_figures_and_resume(tmp_path, capsys) -> None:
    out = tmp_path / "rs"
    assert main([*ARGS, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "real_space.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 3  # 4 groups of 6 px (single/cross x centre/off), 3 practices
    assert {row["practice"] for row in rows} == {"gap-free", "free", "model start + TV"}
    fills = (out / "real_space_fills.jsonl").read_text().splitlines()
    assert len(fills) == 4 * 2  # the model's and biharmonic's fill of each case
    report = json.loads((out / "real_space.json").read_text())
    assert report["crop"] == [16, 16, 16] and len(report["rows"]) == 12
    table = (out / "real_space.md").read_text()
    assert "| model start + TV |" in table and "Successful reconstructions" in table
    assert len(list((out / "figures").glob("*.png"))) == 1
    capsys.readouterr()
    # resumed: every row is there already, nothing is phased again
    assert main([*ARGS, "--out", str(out), "--resume"]) == 0
    assert "reconstructions" not in capsys.readouterr().err
    assert len((out / "real_space.jsonl").read_text().splitlines()) == 12


def test_unknown_practice_is_a_one_line_error(tmp_path, capsys) -> None:
    argv = ["evaluate", "--real-space", "--practices", "nonsense", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--practices ['nonsense']: known practices are gap-free" in err
