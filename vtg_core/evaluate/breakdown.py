"""Metrics per group of a metadata field (``--by difficulty``), with quantile bins for numbers.

A categorical field (``"easy"`` / ``"hard"``, or a handful of integers) groups by value. A
continuous one, such as seed 000's float ``difficulty`` (24.650233177881407), would give one group
per sample, so a numeric field with more distinct values than ``bins`` is cut at its quantiles into
``bins`` groups of about equal size, labelled ``q1 [lo, hi)`` ... ``qN [lo, hi]``. The groups are
then scored by the task's own ``metrics_by`` (or ``aggregate`` per group for tasks without it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from ..data.sample import Sample
from .runner import EvalResult

DEFAULT_BINS = 4


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def quantile_edges(values: Sequence[float], bins: int) -> list[float]:
    """``bins + 1`` edges at the quantiles of ``values`` (linear interpolation), duplicates dropped."""
    ordered = sorted(values)
    n = len(ordered)
    edges = []
    for k in range(bins + 1):
        pos = (n - 1) * k / bins
        lo = math.floor(pos)
        hi = min(lo + 1, n - 1)
        edges.append(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))
    unique: list[float] = []
    for e in edges:
        if not unique or e > unique[-1]:
            unique.append(e)
    return unique


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def bin_labels(values: Sequence[float], edges: Sequence[float]) -> list[str]:
    """Label of each value's bin; the last bin is closed so the maximum falls inside it."""
    width = len(str(len(edges) - 1))
    labels = []
    for v in values:
        i = 0
        while i < len(edges) - 2 and v >= edges[i + 1]:
            i += 1
        close = "]" if i == len(edges) - 2 else ")"
        labels.append(f"q{i + 1:0{width}d} [{_fmt(edges[i])}, {_fmt(edges[i + 1])}{close}")
    return labels


def group_values(samples: Sequence[Sample], by: str, bins: int = DEFAULT_BINS) -> tuple[list[Any], dict[str, Any]]:
    """The group of each sample for field ``by``, and how groups were formed.

    Returns ``(groups, info)``; ``info`` is ``{"binning": "value"}`` or
    ``{"binning": "quantile", "bins": n, "edges": [...]}``. Missing values stay ``None`` (the
    task's breakdown calls that group ``(missing)``).
    """
    raw = [s.metadata.get(by) for s in samples]
    present = [v for v in raw if v is not None]
    numeric = bool(present) and all(_is_number(v) for v in present)
    if not numeric or bins < 1 or len(set(present)) <= bins:
        return raw, {"binning": "value"}
    edges = quantile_edges([float(v) for v in present], bins)
    if len(edges) < 2:
        return raw, {"binning": "value"}
    labels = iter(bin_labels([float(v) for v in present], edges))
    return [next(labels) if v is not None else None for v in raw], {
        "binning": "quantile", "bins": len(edges) - 1, "edges": edges}


def breakdown(task: Any, samples: Sequence[Sample], result: EvalResult, by: str,
              bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """``{"binning": ..., "groups": {group: metrics}}`` for metadata field ``by``."""
    groups, info = group_values(samples, by, bins)
    scores = [p.scores for p in result.predictions]
    parsed = [p.parsed for p in result.predictions]
    relabelled = [attrs.evolve(s, metadata={**s.metadata, by: g}) for s, g in zip(samples, groups, strict=True)]
    if hasattr(task, "metrics_by"):
        table = task.metrics_by(scores, parsed, relabelled, by)
    else:
        index: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            index.setdefault("(missing)" if g is None else str(g), []).append(i)
        table = {g: task.aggregate([scores[i] for i in idx], [parsed[i] for i in idx])
                 for g, idx in sorted(index.items())}
    return {**info, "groups": table}
