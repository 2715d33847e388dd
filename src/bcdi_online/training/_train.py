"""Resumable, seeded training of :class:`GapUNet` on pre-generated patches."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .._errors import ConfigurationError, InputDataError
from ..model import GapUNet, load_model, normalise, save_model
from ._dataset import PatchSet
from ._losses import amplitude_l1, gap_loss

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Training settings.

    Attributes
    ----------
    data : str
        HDF5 file from :func:`generate_training_set`.
    out_dir : str
        Where checkpoints (``last.pt``, ``best.pt``) and ``history.jsonl`` go.
    steps : int
        Total optimiser steps.
    batch_size : int
        Patches per step.
    wide_fraction : float
        Fraction of steps drawn from the 64-px-wide patches (wide gaps).
    lr : float
        Peak learning rate (AdamW, cosine decay to 5 %).
    base_channels : int
        Model width.
    blocks : int
        Extra convolutions at each coarse level of the model (deeper; 0 = the shipped
        architecture).
    validation_volumes : int
        The last ``n`` simulated crystals are kept out of training for validation.
    steps_per_epoch : int
        Validation and checkpoint period.
    validation_batches : int
        Batches of 16 patches per width drawn for each validation.
    seed : int
        Seed of initialisation, batch draws and gap masks.
    threads : int
        torch CPU threads.
    init_from : str
        Checkpoint whose weights start the training (continue or fine-tune a shipped
        model); empty for a random initialisation.
    device : str
        torch device of the training: cpu, cuda or cuda:N (the patches are held there).
    precision : str
        fp32, or bf16: the forward pass under bfloat16 autocast (the loss in float32).
    amplitude_weight : float
        Weight of the amplitude term of the loss (:func:`amplitude_l1`); 0 = log space only.
    through_peak : float
        Fraction of training gaps drawn through the patch's brightest voxel.
    """

    data: str = "runs/train_patches.h5"
    out_dir: str = "runs/train"
    steps: int = 6000
    batch_size: int = 12
    wide_fraction: float = 0.25
    lr: float = 2e-3
    base_channels: int = 16
    blocks: int = 0
    validation_volumes: int = 40
    steps_per_epoch: int = 250
    validation_batches: int = 4
    seed: int = 0
    threads: int = 2
    init_from: str = ""
    device: str = "cpu"
    precision: str = "fp32"
    amplitude_weight: float = 0.0
    through_peak: float = 0.0


#: Training precisions: autocast dtype of the forward pass (None = float32).
TRAIN_PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


def _prepare(counts: torch.Tensor, expected: torch.Tensor, masks: torch.Tensor):
    x, scale = normalise(counts, masks)
    target = torch.log1p(expected.float()) / scale.view(-1, 1, 1, 1)
    return x, target.unsqueeze(1), masks.unsqueeze(1), scale


def validate(
    model: GapUNet, sets: dict[int, PatchSet], seed: int = 12345, *, batches: int = 4
) -> dict[str, float]:
    """Mean gap L1 (normalised log units) of the model and of the linear pre-fill.

    Also the model's :func:`amplitude_l1` (``val_amp_<width>``). The validation masks
    and patches are redrawn from a fixed seed, so the numbers are comparable between
    epochs. Runs in float32 on the model's device.
    """
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    model.eval()
    out: dict[str, float] = {}
    with torch.inference_mode():
        for width, patch_set in sets.items():
            err_model = err_linear = err_amplitude = 0.0
            for _ in range(batches):
                batch = patch_set.batch(rng, 16, augment=False)
                x, target, gap, scale = _prepare(*(t.to(device) for t in batch))
                pred = model(x)
                n = gap.sum().clamp(min=1)
                err_model += float(((pred - target).abs() * gap).sum() / n)
                err_linear += float(((x[:, :1] - target).abs() * gap).sum() / n)
                err_amplitude += float(amplitude_l1(pred, target, gap, scale))
            out[f"val_l1_{width}"] = err_model / batches
            out[f"val_l1_linear_{width}"] = err_linear / batches
            out[f"val_amp_{width}"] = err_amplitude / batches
    model.train()
    return out


def train(config: TrainConfig, *, resume: bool = True) -> Path:
    """Train (or resume training) and return the best checkpoint's path.

    Parameters
    ----------
    config : TrainConfig
        Settings; saved in every checkpoint.
    resume : bool
        Continue from ``out_dir/last.pt`` when it exists (model, optimiser, step, RNG).
    """
    if config.precision not in TRAIN_PRECISIONS:
        raise ConfigurationError(
            f"precision {config.precision!r} is not one of {sorted(TRAIN_PRECISIONS)}"
        )
    autocast = TRAIN_PRECISIONS[config.precision]
    device = torch.device(config.device)
    torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    with __import__("h5py").File(config.data, "r") as f:
        n_volumes = int(f.attrs["n_volumes"])
    split = n_volumes - config.validation_volumes
    if not 0 < split < n_volumes:
        raise ConfigurationError(
            f"validation_volumes {config.validation_volumes} must leave volumes for both "
            f"training and validation out of the {n_volumes} in {config.data!r}"
        )
    train_sets = {w: PatchSet(config.data, w, slice(0, split), device) for w in (32, 64)}
    val_sets = {w: PatchSet(config.data, w, slice(split, None), device) for w in (32, 64)}
    for name, sets in (("training", train_sets), ("validation", val_sets)):
        for width, patch_set in sets.items():
            if len(patch_set) == 0:
                raise InputDataError(
                    f"{config.data!r} has no width-{width} patches in its {name} volumes "
                    "(simulation grids too small?)"
                )
    model = GapUNet(base_channels=config.base_channels, blocks=config.blocks)
    if config.init_from:
        model.load_state_dict(load_model(config.init_from, "cpu").state_dict())
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.05, final_div_factor=20
    )
    step, best = 0, float("inf")
    rng = np.random.default_rng(config.seed)
    last = out / "last.pt"
    if resume and last.exists():
        state = torch.load(last, map_location="cpu", weights_only=True)
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        if state["scheduler"].get("total_steps") == config.steps:
            sched.load_state_dict(state["scheduler"])
        else:  # more (or fewer) steps than the checkpoint's run: stretch the schedule
            sched.last_epoch = state["step"]
            logger.warning(
                "learning-rate schedule rebuilt for %d steps (checkpoint had %s)",
                config.steps,
                state["scheduler"].get("total_steps"),
            )
        step, best = state["step"], state["best"]
        rng.bit_generator.state = json.loads(state["rng"])
        logger.info("resumed from %s at step %d", last, step)
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with (out / "history.jsonl").open("a") as history, Progress(*columns) as progress:
        task = progress.add_task("training", total=config.steps, completed=step, info="")
        model.train()
        while step < config.steps:
            width = 64 if rng.random() < config.wide_fraction else 32
            size = max(1, config.batch_size // 2) if width == 64 else config.batch_size
            batch = train_sets[width].batch(rng, size, through_peak=config.through_peak)
            x, target, gap, scale = _prepare(*batch)
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                pred = model(x)
            loss, parts = gap_loss(
                pred.float(), target, gap, amplitude_weight=config.amplitude_weight, scale=scale
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            progress.update(task, completed=step, info=f"loss {loss.item():.4f}")
            if step % config.steps_per_epoch == 0 or step == config.steps:
                metrics = validate(model, val_sets, batches=config.validation_batches)
                score = (
                    metrics["val_l1_32"]
                    + metrics["val_l1_64"]
                    + config.amplitude_weight * (metrics["val_amp_32"] + metrics["val_amp_64"])
                )
                record = {
                    "step": step,
                    "loss": loss.item(),
                    **parts,
                    **metrics,
                    "seconds": time.perf_counter() - started,
                }
                history.write(json.dumps(record) + "\n")
                history.flush()
                progress.console.print(record)
                if score < best:
                    best = score
                    save_model(model, out / "best.pt", step=step, metrics=metrics)
                torch.save(
                    {
                        "state_dict": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "step": step,
                        "best": best,
                        "rng": json.dumps(rng.bit_generator.state),
                        "config": asdict(config),
                    },
                    last,
                )
    return out / "best.pt"
