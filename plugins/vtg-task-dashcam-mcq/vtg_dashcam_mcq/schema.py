"""Reading Road Buddy annotation files (seed 003) into samples, with one clear problem per bad field.

The file is one JSON object ``{"__count__": N, "data": [row, ...]}`` (``__count__`` optional; a
bare JSON array of rows is accepted too). A row::

    {"id": "train_0001", "question": "...", "choices": ["A. ...", "B. ..."], "answer": "B. ...",
     "support_frames": [4.43], "video_path": "train/videos/clip.mp4"}

- ``choices``: 2 to 4 strings, the i-th starting with the i-th letter (``"A. "``, ``"A) "``,
  ``"A: "``); a choice without its letter is an error naming it.
- ``answer``: ``"B. text"`` or ``"B"``; absent (or null) in test files. Its letter must be one of the
  choices' and its text, when given, that choice's text; otherwise the row is rejected.
- ``support_frames``: seconds worth looking at (optional, may be empty).
- ``video_path``: relative to the data root. Without ``video_dir`` the root is the annotation
  file's folder or its parent (Road Buddy keeps ``train/train.json`` next to ``train/videos/`` and
  writes ``train/videos/...``); the first that holds the file wins. A missing file is a problem.

Rows are located as ``file[index]`` (0-based index into ``data``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from vtg_core.data.annotations import RowReader
from vtg_core.data.sample import Location, Sample
from vtg_core.errors import DataError
from vtg_core.tasks.base import RowProblem

log = logging.getLogger(__name__)

LETTERS = "ABCD"
MIN_CHOICES, MAX_CHOICES = 2, 4

_LETTER_PREFIX = re.compile(r"^\s*\(?([A-Za-z])\s*[.):]\s*(.*)$", re.DOTALL)
_KNOWN = {"id", "question", "choices", "answer", "support_frames", "video_path"}


def normalize_text(text: str) -> str:
    """Case-, space- and Unicode-form-insensitive form of a choice text (for comparing answers)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split()).rstrip(".")


def split_choice(text: str) -> tuple[str, str] | None:
    """``"B. Turn left"`` -> ``("B", "Turn left")``; ``None`` when it does not start with a letter mark."""
    m = _LETTER_PREFIX.match(text)
    if not m:
        return None
    return m.group(1).upper(), m.group(2).strip()


def iter_rows(path: str) -> Iterator[tuple[Location, dict[str, Any] | RowProblem]]:
    """``(location, row or problem)`` for each element of the file's ``data`` list."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError as exc:
        raise DataError(f"annotation file not found: {path}") from exc
    except OSError as exc:
        raise DataError(f"cannot read annotation file {path}: {exc}") from exc
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); expected "
                        '{"__count__": N, "data": [...]} as Road Buddy writes it') from exc
    except (RecursionError, ValueError) as exc:  # nested too deeply; an integer with too many digits
        raise DataError(f"{path}: not valid JSON ({'nested too deeply' if isinstance(exc, RecursionError) else exc})"
                        ) from None
    if isinstance(doc, dict):
        if "data" not in doc:
            raise DataError(f"{path}: a JSON object without a 'data' list (keys: {sorted(doc)[:8]}); expected "
                            '{"__count__": N, "data": [...]}')
        rows, count = doc["data"], doc.get("__count__")
    else:
        rows, count = doc, None
    if not isinstance(rows, list):
        raise DataError(f"{path}: 'data' must be a list of rows, got {type(rows).__name__}")
    if count is not None and count != len(rows):
        log.warning("%s: __count__ says %s rows but 'data' holds %d (truncated or edited file?)", path, count,
                    len(rows))
    for i, row in enumerate(rows):
        where = Location(path, index=i)
        if not isinstance(row, dict):
            yield where, RowProblem(where, None, f"expected a JSON object, got {type(row).__name__}",
                                    code="not_object")
        else:
            yield where, row


def _video_roots(path: str, video_dir: str | None) -> list[str]:
    if video_dir is not None:
        return [video_dir]
    here = os.path.dirname(os.path.abspath(path))
    return [here, os.path.dirname(here)]


def _read_choices(r: RowReader) -> tuple[list[str], list[str]] | None:
    choices = r.get("choices", list)
    if choices is None:
        return None
    if not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        r.problem("choices", f"expected {MIN_CHOICES} to {MAX_CHOICES} choices, got {len(choices)}", "bad_choices")
        return None
    letters, texts = [], []
    for i, choice in enumerate(choices):
        expected = LETTERS[i]
        if not isinstance(choice, str) or not choice.strip():
            r.problem("choices", f"choice {i} must be a non-empty string like '{expected}. ...', got {choice!r}",
                      "bad_choices")
            return None
        parts = split_choice(choice)
        if parts is None or parts[0] != expected:
            got = "no letter" if parts is None else f"letter {parts[0]}"
            r.problem("choices", f"choice {i} {choice!r} has {got}; expected it to start with '{expected}. '",
                      "choice_without_letter")
            return None
        if not parts[1]:
            r.problem("choices", f"choice {i} {choice!r} has a letter but no text", "bad_choices")
            return None
        letters.append(parts[0])
        texts.append(parts[1])
    return letters, texts


def _read_answer(r: RowReader, letters: list[str], texts: list[str]) -> str | None:
    answer = r.text("answer", required=False)
    if answer is None:
        return None
    parts = split_choice(answer)
    if parts is not None and parts[0] in letters and (
            not parts[1] or normalize_text(parts[1]) == normalize_text(texts[letters.index(parts[0])])):
        return parts[0]
    if len(answer) == 1 and answer.upper() in letters:
        return answer.upper()
    matches = [letter for letter, text in zip(letters, texts, strict=True)
               if normalize_text(text) == normalize_text(answer)]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(f"{letter}. {text}" for letter, text in zip(letters, texts, strict=True))
    r.problem("answer", f"{answer!r} is not among the choices ({listed})", "answer_not_in_choices")
    return None


def _read_support(r: RowReader) -> list[float]:
    value = r.get("support_frames", list, required=False)
    if value is None:
        return []
    out = []
    for i, t in enumerate(value):
        if isinstance(t, bool) or not isinstance(t, int | float):
            r.problem("support_frames", f"element {i} must be a number of seconds, got {t!r}", "wrong_type")
            return []
        number = r.check_number("support_frames", t)
        if number is None:
            return []
        out.append(number)
    return sorted(set(out))


def row_to_sample(where: Location, row: dict[str, Any], *, video_dir: str | None = None,
                  seen: dict[str, Location] | None = None) -> Sample | list[RowProblem]:
    """One row -> :class:`Sample` (``answer`` = the letter, or None), or the row's problems."""
    r = RowReader(row, where)
    sample_id = r.text("id")
    if sample_id is not None and seen is not None:
        if sample_id in seen:
            r.problem("id", f"duplicate id {sample_id!r} (first at {seen[sample_id]})", "duplicate_id")
        else:
            seen[sample_id] = where
    question = r.text("question")
    read = _read_choices(r)
    answer = _read_answer(r, *read) if read is not None else None
    support = _read_support(r)
    video_rel = r.text("video_path")
    video = None
    if video_rel is not None:
        roots = _video_roots(where.file, video_dir)
        tried = [video_rel] if os.path.isabs(video_rel) else [os.path.join(root, video_rel) for root in roots]
        video = next((p for p in tried if os.path.isfile(p)), None)
        if video is None:
            r.problem("video_path", f"video file not found: {' or '.join(tried)} (set --video-dir to the data root)",
                      "missing_video")
    if r.problems:
        return r.problems
    assert read is not None and question is not None and sample_id is not None
    letters, texts = read
    metadata = {k: v for k, v in row.items() if k not in _KNOWN}
    if row.get("answer") is not None:
        metadata["answer_text"] = row["answer"]
    return Sample(id=sample_id, video=video, duration=None, query=question, answer=answer,
                  inputs={"letters": letters, "choices": texts, "support_frames": support},
                  metadata=metadata, source=where)
