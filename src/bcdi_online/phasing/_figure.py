"""A picture of a reconstructed crystal: modulus and phase through its centre."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._scan_end import ScanReconstruction


def crystal_figure(reconstruction: ScanReconstruction, *, title: str = "") -> Any:
    """Central slices (three planes) of the crystal's modulus and phase.

    Parameters
    ----------
    reconstruction : ScanReconstruction
        A converged reconstruction (a non-converged one is drawn with its reason in the
        title, never as if it were the crystal).
    title : str
        First line of the title (e.g. the scan).

    Returns
    -------
    matplotlib.figure.Figure
        Top row: modulus; bottom row: phase (radians) inside the support; columns: the
        planes through the support's centre of mass, normal to the rocking axis and to
        the detector's y and x axes.
    """
    from matplotlib.figure import Figure

    modulus, phase, support = reconstruction.modulus, reconstruction.phase, reconstruction.support
    centre = (
        [int(round(c)) for c in np.argwhere(support).mean(axis=0)]
        if support.any()
        else [n // 2 for n in support.shape]
    )
    figure = Figure(figsize=(9.0, 5.6), layout="constrained")
    axes = figure.subplots(2, 3)
    planes = (("rocking", 0), ("detector y", 1), ("detector x", 2))
    for column, (name, axis) in enumerate(planes):
        cut = tuple(centre[axis] if a == axis else slice(None) for a in range(3))
        axes[0, column].imshow(modulus[cut], cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(f"normal to {name}", fontsize=9)
        shown = np.where(support[cut], phase[cut], np.nan)
        image = axes[1, column].imshow(shown, cmap="twilight", vmin=-np.pi, vmax=np.pi)
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("modulus")
    axes[1, 0].set_ylabel("phase (support)")
    figure.colorbar(image, ax=axes[1, :], shrink=0.8, label="phase (rad)")
    verdict = (
        f"converged (first-mode weight {reconstruction.mode_weight:.2f}, "
        f"{reconstruction.seconds:.0f} s, {reconstruction.treatment})"
        if reconstruction.converged
        else f"NOT CONVERGED: {reconstruction.reason}"
    )
    caution = (
        "the Bragg peak may lie in the gap: converged is not proof here"
        if reconstruction.converged and reconstruction.peak_in_gap
        else ""
    )
    figure.suptitle("\n".join(filter(None, [title, verdict, caution])), fontsize=10)
    return figure
