"""Predictions for a whole annotation file, and a complete ``id,answer`` submission CSV.

``vtg predict --data test.json --submission out.csv`` loads the file with the task's own loader
(answers may be absent), generates with the checkpoint exactly as ``vtg eval`` does, and writes
one CSV row per sample, in file order. A row whose answer the parser cannot read still gets an
answer, the task's ``submission_fallback(sample)`` (a multiple-choice task's fallback letter),
so the submission is complete; those rows are never hidden: their count and ids are returned
(the command prints them) and stored with the raw answers in ``<out>.unparsed.json``. Every raw
answer goes to ``<out>.predictions.jsonl``.

Tasks say what a row's answer is with ``submission_answer(parsed, sample) -> str | None``
(default: the parsed value as text); without ``submission_fallback`` an unparsed row is written
with an empty answer (and still listed).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import DataError


@attrs.define
class Submission:
    """What :func:`write_submission` wrote: paths, row count, and the rows given a fallback."""

    path: str
    sidecar: str
    predictions: str
    num_rows: int
    unparsed: list[dict[str, Any]]

    @property
    def unparsed_ids(self) -> list[str]:
        return [row["id"] for row in self.unparsed]


def _answer(task: Any, parsed: Any, sample: Any) -> str | None:
    own = getattr(task, "submission_answer", None)
    if callable(own):
        return own(parsed, sample)
    return None if not parsed.ok else str(parsed.value)


def _fallback(task: Any, sample: Any) -> str:
    own = getattr(task, "submission_fallback", None)
    return str(own(sample)) if callable(own) else ""


def sidecar_paths(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(<out>.unparsed.json, <out>.predictions.jsonl)`` next to the submission ``path``."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix else p
    return f"{stem}.unparsed.json", f"{stem}.predictions.jsonl"


def write_submission(task: Any, samples: Sequence[Any], texts: Sequence[str], path: str | os.PathLike[str]
                     ) -> Submission:
    """Parse each answer and write the CSV, the unparsed-rows file and the raw predictions."""
    from ..evaluate.predictions import atomic_write_text

    if len(samples) != len(texts):
        raise ValueError(f"{len(samples)} samples but {len(texts)} answers")
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"duplicate ids in the data ({', '.join(dup[:5])}): a submission needs one row per id")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "answer"])
    unparsed, preds = [], []
    for sample, text in zip(samples, texts, strict=True):
        parsed = task.parse(text, sample)
        answer = _answer(task, parsed, sample)
        fallback = answer is None
        if fallback:
            answer = _fallback(task, sample)
            unparsed.append({"id": sample.id, "raw": text, "error": parsed.error, "written": answer})
        writer.writerow([sample.id, answer])
        preds.append({"id": sample.id, "raw": text, "parsed_ok": parsed.ok, "parsed": parsed.value,
                      "parse_error": parsed.error, "answer": answer, "fallback": fallback})
    sidecar, predictions = sidecar_paths(path)
    atomic_write_text(path, out.getvalue())
    atomic_write_text(sidecar, json.dumps({"submission": str(path), "rows": len(samples), "unparsed": len(unparsed),
                                           "rows_with_fallback": unparsed}, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(predictions, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in preds))
    return Submission(str(path), sidecar, predictions, len(samples), unparsed)


def predict_file(engine: Any, data: str, *, video_dir: str | None = None, progress: bool = True
                 ) -> tuple[list[Any], list[str]]:
    """``(samples, raw answers)`` for every row of ``data`` with a loaded inference ``engine``.

    Rows are read with the task's loader under ``invalid_policy=fail``: a submission must cover
    every id, so a bad row stops here with its file, index and field instead of being skipped.
    """
    from ..evaluate.runner import generate_answers

    if not os.path.isfile(data):
        raise DataError(f"annotation file not found: {data}")
    loaded = engine.task.load(data, video_dir=video_dir, policy="fail")
    samples = list(loaded[0] if isinstance(loaded, tuple) else loaded)
    texts = generate_answers(engine.model, engine.processor, engine.backend, engine.task, samples,
                             engine.config.video, batch_size=engine.batch_size, max_new_tokens=engine.max_new_tokens,
                             progress=progress, desc="predicting", seed=engine.seed)
    return samples, texts
