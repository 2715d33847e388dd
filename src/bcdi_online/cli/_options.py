"""Options shared by the subcommands.

Model options (``inpaint``, ``finetune``, ``evaluate``) and service options (``serve``,
``replay``): the Tiled API key comes from a file or the environment, never from the
command line.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from .._settings import ServiceSettings
    from ..callbacks import LiveInpainting
    from ..inpainting import OvershootGuard

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def device_name(text: str) -> str:
    """Parse a torch device name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    name = text.strip().lower()
    if not _DEVICE.match(name):
        raise argparse.ArgumentTypeError(f"device {text!r} is not cpu, cuda, cuda:N or mps")
    return name


def positive_int(text: str) -> int:
    """Parse an integer >= 1."""
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def non_negative_int(text: str) -> int:
    """Parse an integer >= 0."""
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from err
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not >= 0")
    return value


def add_model_options(parser: argparse.ArgumentParser, *, batch_size: bool = True) -> None:
    """Add ``--model``, ``--device`` and (for inference) ``--batch-size`` and ``--precision``."""
    parser.add_argument(
        "--model", type=Path, default=None, help="checkpoint (default: the shipped weights)"
    )
    parser.add_argument(
        "--device",
        type=device_name,
        default=None,
        help="torch device: cpu, cuda, cuda:N (default: cuda if present, else cpu)",
    )
    if batch_size:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=None,
            help="windows per model call (default: 16 on CPU; on CUDA, what half the free "
            "GPU memory holds; halved on out-of-memory)",
        )
        parser.add_argument(
            "--precision",
            choices=("fp32", "bf16", "fp16"),
            default="fp32",
            help="precision of the model's forward pass: fp32, or bf16 / fp16 autocast "
            "(for GPUs, see docs/how-to/gpu.md) (default: fp32)",
        )
        parser.add_argument(
            "--no-guard",
            action="store_true",
            help="leave the model's fill unbounded (default: bound it by the measured edges "
            "of the gap where the Bragg peak was measured, see "
            "docs/explanations/overshoot-guard.md)",
        )


def guard(args: argparse.Namespace) -> OvershootGuard | None:
    """Return the overshoot guard ``--no-guard`` leaves (the default one, or None)."""
    from ..inpainting import DEFAULT_GUARD

    return None if args.no_guard else DEFAULT_GUARD


def model_path(path: Path | None) -> Path:
    """Return the checkpoint to use: ``path`` or the shipped weights."""
    from ..model import DEFAULT_WEIGHTS

    return Path(path) if path is not None else DEFAULT_WEIGHTS


def check_device(device: str | None) -> None:
    """Raise ``ValueError`` if ``device`` names a CUDA device and none is available."""
    import torch

    if device is None or not device.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise ConfigurationError(f"--device {device}: no CUDA device is available to torch")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigurationError(
            f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) available"
        )


def read_api_key(path: str | Path | None) -> str | None:
    """Return the Tiled API key: first line of the file ``path``, else ``$TILED_API_KEY``.

    Never from the command line (``/proc/PID/cmdline`` is world-readable), never the
    server's own ``$TILED_SINGLE_USER_API_KEY``.
    """
    from .._errors import ServiceError
    from .._redact import register_secret

    key = None
    if path:
        try:
            key = Path(path).read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as err:
            raise ServiceError(f"cannot read a Tiled API key from {str(path)!r}: {err}") from None
    else:
        key = os.environ.get("TILED_API_KEY") or None
    register_secret(key)
    return key


def service_settings(args: argparse.Namespace) -> ServiceSettings:
    """Return the service's settings: file, environment, then what the command line set.

    Raises
    ------
    ConfigurationError
        For a bad settings file or value.
    """
    from .._settings import ServiceSettings

    given = {name: getattr(args, option, None) for option, name in _SETTING_OPTIONS.items()}
    return ServiceSettings.load(args.config, **given)


#: Command-line option (argparse dest) -> :class:`ServiceSettings` field.
_SETTING_OPTIONS = {
    "tiled": "tiled_uri",
    "api_key_file": "api_key_file",
    "device": "device",
    "model": "model",
    "fallback_dir": "fallback_dir",
    "fallback_after": "fallback_after",
    "crystal": "crystal",
    "frames_from": "frames_from",
    "zmq": "zmq_out",
    "allow_pickle": "allow_pickle",
    "grace": "grace",
    "run_timeout": "run_timeout",
    "name": "name",
    "queue": "queue",
    "queue_stream": "queue_stream",
    "takeover_after": "takeover_after",
    "max_runs": "max_runs",
}


def live_from_args(settings: ServiceSettings, **options: object) -> LiveInpainting:
    """Build the :class:`~bcdi_online.callbacks.LiveInpainting` the settings describe.

    Raises
    ------
    ServiceError
        If Tiled cannot be reached or refuses the key.
    """
    from ..tiled_output import bound_client_retries

    bound_client_retries(settings.fallback_after)  # before tiled is imported
    from ..callbacks import LiveInpainting

    check_device(settings.device)
    return LiveInpainting.from_uri(
        settings.tiled_uri,
        api_key=read_api_key(settings.api_key_file),
        model=settings.model,
        device=settings.device,
        fallback_dir=settings.fallback_dir,
        fallback_after=settings.fallback_after,
        crystal=settings.crystal,
        frames_from=settings.frames_from,
        **options,  # type: ignore[arg-type]
    )


def non_negative_float(text: str) -> float:
    """Parse a number >= 0."""
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from err
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} is not >= 0")
    return value


def add_crystal_option(parser: argparse.ArgumentParser, default: str) -> None:
    """Add ``--crystal`` / ``--no-crystal`` (the scan-end reconstruction)."""
    parser.add_argument(
        "--crystal",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="reconstruct the crystal of every complete run and publish it beside the "
        f"corrected scan in Tiled (the 64^3 box around the peak) (default: {default})",
    )


def add_service_options(parser: argparse.ArgumentParser, tiled_help: str) -> None:
    """Add the service options: ``--config``, ``--tiled``, ``--api-key-file``, and more.

    The more: ``--device``, ``--model``, ``--fallback-dir``, ``--fallback-after``,
    ``--crystal`` (:func:`add_crystal_option`) and ``--frames-from``. Each option given
    overrides its setting; the others come from :class:`~bcdi_online._settings.ServiceSettings`
    (``BCDI_ONLINE_*`` variables, the settings file, the defaults): :func:`service_settings`.
    """
    parser.add_argument(
        "--config",
        default=None,
        help="TOML settings file, overridden by $BCDI_ONLINE_* and by these options "
        "(default: $BCDI_ONLINE_CONFIG, else none)",
    )
    parser.add_argument(
        "--tiled",
        default=None,
        help=f"{tiled_help} (setting tiled_uri: $BCDI_ONLINE_TILED_URI or $TILED_URI; "
        "default http://localhost:8000)",
    )
    parser.add_argument(
        "--api-key-file",
        default=None,
        help="file holding the Tiled API key (setting api_key_file: "
        "$BCDI_ONLINE_API_KEY_FILE or $TILED_API_KEY_FILE; else the key in $TILED_API_KEY; "
        "never on the command line)",
    )
    parser.add_argument(
        "--device",
        type=device_name,
        default=None,
        help="torch device ($BCDI_ONLINE_DEVICE; default: cuda if present)",
    )
    parser.add_argument(
        "--model", default=None, help="checkpoint ($BCDI_ONLINE_MODEL; default: shipped weights)"
    )
    parser.add_argument(
        "--fallback-dir",
        default=None,
        help="folder of the result files (the corrected frames, which the Tiled server "
        "must be able to read; the whole result while Tiled is down) "
        "($BCDI_ONLINE_FALLBACK_DIR; default: ~/bcdi_online_fallback)",
    )
    parser.add_argument(
        "--fallback-after",
        type=non_negative_float,
        default=None,
        help="seconds a finished run waits for Tiled before its result file alone stands "
        "for it ($BCDI_ONLINE_FALLBACK_AFTER; default: 60)",
    )
    add_crystal_option(parser, "on when the model runs on CUDA")
    parser.add_argument(
        "--frames-from",
        choices=("files", "tiled"),
        default=None,
        help="where detector frames announced by stream datums are read: the detector's "
        "files, or the raw run in Tiled, for a host without the detector's file system "
        "($BCDI_ONLINE_FRAMES_FROM; default: files)",
    )
