from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

import bcdi_online
from bcdi_online.cli import COMMANDS, build_parser, main
from bcdi_online.simulation import read_scan


def test_simulate_writes_scan_and_picture(tmp_path, capsys):
    out = tmp_path / "scan.h5"
    code = main(["simulate", "--frames", "16", "--roi", "64", "--seed", "1", "--out", str(out)])
    assert code == 0
    scan = read_scan(out)
    assert scan.data.shape == (16, 64, 64)
    assert scan.detector == "maxipix_2x2"
    assert (tmp_path / "scan.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    for word in ("maxipix_2x2", "ROI", "(16, 64, 64)", "photons", "gap fraction", "time"):
        assert word in printed
    with h5py.File(out) as f:
        assert f["entry"].attrs["NX_class"] == "NXentry"


def test_simulate_options(tmp_path, capsys):
    out = tmp_path / "cube.h5"
    code = main(
        [
            "--log-level",
            "debug",
            "simulate",
            "--detector",
            "Maxipix-2x2",
            "--frames",
            "16",
            "--roi",
            "32x48",
            "--crystal",
            "cube",
            "--photons",
            "1e6",
            "--maxipix-gap",
            "4",
            "--no-png",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    scan = read_scan(out)
    assert scan.data.shape == (16, 32, 48)
    assert scan.params.shape == "cube" and scan.params.photon_budget == 1e6
    assert not (tmp_path / "cube.png").exists()


def test_unknown_detector_is_a_clean_error(tmp_path, capsys):
    code = main(["simulate", "--detector", "nope", "--out", str(tmp_path / "x.h5")])
    assert code == 2  # the package's own error: bad input
    err = capsys.readouterr().err
    assert "unknown detector 'nope'" in err and "maxipix_2x2" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["simulate", "--frames", "many"],
        ["simulate", "--roi", "1x2x3"],
        ["--log-level", "LOUD", "simulate"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage: bcdi-online" in capsys.readouterr().err


def test_bad_values_exit_2_and_io_errors_exit_1(tmp_path, capsys):
    assert main(["simulate", "--frames", "4", "--out", str(tmp_path / "x.h5")]) == 2
    assert "n_frames 4 must be >= 8" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    unwritable = tmp_path / "file" / "x.h5"  # a file where a directory should be
    assert main(["simulate", "--frames", "16", "--roi", "32", "--out", str(unwritable)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    nested = tmp_path / "new" / "dir" / "x.h5"  # missing directories are created
    assert main(["simulate", "--frames", "16", "--roi", "32", "--out", str(nested)]) == 0
    assert nested.exists() and nested.with_suffix(".png").exists()


def test_debug_log_level_shows_traceback_and_cleans_up(tmp_path, capsys):
    import logging

    code = main(
        ["--log-level", "DEBUG", "simulate", "--frames", "4", "--out", str(tmp_path / "x.h5")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "DEBUG bcdi_online.cli" in err
    assert not logging.getLogger("bcdi_online").handlers  # configured only while running


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    for command in COMMANDS:
        assert command.name in printed


def test_full_parser_has_train_options():
    parser = build_parser()  # every subcommand's options (imports torch)
    args = parser.parse_args(["train", "--steps", "5", "--lr", "1e-3", "--no-resume"])
    assert (args.steps, args.lr, args.no_resume) == (5, 1e-3, True)
    args = parser.parse_args(["make-training-data", "--volumes", "3", "--out", "p.h5"])
    assert args.volumes == 3 and tuple(args.volume_shape) == (64, 96, 96)


def test_make_training_data_and_train_errors(tmp_path, capsys):
    out = tmp_path / "patches.h5"
    argv = [
        "make-training-data",
        "--volumes",
        "2",
        "--volume-shape",
        "32",
        "32",
        "64",
        "--patches",
        "1",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "patches of width 32" in capsys.readouterr().out
    with h5py.File(out) as f:
        assert len(f["counts_32"]) == 2 and len(f["counts_64"]) == 2
    # two crystals cannot be split 40 for validation: a clean error
    code = main(
        ["train", "--data", str(out), "--out-dir", str(tmp_path / "run"), "--threads", "1"]
    )
    assert code == 2  # a ConfigurationError: input the package refuses
    assert "validation_volumes 40" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    # the same package in the child, installed or from a source tree
    env = {**os.environ, "PYTHONPATH": str(Path(bcdi_online.__file__).parents[1])}
    result = subprocess.run(
        [sys.executable, "-m", "bcdi_online.cli", "simulate", "--detector", "nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("bcdi-online simulate: error: unknown detector")
