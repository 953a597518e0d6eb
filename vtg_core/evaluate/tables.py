"""Extra tables a task reports beside its metrics (a confusion matrix, an answer distribution...).

A task may define ``report_tables(scores, parsed, samples) -> {name: table}``; a table is
``{"title": str, "rows": [labels], "columns": [labels], "values": [[number, ...], ...]}``.
``vtg eval`` prints each one (:func:`format_table`), stores them in ``metrics.json`` under
``tables``, and with ``--plots DIR`` draws each as a heat map ``DIR/<name>.png`` (:func:`plot_table`).
Nothing here knows what a table means.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError

log = logging.getLogger(__name__)


def task_tables(task: Any, result: Any, samples: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """The task's tables for ``result`` (empty when the task has none), each checked for shape."""
    make = getattr(task, "report_tables", None)
    if not callable(make):
        return {}
    tables = make([p.scores for p in result.predictions], [p.parsed for p in result.predictions], list(samples))
    for name, table in tables.items():
        rows, cols, values = table.get("rows"), table.get("columns"), table.get("values")
        if not (isinstance(rows, list) and isinstance(cols, list) and isinstance(values, list)
                and len(values) == len(rows) and all(len(v) == len(cols) for v in values)):
            raise DataError(f"task {getattr(task, 'name', task)!r}: table {name!r} must have rows, columns and a "
                            "rows x columns list of values")
    return tables


def _cell(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}"
    return str(int(value)) if isinstance(value, int | float) else str(value)


def format_table(name: str, table: dict[str, Any]) -> str:
    """The table as aligned text, its title first."""
    rows = [str(r) for r in table["rows"]]
    cols = [str(c) for c in table["columns"]]
    cells = [[_cell(v) for v in row] for row in table["values"]]
    first = max([len(r) for r in rows] + [4])
    widths = [max([len(c)] + [len(row[j]) for row in cells]) + 2 for j, c in enumerate(cols)]
    lines = [f"{table.get('title') or name}:",
             " " * (first + 2) + "".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))]
    for label, row in zip(rows, cells, strict=True):
        lines.append(f"  {label:<{first}}" + "".join(f"{v:>{w}}" for v, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def plot_table(name: str, table: dict[str, Any], path: str | os.PathLike[str]) -> str:
    """Draw the table as an annotated heat map PNG at ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    values = np.asarray(table["values"], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * values.shape[1], 1.0 + 0.7 * values.shape[0]))
    try:
        ax.imshow(values, cmap="Blues", aspect="auto")
        ax.set_xticks(range(values.shape[1]), [str(c) for c in table["columns"]])
        ax.set_yticks(range(values.shape[0]), [str(r) for r in table["rows"]])
        top = values.max() if values.size else 0.0
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                ax.text(j, i, _cell(table["values"][i][j]), ha="center", va="center",
                        color="white" if top and values[i, j] > 0.6 * top else "black")
        ax.set_title(table.get("title") or name, fontsize=9)
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return str(path)
