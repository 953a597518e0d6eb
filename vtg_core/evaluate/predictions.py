"""Prediction files: writing ``predictions.jsonl``, and scoring stored predictions without a model.

``predictions.jsonl`` has one row per sample, in the data file's order::

    {"sample_id": "a1", "raw": "<answer>2.0 to 4.5</answer>", "parsed_ok": true, "parsed": [2.0, 4.5],
     "parse_error": null, "iou": 0.8, "ground_truth": [2.5, 4.5]}

(``iou`` is the task's per-sample score; other tasks write their own score names.)

Stored predictions (the ``pred`` field of seed 000's annotation format) are the task's parsed
answer, already in its value form (``[start, end]`` seconds for temporal grounding); they skip the
parser and go straight to the task's scorer and metrics.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.sample import Sample
from ..errors import DataError
from ..tasks.base import ParseResult
from .runner import EvalResult, Prediction

#: The sample field (``Sample.metadata`` key) holding a stored prediction.
PRED_FIELD = "pred"


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a sibling temporary file and rename it into place.

    A reader (rank 0 waiting for part files, a user tailing results) never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def prediction_rows(samples: Sequence[Sample], result: EvalResult) -> list[dict[str, Any]]:
    """The rows of ``predictions.jsonl`` (see the module docstring)."""
    if len(samples) != len(result.predictions):
        raise ValueError(f"{len(samples)} samples but {len(result.predictions)} predictions")
    return [{**p.to_dict(), "ground_truth": _plain(s.answer)}
            for s, p in zip(samples, result.predictions, strict=True)]


def write_predictions(path: str | os.PathLike[str], samples: Sequence[Sample], result: EvalResult) -> None:
    rows = prediction_rows(samples, result)
    atomic_write_text(path, "".join(json.dumps(r, default=float, ensure_ascii=False) + "\n" for r in rows))


def read_predictions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``predictions.jsonl``."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
    return rows


def has_stored_predictions(samples: Sequence[Sample]) -> bool:
    """True when every sample carries a stored prediction (``pred``)."""
    return bool(samples) and all(s.metadata.get(PRED_FIELD) is not None for s in samples)


def score_stored_predictions(task: Any, samples: Sequence[Sample], *, path: str | None = None) -> EvalResult:
    """Score the ``pred`` of each sample with the task's scorer and metrics; no model involved.

    Every sample must have one: a missing prediction is a gap in the file, not a model's wrong
    answer, and counting it as a failure would quietly lower the numbers.
    """
    missing = [s for s in samples if s.metadata.get(PRED_FIELD) is None]
    if missing:
        where = ", ".join(f"{s.source or path} (sample {s.id})" for s in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"{len(missing)} of {len(samples)} rows have no {PRED_FIELD!r} field to score: {where}{more}. "
                        f"Add [start, end] predictions to every row, or evaluate a model with --model.")
    predictions = []
    for sample in samples:
        value = sample.metadata[PRED_FIELD]
        parsed = ParseResult(True, tuple(value) if isinstance(value, list | tuple) else value)
        predictions.append(Prediction(sample.id, json.dumps(_plain(value)), parsed, task.score(parsed, sample)))
    metrics = task.aggregate([p.scores for p in predictions], [p.parsed for p in predictions])
    return EvalResult(metrics, predictions)
