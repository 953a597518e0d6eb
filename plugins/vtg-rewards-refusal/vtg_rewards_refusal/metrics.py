"""Refusal-aware grounding metrics: refusal classification, refusal-aware R1@k / mIoU, corrections.

Units follow the core's grounding metrics: ``R1@0.3`` / ``R1@0.5`` / ``R1@0.7``, ``mIoU`` and the
refusal ``accuracy`` / ``precision`` / ``recall`` / ``F1`` are **percentages** (0-100);
``parse_failure_rate``, ``format_rate`` and ``correction_rate`` are **fractions** (0-1);
``correction_similarity`` is a mean cosine similarity (-1..1); counts are counts.

Per-sample scores (:func:`sample_scores`):

- ``iou``: refusal-aware IoU. Answerable: the best IoU of the predicted segment with a ground
  truth (clipped to the clip, 0 for a refusal or a parse failure). Refusable: 1 for a refusal, 0
  for a timestamp or a parse failure: a correct refusal is a hit at every threshold, a wrong
  refusal or a timestamp on a refusable query a miss.
- ``refused`` / ``should_refuse``: 1 or 0. Refusing is the positive class.
- ``decision_correct``: 1 when the model answered an answerable query with a segment or refused a
  refusable one. A parse failure is never correct.
- refusable rows with references only: ``correction_similarity`` (best SBERT cosine of the
  correction with the references; 0 when the model gave ``NIL`` or no correction) and
  ``has_correction``.

Counting parse failures: on a refusable query a failure is a missed refusal (a false negative);
on an answerable query it is wrong (accuracy) but not a refusal, so it is not a false positive.
Precision, recall and F1 are 0 when undefined (no predicted / no actual refusals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vtg_core.tasks.base import ParseResult
from vtg_core.tasks.temporal_grounding.metrics import (
    THRESHOLDS,
    clip_segment,
    grounding_metrics,
    group_by,
    segment_iou,
)

from .parser import correction, has_timestamp, refused, well_formed
from .schema import Truth

REFUSAL_METRICS = ("refusal_accuracy", "refusal_precision", "refusal_recall", "refusal_f1")
METRIC_NAMES = (*REFUSAL_METRICS, *(f"R1@{t}" for t in THRESHOLDS), "mIoU", "correction_similarity",
                "correction_rate", "format_rate", "parse_failure_rate")


def segment_score(parsed: ParseResult, truth: Truth, duration: float | None) -> float:
    """The best IoU of the parsed segment with the ground truth (0 without a segment)."""
    if not has_timestamp(parsed) or not truth.segments:
        return 0.0
    start, end = parsed.value["segment"]
    if start > end:
        return 0.0
    pred = clip_segment((start, end), duration)
    return max(segment_iou(pred, gt) for gt in truth.segments)


def sample_scores(parsed: ParseResult, truth: Truth, duration: float | None,
                  similarity: float | None = None) -> dict[str, float]:
    """Per-sample scores (see the module docstring); ``similarity`` is the correction's best cosine."""
    did_refuse = refused(parsed)
    if truth.refusable:
        iou = 1.0 if did_refuse else 0.0
        correct = did_refuse
    else:
        iou = segment_score(parsed, truth, duration)
        correct = has_timestamp(parsed)
    scores = {"iou": iou, "refused": float(did_refuse), "should_refuse": float(truth.refusable),
              "decision_correct": float(correct)}
    if truth.refusable and truth.references:
        text = correction(parsed)
        scores["has_correction"] = float(text is not None)
        scores["correction_similarity"] = float(similarity) if text is not None and similarity is not None else 0.0
    return scores


def _percent(numerator: float, denominator: float) -> float:
    return 100.0 * numerator / denominator if denominator else 0.0


def refusal_metrics(scores: Sequence[Mapping[str, float]], parsed: Sequence[ParseResult]) -> dict[str, float]:
    """Every metric of the module docstring from per-sample scores and parse results."""
    if len(scores) != len(parsed):
        raise ValueError(f"{len(scores)} scores but {len(parsed)} parse results")
    n = len(scores)
    tp = sum(1 for s in scores if s["refused"] and s["should_refuse"])
    fp = sum(1 for s in scores if s["refused"] and not s["should_refuse"])
    fn = sum(1 for s in scores if not s["refused"] and s["should_refuse"])
    precision = _percent(tp, tp + fp)
    recall = _percent(tp, tp + fn)
    out: dict[str, float] = {
        "refusal_accuracy": _percent(sum(s["decision_correct"] for s in scores), n),
        "refusal_precision": precision,
        "refusal_recall": recall,
        "refusal_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    grounding = grounding_metrics([s["iou"] for s in scores], [p.ok for p in parsed])
    out.update({k: v for k, v in grounding.items() if k != "num_samples"})
    similar = [s["correction_similarity"] for s in scores if "correction_similarity" in s]
    out["correction_similarity"] = sum(similar) / len(similar) if similar else 0.0
    correctable = [s["has_correction"] for s in scores if "has_correction" in s]
    out["correction_rate"] = sum(correctable) / len(correctable) if correctable else 0.0
    out["format_rate"] = sum(1 for p in parsed if well_formed(p)) / n if n else 0.0
    out["num_samples"] = n
    out["num_refusable"] = sum(1 for s in scores if s["should_refuse"])
    return out


def refusal_metrics_by(scores: Sequence[Mapping[str, float]], parsed: Sequence[ParseResult],
                       metadata: Sequence[Mapping[str, Any]], by: str) -> dict[str, dict[str, float]]:
    """:func:`refusal_metrics` per value of the metadata field ``by`` (``(missing)`` without it)."""
    if not len(scores) == len(parsed) == len(metadata):
        raise ValueError("scores, parsed and metadata must have the same length")
    groups = group_by(list(metadata), lambda m: m.get(by))
    return {name: refusal_metrics([scores[i] for i in idx], [parsed[i] for i in idx])
            for name, idx in sorted(groups.items())}


def as_list(parsed: Iterable[ParseResult]) -> list[ParseResult]:
    return parsed if isinstance(parsed, list) else list(parsed)
