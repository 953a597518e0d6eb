"""Multiple-choice metrics (seed 003's evaluate.py report): accuracy, per-class accuracy, confusion
matrix, answer distribution, parse-failure rate.

Per sample, :func:`sample_scores` gives ``correct`` (1/0; a parse failure is wrong) and
``answer_index`` (the true letter's position, 0 = A), so the data-set metrics can be computed from
the scores and parse results alone, as the core's :func:`~vtg_core.evaluate.runner.score_answers`
hands them over. Accuracies are fractions in [0, 1].

Tables (:func:`tables`) are the generic ``{"title", "rows", "columns", "values"}`` form ``vtg
eval`` prints and draws: the confusion matrix (true letter x predicted letter, with an
``unparsed`` column) and the answer distribution (counts of true and predicted letters).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from vtg_core.tasks.base import ParseResult

from .schema import LETTERS

UNPARSED = "unparsed"
METRIC_NAMES = ("accuracy", *(f"accuracy_{x}" for x in LETTERS), "parse_failure_rate", "num_samples")


def sample_scores(parsed: ParseResult, truth: str) -> dict[str, float]:
    return {"correct": float(parsed.ok and parsed.value == truth), "answer_index": float(LETTERS.index(truth))}


def _truth(score: dict[str, float]) -> str:
    return LETTERS[int(score["answer_index"])]


def _predicted(parsed: ParseResult) -> str:
    return str(parsed.value) if parsed.ok and parsed.value in LETTERS else UNPARSED


def mcq_metrics(scores: Sequence[dict[str, float]], parsed: Iterable[ParseResult]) -> dict[str, float]:
    """Accuracy, accuracy per true letter (letters that occur), parse-failure rate, sample count."""
    parsed = list(parsed)
    n = len(scores)
    out: dict[str, float] = {"accuracy": sum(s["correct"] for s in scores) / n if n else 0.0}
    by_letter: dict[str, list[float]] = {}
    for s in scores:
        by_letter.setdefault(_truth(s), []).append(s["correct"])
    for letter in LETTERS:
        if letter in by_letter:
            out[f"accuracy_{letter}"] = sum(by_letter[letter]) / len(by_letter[letter])
    out["parse_failure_rate"] = sum(not p.ok for p in parsed) / n if n else 0.0
    out["num_samples"] = float(n)
    return out


def confusion(scores: Sequence[dict[str, float]], parsed: Sequence[ParseResult]) -> dict[str, dict[str, int]]:
    """``{true letter: {predicted letter or 'unparsed': count}}`` over the letters that occur."""
    counts = Counter((_truth(s), _predicted(p)) for s, p in zip(scores, parsed, strict=True))
    letters = _letters_seen(scores, parsed)
    return {t: {p: counts.get((t, p), 0) for p in [*letters, UNPARSED]} for t in letters}


def _letters_seen(scores: Sequence[dict[str, float]], parsed: Sequence[ParseResult]) -> list[str]:
    seen = {_truth(s) for s in scores} | {_predicted(p) for p in parsed}
    return [x for x in LETTERS if x in seen]


def tables(scores: Sequence[dict[str, float]], parsed: Sequence[ParseResult]) -> dict[str, dict[str, Any]]:
    """The confusion matrix and the answer distribution as generic tables."""
    parsed = list(parsed)
    matrix = confusion(scores, parsed)
    letters = list(matrix)
    truth_counts = Counter(_truth(s) for s in scores)
    pred_counts = Counter(_predicted(p) for p in parsed)
    n = max(1, len(scores))
    dist_rows = [*letters, UNPARSED]
    return {
        "confusion_matrix": {
            "title": "confusion matrix (rows: true answer, columns: predicted answer)",
            "rows": letters, "columns": [*letters, UNPARSED],
            "values": [[matrix[t][p] for p in [*letters, UNPARSED]] for t in letters],
        },
        "answer_distribution": {
            "title": "answer distribution (count and share of samples)",
            "rows": dist_rows, "columns": ["true", "predicted", "true_share", "predicted_share"],
            "values": [[truth_counts.get(x, 0), pred_counts.get(x, 0), truth_counts.get(x, 0) / n,
                        pred_counts.get(x, 0) / n] for x in dist_rows],
        },
    }
