"""The constant-prediction baseline: what a model scores that ignores the video entirely.

It predicts, for every clip, the mean relative ``[start, end]`` of the training set scaled to
the clip's duration. A trained grounding model is only useful if it beats this number; the demo
run prints both side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...data.sample import Sample
from ...tasks.base import ParseResult


def mean_relative_segment(samples: Sequence[Sample]) -> tuple[float, float]:
    """Mean of ``start/duration`` and ``end/duration`` over labelled samples."""
    pairs = [(s.answer[0] / s.duration, s.answer[1] / s.duration)
             for s in samples if s.answer is not None and s.duration]
    if not pairs:
        raise ValueError("no labelled samples to fit a constant baseline on")
    return sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)


def constant_baseline(task: Any, train_samples: Sequence[Sample], eval_samples: Sequence[Sample]) -> dict[str, float]:
    """The task's metrics on ``eval_samples`` for the constant prediction fitted on ``train_samples``."""
    rel_start, rel_end = mean_relative_segment(train_samples)
    parsed = [ParseResult(ok=True, value=(rel_start * s.duration, rel_end * s.duration)) for s in eval_samples]
    scores = [task.score(p, s) for p, s in zip(parsed, eval_samples, strict=True)]
    return task.aggregate(scores, parsed)
