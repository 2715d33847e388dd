"""Pre-generated training patches (HDF5), so training does not compete with simulation."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from pathlib import Path

import h5py
import numpy as np
import torch
from rich.progress import track

from .._errors import ConfigurationError, InputDataError
from ..simulation import CrystalParams, simulate_volume
from ._masks import random_gap_mask

#: Patch widths across the stripe: 32 for gaps up to 12 px, 64 for wider gaps.
PATCH_WIDTHS = (32, 64)
PATCH_DEPTH = 32


def _centres(
    expected: np.ndarray, n: int, size: tuple[int, int, int], rng: np.random.Generator
) -> list[tuple[int, int, int]]:
    """Patch corners scattered around the Bragg peak (on it and on its flanks)."""
    peak = np.array(np.unravel_index(np.argmax(expected), expected.shape))
    spread = np.array(expected.shape) / 6.0
    corners = []
    for _ in range(n):
        centre = peak + rng.normal(0.0, 1.0, 3) * spread
        corner = np.clip(
            np.round(centre - np.array(size) / 2), 0, np.array(expected.shape) - np.array(size)
        ).astype(int)
        corners.append((int(corner[0]), int(corner[1]), int(corner[2])))
    return corners


Patches = dict[int, list[tuple[np.ndarray, np.ndarray]]]
"""(counts, expected) patches of one crystal, by patch width."""


def _volume_patches(
    rng: np.random.Generator,
    volume_shape: tuple[int, int, int],
    patches_per_volume: tuple[int, int],
    effects_fraction: float,
) -> Patches:
    """Simulate one random crystal and cut its patches, drawing everything from ``rng``."""
    shape = tuple(int(n * rng.uniform(1.0, 1.25)) // 2 * 2 for n in volume_shape)
    effects = effects_fraction > 0 and rng.random() < effects_fraction
    params = CrystalParams.random(rng, measurement_effects=bool(effects))
    diffraction = simulate_volume(shape, params)  # type: ignore[arg-type]
    order = rng.permutation(3)
    counts = diffraction.counts.transpose(order)
    expected = diffraction.expected.transpose(order)
    patches: Patches = {w: [] for w in PATCH_WIDTHS}
    for width, n_patches in zip(PATCH_WIDTHS, patches_per_volume, strict=True):
        size = (PATCH_DEPTH, 32, width)
        if counts.shape[2] < width:  # wide patches along the longest axis (small grids)
            longest = int(np.argmax(counts.shape))
            swap = [0, 1, 2]
            swap[2], swap[longest] = longest, 2
            counts, expected = counts.transpose(swap), expected.transpose(swap)
        if any(s > n for s, n in zip(size, counts.shape, strict=True)):
            continue
        for z, y, x in _centres(expected, n_patches, size, rng):
            sl = np.s_[z : z + size[0], y : y + size[1], x : x + size[2]]
            patches[width].append((counts[sl].astype(np.float32), expected[sl]))
    return patches


def _seeded_volume_patches(
    task: tuple[int, int, tuple[int, int, int], tuple[int, int], float],
) -> Patches:
    """Worker-process entry: the patches of crystal ``index``, from its own seed."""
    seed, index, volume_shape, patches_per_volume, effects_fraction = task
    rng = np.random.default_rng([seed, index])
    return _volume_patches(rng, volume_shape, patches_per_volume, effects_fraction)


def _all_patches(
    n_volumes: int,
    seed: int,
    settings: tuple[tuple[int, int, int], tuple[int, int], float],
    workers: int,
) -> Iterator[Patches]:
    """Each crystal's patches, in order: one random stream here, or seeded per crystal."""
    if workers == 0:
        rng = np.random.default_rng(seed)
        for _ in range(n_volumes):
            yield _volume_patches(rng, *settings)
        return
    tasks = [(seed, index, *settings) for index in range(n_volumes)]
    # not fork: the parent may hold threads (torch, CUDA) that a fork copies half-way;
    # a fork server imports this module once and forks single-threaded workers from it
    context: BaseContext
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    else:
        context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        chunk = max(1, min(16, n_volumes // (4 * workers)))
        yield from pool.map(_seeded_volume_patches, tasks, chunksize=chunk)


def generate_training_set(
    path: str | Path,
    *,
    n_volumes: int = 600,
    volume_shape: tuple[int, int, int] = (64, 96, 96),
    patches_per_volume: tuple[int, int] = (8, 3),
    seed: int = 0,
    effects_fraction: float = 0.0,
    workers: int = 0,
) -> Path:
    """Simulate crystals and store patches of (noisy counts, noise-free expected).

    Each volume's axes are randomly permuted before cropping, so fringe spacings differ
    between the rocking, along and across axes (as on detectors); the grid shape itself
    is also jittered. Masks are not stored: training draws fresh gaps every step.

    Parameters
    ----------
    path : str or Path
        Output HDF5 file with datasets ``counts_32``, ``expected_32`` (N, 32, 32, 32)
        and ``counts_64``, ``expected_64`` (M, 32, 32, 64), plus ``volume_index``.
    n_volumes : int
        Number of simulated crystals.
    volume_shape : tuple of int
        Nominal simulation grid (jittered by up to +25 % per axis).
    patches_per_volume : tuple of int
        Patches of width 32 and of width 64 cut from each volume.
    seed : int
        Master seed.
    effects_fraction : float
        Fraction of the crystals drawn with measurement effects (detector-frame shear,
        partial-coherence blur; see :meth:`CrystalParams.random`). 0 keeps the draws of
        earlier versions for a given seed.
    workers : int
        0 (default): simulate in this process, every crystal drawn from one random
        stream (the data sets of earlier versions). N >= 1: simulate in N worker
        processes, crystal ``i`` drawn from the seed ``[seed, i]``, so the data do not
        depend on N (but differ from ``workers=0``).

    Returns
    -------
    Path
    """
    if not 0.0 <= effects_fraction <= 1.0:
        raise ConfigurationError(f"effects_fraction {effects_fraction} outside [0, 1]")
    if workers < 0:
        raise ConfigurationError(f"workers {workers} must be >= 0")
    out: dict[int, tuple[list[np.ndarray], list[np.ndarray], list[int]]] = {
        w: ([], [], []) for w in PATCH_WIDTHS
    }
    settings = (volume_shape, patches_per_volume, effects_fraction)
    crystals = _all_patches(n_volumes, seed, settings, workers)
    for index, patches in enumerate(
        track(crystals, total=n_volumes, description="simulating training crystals")
    ):
        for width, pairs in patches.items():
            for counts, expected in pairs:
                out[width][0].append(counts)
                out[width][1].append(expected)
                out[width][2].append(index)
    path = Path(path)
    with h5py.File(path, "w") as f:
        for width, (c, e, v) in out.items():
            empty = np.zeros((0, PATCH_DEPTH, 32, width), np.float32)  # grids too small
            f.create_dataset(f"counts_{width}", data=np.stack(c) if c else empty)
            f.create_dataset(f"expected_{width}", data=np.stack(e) if e else empty)
            f.create_dataset(f"volume_index_{width}", data=np.asarray(v, dtype=np.int64))
        f.attrs.update(
            n_volumes=n_volumes,
            seed=seed,
            volume_shape=volume_shape,
            effects_fraction=effects_fraction,
            seeding="per crystal" if workers else "one stream",
        )
    return path


class PatchSet:
    """Training patches in memory, with fresh random gaps and flips at every draw.

    Parameters
    ----------
    path : str or Path
        File written by :func:`generate_training_set`.
    width : int
        Patch width across the stripe (32 or 64).
    volumes : slice
        Which simulated volumes to use (split train/validation by crystal, not by patch).
    device : str or torch.device, optional
        Where the patches are held and batches drawn (default CPU); masks are drawn on
        the host and copied.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        volumes: slice,
        device: str | torch.device | None = None,
    ) -> None:
        with h5py.File(path, "r") as f:
            index = f[f"volume_index_{width}"][()]
            start = volumes.start or 0
            stop = volumes.stop if volumes.stop is not None else np.iinfo(np.int64).max
            keep = (index >= start) & (index < stop)
            self.counts = torch.from_numpy(f[f"counts_{width}"][()][keep]).to(device)
            self.expected = torch.from_numpy(f[f"expected_{width}"][()][keep]).to(device)
        self.width = width

    def __len__(self) -> int:
        return len(self.counts)

    def batch(
        self,
        rng: np.random.Generator,
        size: int,
        *,
        augment: bool = True,
        through_peak: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw (counts, expected, masks), each (size, 32, 32, width), on the set's device.

        ``through_peak`` is the probability that a patch's gap runs through its
        brightest voxel (the Bragg peak's core when the patch holds it).
        """
        if len(self) == 0:
            raise InputDataError(f"no training patches of width {self.width} to draw from")
        pick = torch.from_numpy(rng.integers(0, len(self), size)).to(self.counts.device)
        counts, expected = self.counts[pick].clone(), self.expected[pick].clone()
        _, d, h, w = counts.shape
        patch_shape = (int(d), int(h), int(w))
        masks = []
        for i in range(size):
            through = None
            if through_peak > 0 and rng.random() < through_peak:
                brightest = int(torch.argmax(expected[i].amax(dim=0)))
                through = divmod(brightest, patch_shape[2])
            masks.append(random_gap_mask(patch_shape, rng, through=through))
        mask_tensor = torch.from_numpy(np.stack(masks)).to(self.counts.device)
        if augment:
            for dim in (1, 2, 3):
                if rng.random() < 0.5:
                    counts, expected = counts.flip(dim), expected.flip(dim)
            if rng.random() < 0.5:  # rocking and along-stripe axes are interchangeable
                counts, expected = counts.transpose(1, 2), expected.transpose(1, 2)
        return counts.contiguous(), expected.contiguous(), mask_tensor
