"""Summary tables of :func:`score_methods` rows (the model card's validation table)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .._errors import InputDataError

#: Columns of the table: (header, row key, format).
_COLUMNS = (
    ("strict PCC", "strict_pcc", ".4f"),
    ("oracle", "oracle_pcc", ".4f"),
    ("strict / oracle", "pcc_ratio", ".4f"),
    ("paper PCC", "paper_pcc", ".4f"),
    ("paper oracle", "paper_pcc_oracle", ".4f"),
    ("paper PCC vs noise-free", "paper_pcc_noise_free", ".4f"),
    ("photon error", "photon_error", ".3f"),
    ("s / volume", "seconds", ".2f"),
)
#: Amplitude columns, shown before the time when every row has them (tables written
#: before they existed are still summarised).
_AMPLITUDE_COLUMNS = (
    ("amplitude error", "amplitude_error", ".3f"),
    ("Poisson floor", "amplitude_floor", ".3f"),
    ("peak ratio", "peak_ratio", ".2f"),
    ("photon ratio", "photon_ratio", ".2f"),
)


def _gap_label(width: Any, cross: Any) -> str:
    """``"6 px single"``; ``cross`` is a bool or its string (as :func:`score_methods` writes)."""
    return f"{width} px {'cross' if str(cross) == 'True' else 'single'}"


def summarise(
    rows: Iterable[Mapping[str, Any]],
    *,
    candidate: str = "model",
    reference: str = "biharmonic",
) -> str:
    """Markdown table of mean metrics per gap (width, single/cross) and method.

    Parameters
    ----------
    rows : iterable of mapping
        Rows of :func:`score_methods`: keys ``case``, ``width``, ``cross``, ``method``,
        ``seconds`` and the metrics of :func:`evaluate` (the amplitude metrics are
        optional: their columns appear when every row has them).
    candidate, reference : str
        Methods compared volume by volume on strict PCC and on paper PCC against the
        noise-free intensity in the last lines ("candidate > reference on k of n
        volumes"); the lines are left out unless both were scored.

    Returns
    -------
    str
        The table (header, separator, one line per gap and method in sorted order) and
        the comparison line.

    Raises
    ------
    ValueError
        If there are no rows or a row lacks a key.

    """
    rows = list(rows)
    if not rows:
        raise InputDataError("no scores to summarise")
    needed = {"case", "width", "cross", "method"} | {key for _, key, _ in _COLUMNS}
    for row in rows:
        missing = needed - set(row)
        if missing:
            raise InputDataError(f"score row {dict(row)} lacks {sorted(missing)}")
    columns = list(_COLUMNS)
    if all(all(key in row for _, key, _ in _AMPLITUDE_COLUMNS) for row in rows):
        columns[-1:-1] = _AMPLITUDE_COLUMNS
    groups: dict[tuple[int, bool, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(int(row["width"]), str(row["cross"]) == "True", str(row["method"]))].append(row)
    header = "| gap | method | " + " | ".join(title for title, _, _ in columns) + " |"
    lines = [header, "|---|---|" + "---|" * len(columns)]
    for (width, cross, method), group in sorted(groups.items()):
        cells = [
            format(float(np.mean([float(r[key]) for r in group])), fmt) for _, key, fmt in columns
        ]
        lines.append(f"| {_gap_label(width, cross)} | {method} | " + " | ".join(cells) + " |")
    comparisons = []
    for title, key in (
        ("strict PCC", "strict_pcc"),
        ("paper PCC vs noise-free", "paper_pcc_noise_free"),
    ):
        by_case: dict[str, dict[str, float]] = defaultdict(dict)
        for row in rows:
            by_case[str(row["case"])][str(row["method"])] = float(row[key])
        compared = [s for s in by_case.values() if candidate in s and reference in s]
        if compared:
            wins = sum(s[candidate] > s[reference] for s in compared)
            comparisons.append(
                f"{candidate.capitalize()} {title} > {reference} on {wins} of "
                f"{len(compared)} volumes."
            )
    return "\n".join(lines + ([""] + comparisons if comparisons else []))
