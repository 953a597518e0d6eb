"""RIQ annotation rows (RA-RFT's data format) -> :class:`~vtg_core.data.sample.Sample`.

A JSON array (RA-RFT ships these) or JSON Lines, one object per query::

    {"video": "cooking/abc.mp4", "duration": 100.0, "problem": "a person is cooking pasta",
     "task_type": "answerable", "gt_answers": [{"answer": [20.0, 40.0]}]}
    {"video_path": "cooking/abc.mp4", "duration": 100.0, "problem": "a person is playing basketball",
     "task_type": "refusable", "gt_answers": [[-1, -1]],
     "refusable_queries": ["a person is cooking in the kitchen", "a person stirs a pot"]}

Required: ``video`` or ``video_path`` (string; relative to ``video_dir`` or absolute),
``duration`` (seconds, > 0), ``problem`` (the query, non-blank), ``task_type`` (``answerable`` |
``refusable``), ``gt_answers`` (non-empty array; each entry ``{"answer": [start, end]}`` or a
bare ``[start, end]``), and for refusable rows ``refusable_queries`` (non-empty array of
non-blank strings: the answerable queries a correction is compared with). Optional: ``qid``
(string or integer), ``difficulty`` (number or string), ``video_start`` / ``video_end`` (trim
window, as in the core grounding format). Every other key goes to ``metadata`` untouched.

Checks, each reported with file, line (or array index), field and reason, all problems of a row
at once, through the core's :class:`~vtg_core.data.annotations.RowReader`:

- answerable: every segment is two finite numbers, ``0 <= start <= end``, and within
  ``duration + tolerance`` (then clamped to the clip, as the core does); ``[-1, -1]`` there is an
  ``inconsistent`` row (it marks a refusable query).
- refusable: every entry is exactly ``[-1, -1]``; a real segment is ``inconsistent``.
- ``refusable_queries`` on an answerable row is checked the same way and kept in ``metadata``
  (never used as references: an answerable row has nothing to correct). A reference equal to the
  query itself is ``inconsistent``: that query would be answerable.
- ``video`` and ``video_path`` both given must agree.
"""

from __future__ import annotations

import math
from typing import Any

from vtg_core.data.annotations import RowReader, json_type_name
from vtg_core.data.sample import Location, Sample
from vtg_core.tasks.base import RowProblem
from vtg_core.tasks.temporal_grounding.schema import default_id, read_segment, resolve_video

ANSWERABLE = "answerable"
REFUSABLE = "refusable"
TASK_TYPES = (ANSWERABLE, REFUSABLE)
NO_SEGMENT = (-1.0, -1.0)

KNOWN_FIELDS = ("video", "video_path", "duration", "problem", "task_type", "gt_answers", "refusable_queries",
                "qid", "difficulty", "video_start", "video_end")
DEFAULT_TOLERANCE = 0.5


class Truth(dict):
    """A sample's ground truth (``Sample.answer``): the kind, the segments, the correction references.

    A ``dict`` (``{"task_type", "segments", "references"}``) rather than a record because the core
    writes ``Sample.answer`` into prediction files with ``json.dumps`` as it is.
    """

    def __init__(self, task_type: str, segments: Any = (), references: Any = ()):
        super().__init__(task_type=task_type, segments=[[float(s), float(e)] for s, e in segments],
                         references=[str(r) for r in references])

    @property
    def task_type(self) -> str:
        return self["task_type"]

    @property
    def segments(self) -> tuple[tuple[float, float], ...]:
        return tuple((s, e) for s, e in self["segments"])

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(self["references"])

    @property
    def refusable(self) -> bool:
        return self["task_type"] == REFUSABLE


def gt_segments(value: Any) -> list[tuple[float, float]]:
    """The real segments of a ``gt_answers`` value (either RIQ form), without ``[-1, -1]`` markers.

    Lenient by design: it reads reward columns and raw rows that :func:`row_to_sample` has
    already validated; anything unreadable is left out.
    """
    if value is None or isinstance(value, str | bytes | dict):
        return []
    items = list(value)
    # A single bare pair [s, e] is accepted too (a hand-written reward column).
    if len(items) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        items = [items]
    out = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("answer")
        if item is None or isinstance(item, str | bytes | dict):
            continue
        try:
            start, end = (float(v) for v in item)
        except (TypeError, ValueError):
            continue
        if (start, end) == NO_SEGMENT or not (math.isfinite(start) and math.isfinite(end)):
            continue
        out.append((start, end))
    return out


def _video(r: RowReader, row: dict[str, Any]) -> str | None:
    has_video = row.get("video") is not None
    has_path = row.get("video_path") is not None
    if not has_video and not has_path:
        r.problem("video", "required field is missing (give 'video' or 'video_path')", "missing_field")
        return None
    video = r.text("video", required=False) if has_video else None
    path = r.text("video_path", required=False) if has_path else None
    if video is not None and path is not None and video != path:
        r.problem("video_path", f"disagrees with 'video' ({path!r} vs {video!r}); give one of them", "inconsistent")
        return None
    return video or path


def _task_type(r: RowReader) -> str | None:
    value = r.text("task_type")
    if value is not None and value not in TASK_TYPES:
        r.problem("task_type", f"must be {ANSWERABLE!r} or {REFUSABLE!r}, got {value!r}", "bad_value")
        return None
    return value


def _answers(r: RowReader, task_type: str | None, duration: float | None,
             tolerance: float) -> list[tuple[float, float]] | None:
    raw = r.get("gt_answers", list, what='an array of {"answer": [start, end]} (or [start, end]) entries')
    if raw is None:
        return None
    if not raw:
        r.problem("gt_answers", "must not be empty (use [[-1, -1]] for a refusable query)", "empty")
        return None
    segments: list[tuple[float, float]] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, dict):
            field = f"gt_answers[{i}].answer"
            if entry.get("answer") is None:
                r.problem(field, "required field is missing", "missing_field")
                return None
            entry = entry["answer"]
        else:
            field = f"gt_answers[{i}]"
            if not isinstance(entry, list):
                r.problem(field, f'expected {{"answer": [start, end]}} or [start, end], got {json_type_name(entry)}',
                          "wrong_type")
                return None
        # Negative numbers are read here so [-1, -1] gets its own, clearer message below.
        segment = read_segment(r, field, entry, allow_negative=True)
        if segment is None:
            return None
        segments.append(segment)
    if task_type is None:
        return segments
    if task_type == REFUSABLE:
        for i, segment in enumerate(segments):
            if segment != NO_SEGMENT:
                r.problem(f"gt_answers[{i}]", f"a refusable query has no segment: expected [-1, -1], got "
                          f"[{segment[0]:g}, {segment[1]:g}] (or set task_type to 'answerable')", "inconsistent")
                return None
        return []
    clamped = []
    for i, (start, end) in enumerate(segments):
        field = f"gt_answers[{i}]"
        if (start, end) == NO_SEGMENT:
            r.problem(field, "[-1, -1] marks a refusable query, but task_type is 'answerable'", "inconsistent")
            return None
        if start < 0 or end < 0:
            r.problem(field, f"times must not be negative, got [{start:g}, {end:g}]", "negative")
            return None
        if start > end:
            r.problem(field, f"start {start:g} is after end {end:g}", "reversed")
            return None
        if duration is not None:
            if end > duration + tolerance:
                r.problem(field, f"end {end:g} is beyond the duration {duration:g} (tolerance {tolerance:g} s)",
                          "out_of_range")
                return None
            start, end = min(start, duration), min(end, duration)
        clamped.append((start, end))
    return clamped


def _references(r: RowReader, task_type: str | None, query: str | None) -> list[str] | None:
    required = task_type == REFUSABLE
    raw = r.get("refusable_queries", list, required=required, what="an array of strings")
    if raw is None:
        return None
    if not raw:
        if required:
            r.problem("refusable_queries", "a refusable query needs at least one reference (an answerable "
                      "query that a correction is compared with)", "empty")
        return [] if not required else None
    out = []
    for i, item in enumerate(raw):
        field = f"refusable_queries[{i}]"
        if not isinstance(item, str):
            r.problem(field, f"expected a string, got {json_type_name(item)}", "wrong_type")
            return None
        if not item.strip():
            r.problem(field, "must not be empty or whitespace only", "empty")
            return None
        text = item.strip()
        if required and query is not None and text.casefold() == query.casefold():
            r.problem(field, "is the query itself: a query with itself as its correction is answerable",
                      "inconsistent")
            return None
        out.append(text)
    return out


def row_to_sample(where: Location, row: dict[str, Any], *, video_dir: str | None = None,
                  tolerance: float = DEFAULT_TOLERANCE) -> Sample | list[RowProblem]:
    """Validate one RIQ row; the sample, or every problem found in it (never raises on content)."""
    r = RowReader(row, where)
    video = _video(r, row)
    duration = r.number("duration", allow_zero=False)
    query = r.text("problem")
    task_type = _task_type(r)
    segments = _answers(r, task_type, duration, tolerance)
    references = _references(r, task_type, query)

    sample_id = None
    qid = row.get("qid")
    if qid is not None:
        if isinstance(qid, bool) or not isinstance(qid, str | int):
            r.problem("qid", f"expected a string or integer, got {json_type_name(qid)}", "wrong_type")
        elif not str(qid).strip():
            r.problem("qid", "must not be empty", "empty")
        else:
            sample_id = str(qid)
    difficulty = row.get("difficulty")
    if difficulty is not None and not isinstance(difficulty, str):
        if isinstance(difficulty, bool) or not isinstance(difficulty, int | float):
            r.problem("difficulty", f"expected a number or string, got {json_type_name(difficulty)}", "wrong_type")
        else:
            difficulty = r.check_number("difficulty", difficulty, allow_negative=True)

    video_start = r.number("video_start", required=False)
    video_end = r.number("video_end", required=False)
    if video_start is not None and video_end is not None:
        if video_end <= video_start:
            r.problem("video_end", f"video_end {video_end:g} is not after video_start {video_start:g}", "reversed")
        elif duration is not None and abs((video_end - video_start) - duration) > tolerance:
            r.problem("duration", f"duration {duration:g} disagrees with video_end - video_start = "
                      f"{video_end - video_start:g} (times are relative to the trimmed clip)", "inconsistent")

    if r.problems:
        return r.problems
    assert video is not None and duration is not None and query is not None and task_type is not None
    assert segments is not None
    metadata: dict[str, Any] = {k: v for k, v in row.items() if k not in KNOWN_FIELDS}
    metadata["task_type"] = task_type  # so metrics can be broken down by it like any field
    if difficulty is not None:
        metadata["difficulty"] = difficulty
    refusable = task_type == REFUSABLE
    if references and not refusable:
        metadata["refusable_queries"] = references
    truth = Truth(task_type, tuple(segments), tuple(references or ()) if refusable else ())
    return Sample(id=sample_id or default_id(where), video=resolve_video(video, video_dir), duration=duration,
                  query=query, answer=truth, video_start=video_start, video_end=video_end, metadata=metadata,
                  source=where)
