"""GPU options of the command line: ``--device`` reaches the engine, ``--precision`` parses."""

from __future__ import annotations

import pytest
import torch

from bcdi_online.cli import main
from bcdi_online.cli._main import build_parser


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the error where there is no CUDA")
def test_demo_on_cuda_without_a_gpu_is_a_clean_error(tmp_path, capsys) -> None:
    assert (
        main(["demo", "--device", "cuda", "--out", str(tmp_path / "demo")]) == 2
    )  # a bad argument (ConfigurationError)
    assert "--device cuda: no CUDA device is available" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()  # refused before any server started


def test_demo_device_is_checked_like_the_other_commands(capsys) -> None:
    assert main(["demo", "--device", "gpu0"]) == 2
    assert "device 'gpu0' is not cpu, cuda, cuda:N or mps" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["inpaint", "evaluate"])
def test_precision_option(command: str) -> None:
    parser = build_parser(command)
    scan = ["scan.h5"] if command == "inpaint" else []
    assert parser.parse_args([command, *scan]).precision == "fp32"
    assert parser.parse_args([command, *scan, "--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):
        parser.parse_args([command, *scan, "--precision", "fp8"])


def test_make_training_data_workers_option() -> None:
    args = build_parser("make-training-data").parse_args(["make-training-data", "--workers", "3"])
    assert args.workers == 3
