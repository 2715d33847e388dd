"""Tables and figures of the real-space evaluation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import InputDataError
from ._real_space import SUCCESS_PHASE_ERROR


def _groups(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """List the groups in evaluation order (width, single then cross, centre then off)."""
    seen: dict[str, tuple[int, bool, str]] = {}
    for row in rows:
        seen[str(row["group"])] = (int(row["width"]), bool(row["cross"]), str(row["position"]))
    return sorted(seen, key=lambda g: (seen[g][0], seen[g][1], seen[g][2] != "centre"))


def _practices(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """List the practices in the order they first appear."""
    return list(dict.fromkeys(str(row["practice"]) for row in rows))


def _table(
    rows: Sequence[Mapping[str, Any]],
    title: str,
    cell: Any,
    groups: list[str],
    practices: list[str],
) -> list[str]:
    """Build a markdown table: a row per practice, a column per group and one for all."""
    by: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by[(str(row["practice"]), str(row["group"]))].append(row)
        by[(str(row["practice"]), "all")].append(row)
    columns = [*groups, "all"]
    lines = [f"**{title}**", "", "| practice | " + " | ".join(columns) + " |"]
    lines.append("|---|" + "---|" * len(columns))
    for practice in practices:
        cells = [cell(by[(practice, group)]) if by[(practice, group)] else "" for group in columns]
        lines.append(f"| {practice} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def summarise_real_space(
    rows: Iterable[Mapping[str, Any]], fill_rows: Iterable[Mapping[str, Any]] = ()
) -> str:
    """Markdown tables of the real-space evaluation.

    Parameters
    ----------
    rows : iterable of mapping
        Rows of :func:`reconstruct_case`.
    fill_rows : iterable of mapping
        Rows of :func:`fill_scores` (with ``group`` added), for the fillings' table.

    Returns
    -------
    str
        Median phase error, success rate, median strain and modulus errors per practice
        and group; the mean time per practice; the fillings' amplitude accuracy.
    """
    rows = list(rows)
    if not rows:
        raise InputDataError("no reconstructions to summarise")
    groups, practices = _groups(rows), _practices(rows)

    def median(key: str, fmt: str) -> Any:
        return lambda group: format(float(np.median([float(r[key]) for r in group])), fmt)

    def success(group: list[Mapping[str, Any]]) -> str:
        return f"{sum(bool(r['success']) for r in group)}/{len(group)}"

    lines = _table(
        rows,
        "Median phase error inside the support (rad)",
        median("phase_error", ".3f"),
        groups,
        practices,
    )
    lines += _table(
        rows,
        f"Successful reconstructions (phase error < {SUCCESS_PHASE_ERROR} rad)",
        success,
        groups,
        practices,
    )
    lines += _table(
        rows,
        "Median strain (phase-gradient) error (rad / voxel)",
        median("strain_error", ".3f"),
        groups,
        practices,
    )
    lines += _table(
        rows,
        "Median modulus error (relative RMS)",
        median("modulus_error", ".3f"),
        groups,
        practices,
    )
    seconds = {
        p: np.mean([float(r["seconds"]) for r in rows if r["practice"] == p]) for p in practices
    }
    lines += [
        "Mean time per reconstruction: " + ", ".join(f"{p} {s:.2g} s" for p, s in seconds.items()),
        "",
    ]
    fills = list(fill_rows)
    if fills:
        lines += ["**Fillings: amplitude accuracy on the gap voxels (median)**", ""]
        lines += [
            "| group | fill | amplitude error | Poisson floor | peak ratio | photon ratio |",
            "|---|---|---|---|---|---|",
        ]
        by: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for row in fills:
            by[(str(row["group"]), str(row["fill"]))].append(row)
        for group in groups:
            for fill in sorted({f for g, f in by if g == group}):
                cells = [
                    format(float(np.median([float(r[key]) for r in by[(group, fill)]])), fmt)
                    for key, fmt in (
                        ("amplitude_error", ".3f"),
                        ("amplitude_floor", ".3f"),
                        ("peak_ratio", ".2f"),
                        ("photon_ratio", ".2f"),
                    )
                ]
                lines.append(f"| {group} | {fill} | " + " | ".join(cells) + " |")
    return "\n".join(lines).rstrip() + "\n"


def central_slices_figure(
    truth: np.ndarray, reconstructions: Mapping[str, np.ndarray], *, title: str = ""
) -> Any:
    """Modulus and phase of the central slices of the truth and of reconstructions.

    Parameters
    ----------
    truth : (nz, ny, nx) complex ndarray
        The true object (reference of the registration).
    reconstructions : mapping of str to (nz, ny, nx) complex ndarray
        Registered reconstructions (``Comparison.aligned``) by practice.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two rows (modulus, phase inside the true support) of the central z slice.
    """
    from matplotlib.figure import Figure

    panels = {"truth": truth, **reconstructions}
    figure = Figure(figsize=(2.2 * len(panels), 4.6), layout="constrained")
    axes = figure.subplots(2, len(panels), squeeze=False)
    z = truth.shape[0] // 2
    inside = np.abs(truth[z]) >= 0.5 * np.abs(truth).max()
    for column, (name, obj) in enumerate(panels.items()):
        modulus = np.abs(obj[z])
        axes[0, column].imshow(
            modulus / max(float(modulus.max()), 1e-30), cmap="gray", vmin=0, vmax=1
        )
        axes[0, column].set_title(name, fontsize=8)
        phase = np.where(inside, np.angle(obj[z]), np.nan)
        axes[1, column].imshow(phase, cmap="twilight", vmin=-np.pi, vmax=np.pi)
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("modulus", fontsize=8)
    axes[1, 0].set_ylabel("phase (true support)", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    return figure
