"""Temporal-grounding metrics: IoU, R1@k, mIoU, parse failures, per-group breakdowns.

Units, as in the papers: ``R1@0.3`` / ``R1@0.5`` / ``R1@0.7`` (share of samples whose IoU is at
least the threshold) and ``mIoU`` (mean IoU) are **percentages** (0-100); ``parse_failure_rate``
is a **fraction** (0-1); ``num_samples`` a count. Per-sample IoU (:func:`segment_iou`) is 0-1.

Decisions:

- A parse failure counts as IoU 0 in R1 and mIoU (it is a wrong answer, not a skipped sample).
- A reversed prediction (start > end) is invalid: IoU 0.
- Predictions are clipped to ``[0, duration]`` before IoU: ground truths lie inside the clip, so
  the clipped-off part could never overlap, and ``[-100, 1000]`` then scores like "the whole clip",
  which is what it says.
- Zero-length segments: equal instants have IoU 1; otherwise intersection / union, which is 0 when
  the union has length 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from ..base import ParseResult

THRESHOLDS = (0.3, 0.5, 0.7)
METRIC_NAMES = tuple(f"R1@{t}" for t in THRESHOLDS) + ("mIoU", "parse_failure_rate")

Segment = tuple[float, float]


def clip_segment(segment: Segment, duration: float | None) -> Segment:
    """``segment`` clipped to ``[0, duration]`` (unchanged without a duration)."""
    start, end = segment
    if duration is None:
        return float(start), float(end)
    return min(max(float(start), 0.0), duration), min(max(float(end), 0.0), duration)


def segment_iou(pred: Segment, gt: Segment) -> float:
    """Temporal IoU in [0, 1]; a reversed or non-finite segment scores 0."""
    ps, pe = float(pred[0]), float(pred[1])
    gs, ge = float(gt[0]), float(gt[1])
    if not all(math.isfinite(v) for v in (ps, pe, gs, ge)) or ps > pe or gs > ge:
        return 0.0
    if ps == pe and gs == ge:
        return 1.0 if ps == gs else 0.0
    inter = max(0.0, min(pe, ge) - max(ps, gs))
    union = max(pe, ge) - min(ps, gs)
    if union <= 0:
        return 0.0
    return min(1.0, inter / union)


def prediction_iou(parsed: ParseResult, gt: Segment, duration: float | None) -> float:
    """IoU of a parsed answer with the ground truth: 0 for a failure or a reversed answer."""
    if not parsed.ok or parsed.value is None:
        return 0.0
    start, end = parsed.value
    if start > end:
        return 0.0
    return segment_iou(clip_segment((start, end), duration), gt)


def grounding_metrics(ious: Sequence[float], parsed_ok: Sequence[bool] | None = None,
                      thresholds: Iterable[float] = THRESHOLDS) -> dict[str, float]:
    """R1@k and mIoU (percent) and parse_failure_rate (fraction) of per-sample IoUs.

    ``ious`` already holds 0 for parse failures; ``parsed_ok`` only feeds the failure rate.
    No samples gives zeros with ``num_samples`` 0, so tables stay rectangular.
    """
    n = len(ious)
    out: dict[str, float] = {}
    for t in thresholds:
        out[f"R1@{t}"] = 100.0 * sum(1 for v in ious if v >= t) / n if n else 0.0
    out["mIoU"] = 100.0 * sum(ious) / n if n else 0.0
    if parsed_ok is not None:
        if len(parsed_ok) != n:
            raise ValueError(f"{n} IoUs but {len(parsed_ok)} parse results")
        out["parse_failure_rate"] = sum(1 for ok in parsed_ok if not ok) / n if n else 0.0
    out["num_samples"] = n
    return out


def _group_key(value: Any) -> str:
    if value is None:
        return "(missing)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def group_by(items: Sequence[Any], key: Callable[[Any], Hashable]) -> dict[str, list[int]]:
    """Indices of ``items`` by ``str(key(item))`` (``(missing)`` for None), in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(_group_key(key(item)), []).append(i)
    return groups


def metrics_by(ious: Sequence[float], parsed_ok: Sequence[bool], metadata: Sequence[Mapping[str, Any]],
               by: str) -> dict[str, dict[str, float]]:
    """:func:`grounding_metrics` per value of the metadata field ``by`` (e.g. ``difficulty``).

    Samples without the field form the ``(missing)`` group. Group names are strings.
    """
    if not len(ious) == len(parsed_ok) == len(metadata):
        raise ValueError("ious, parsed_ok and metadata must have the same length")
    groups = group_by(list(metadata), lambda m: m.get(by))
    return {
        name: grounding_metrics([ious[i] for i in idx], [parsed_ok[i] for i in idx])
        for name, idx in sorted(groups.items())
    }
