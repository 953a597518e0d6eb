"""Batched generation over samples and scoring with the task's own parser and metrics.

The same task object that built the training prompts builds the evaluation prompts and parses
the answers, so the number printed after training and the one ``vtg eval`` reports agree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs

from ..data.sample import Sample
from ..data.sample_frames import frames_for_sample
from ..tasks.base import ParseResult

log = logging.getLogger(__name__)


@attrs.define
class Prediction:
    """One evaluated sample: what the model said, what the parser read, how it scored."""

    sample_id: str
    raw: str
    parsed: ParseResult
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        value = self.parsed.value
        return {"sample_id": self.sample_id, "raw": self.raw, "parsed_ok": self.parsed.ok,
                "parsed": list(value) if isinstance(value, tuple) else value,
                "parse_error": self.parsed.error, **self.scores}


@attrs.define
class EvalResult:
    metrics: dict[str, float]
    predictions: list[Prediction]


def generate_answers(model: Any, processor: Any, backend: Any, task: Any, samples: Sequence[Sample],
                     video_cfg: Any, *, batch_size: int = 4, max_new_tokens: int = 32, cache: Any = None,
                     progress: bool = True, desc: str = "evaluating", seed: int | None = None) -> list[str]:
    """Greedy answers for ``samples``, batched (left padding), with a progress bar.

    ``seed`` goes to :func:`frames_for_sample`: without it a ``random`` sampling strategy draws
    new frames on every call, so evaluation passes one to make its numbers repeatable.
    """
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    answers: list[str] = []
    try:
        bar = tqdm(total=len(samples), desc=desc, disable=not progress, unit="sample")
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            encoded = [backend.encode(processor, task.build_messages(s),
                                      frames_for_sample(s, video_cfg, cache=cache, seed=seed, task=task))
                       for s in chunk]
            answers.extend(backend.generate(model, processor, encoded, max_new_tokens=max_new_tokens,
                                            do_sample=False))
            bar.update(len(chunk))
        bar.close()
    finally:
        model.train(was_training)
    return answers


def score_answers(task: Any, samples: Sequence[Sample], answers: Sequence[str]) -> EvalResult:
    """Parse and score each answer; aggregate with the task's metrics."""
    if len(samples) != len(answers):
        raise ValueError(f"{len(samples)} samples but {len(answers)} answers")
    predictions = []
    for sample, text in zip(samples, answers, strict=True):
        parsed = task.parse(text, sample)
        predictions.append(Prediction(sample.id, text, parsed, task.score(parsed, sample)))
    metrics = task.aggregate([p.scores for p in predictions], [p.parsed for p in predictions])
    return EvalResult(metrics, predictions)


def evaluate(model: Any, processor: Any, backend: Any, task: Any, samples: Sequence[Sample], video_cfg: Any,
             **kwargs: Any) -> EvalResult:
    """Generate and score in one go."""
    return score_answers(task, samples, generate_answers(model, processor, backend, task, samples, video_cfg, **kwargs))
