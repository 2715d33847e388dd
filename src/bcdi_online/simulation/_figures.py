"""Pictures of rocking scans: central slices on a log scale."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

from .._errors import InputDataError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402


def plot_central_slices(
    volumes: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    center: tuple[int, int, int] | None = None,
    title: str | None = None,
) -> Path:
    """Save central slices of one or more volumes, one row per volume, log colour scale.

    Parameters
    ----------
    volumes : mapping of str to (n_frames, ny, nx) ndarray
        Row label -> volume; all of one shape.
    path : str or Path
        PNG file to write.
    center : tuple of int, optional
        Slice position (frame, y, x); default the intensity maximum of the first volume.
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        The written file.
    """
    if not volumes:
        raise InputDataError("plot_central_slices needs at least one volume")
    first = next(iter(volumes.values()))
    shapes = {name: np.shape(v) for name, v in volumes.items()}
    if first.ndim != 3 or len(set(shapes.values())) != 1:
        raise InputDataError(f"volumes must be 3D and of one shape, got shapes {shapes}")
    if center is None:
        z, y, x = (int(i) for i in np.unravel_index(np.argmax(first), first.shape))
        center = (z, y, x)
    vmax = max(float(v.max()) for v in volumes.values())
    norm = LogNorm(vmin=1.0, vmax=max(vmax, 10.0))
    labels = (
        f"rocking step {center[0]}",
        f"detector y = {center[1]}",
        f"detector x = {center[2]}",
    )
    fig, axes = plt.subplots(
        len(volumes), 3, figsize=(11, 3.4 * len(volumes)), squeeze=False, layout="constrained"
    )
    for row, (name, vol) in enumerate(volumes.items()):
        cuts = (vol[center[0]], vol[:, center[1], :], vol[:, :, center[2]])
        for col, (cut, label) in enumerate(zip(cuts, labels, strict=True)):
            ax = axes[row, col]
            image = ax.imshow(
                np.maximum(cut, 1e-3),
                norm=norm,
                cmap="turbo",
                aspect="auto",
                interpolation="nearest",
            )
            ax.set_title(f"{name}: {label}", fontsize=9)
            ax.set_xlabel(("detector x", "detector x", "detector y")[col])
            ax.set_ylabel(("detector y", "rocking step", "rocking step")[col])
        fig.colorbar(image, ax=axes[row, :].tolist(), label="counts", shrink=0.9)
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
