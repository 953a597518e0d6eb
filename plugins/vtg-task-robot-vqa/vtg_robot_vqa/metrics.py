"""Seed 004's evaluation metrics: preference accuracy, progress MAE / RMSE, counts per type, parse failures.

Per-sample scores carry their type in their keys (``preference_correct`` or
``progress_abs_error``), so :func:`aggregate` needs no samples. Progress MAE / RMSE are over the
answers that parsed; unparsable answers are counted in ``parse_failures`` (and score 0 for
preference accuracy, whose denominator is every preference sample).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from vtg_core.tasks.base import ParseResult

from .schema import PREFERENCE, PROGRESS

METRIC_NAMES = ("preference_accuracy", "progress_mae", "progress_rmse", "num_preference", "num_progress",
                "parse_failures", "parse_failure_rate")


def sample_scores(parsed: ParseResult, sample_type: str, answer: str) -> dict[str, float]:
    if sample_type == PREFERENCE:
        return {"preference_correct": float(parsed.ok and parsed.value == int(answer)),
                "preference_parse_failed": float(not parsed.ok)}
    if sample_type == PROGRESS:
        if not parsed.ok:
            return {"progress_parse_failed": 1.0}
        error = abs(float(parsed.value) - float(answer))
        return {"progress_abs_error": error, "progress_parse_failed": 0.0}
    raise ValueError(f"unknown sample type {sample_type!r}")


def aggregate(scores: Sequence[dict[str, float]], parsed: Iterable[ParseResult]) -> dict[str, float]:
    parsed = list(parsed)
    pref = [s for s in scores if "preference_correct" in s]
    prog = [s for s in scores if "progress_parse_failed" in s]
    errors = [s["progress_abs_error"] for s in prog if "progress_abs_error" in s]
    failures = sum(1 for p in parsed if not p.ok)
    out: dict[str, Any] = {
        "num_samples": float(len(scores)),
        "num_preference": float(len(pref)),
        "num_progress": float(len(prog)),
        "preference_correct": float(sum(s["preference_correct"] for s in pref)),
        "preference_accuracy": sum(s["preference_correct"] for s in pref) / len(pref) if pref else float("nan"),
        "progress_mae": sum(errors) / len(errors) if errors else float("nan"),
        "progress_rmse": math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else float("nan"),
        "preference_parse_failures": float(sum(s["preference_parse_failed"] for s in pref)),
        "progress_parse_failures": float(sum(s["progress_parse_failed"] for s in prog)),
        "parse_failures": float(failures),
        "parse_failure_rate": failures / len(parsed) if parsed else 0.0,
    }
    return out


def seed_report(metrics: dict[str, float]) -> dict[str, Any]:
    """The seed's results layout (``sample_types``, ``preference``, ``progress``) from flat metrics."""
    def num(key: str) -> Any:
        value = metrics.get(key)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    return {
        "total_samples": int(metrics["num_samples"]),
        "sample_types": {PREFERENCE: int(metrics["num_preference"]), PROGRESS: int(metrics["num_progress"])},
        PREFERENCE: {"count": int(metrics["num_preference"]), "correct": int(metrics["preference_correct"]),
                     "accuracy": num("preference_accuracy"),
                     "parse_failures": int(metrics["preference_parse_failures"])},
        PROGRESS: {"count": int(metrics["num_progress"]), "mae": num("progress_mae"), "rmse": num("progress_rmse"),
                   "parse_failures": int(metrics["progress_parse_failures"])},
        "parse_failures": int(metrics["parse_failures"]),
    }
