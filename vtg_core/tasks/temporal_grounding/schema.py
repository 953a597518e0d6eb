"""Temporal-grounding annotation rows -> :class:`~vtg_core.data.sample.Sample`.

Row format (JSON Lines or a JSON array of objects)::

    {"video": "clips/a.mp4", "duration": 24.9, "timestamp": [11.3, 15.0],
     "sentence": "the paper bill has an image of a woman",
     "qid": "...", "video_start": 404.2, "video_end": 429.1, "difficulty": 24.6,
     "pred": [0.0, 15.01], "kwargs": {"split": "train"}, "any_other_key": 1}

Required: ``video`` (string; relative to ``video_dir``, or absolute), ``duration`` (seconds, > 0),
``timestamp`` ([start, end] seconds), ``sentence`` (non-blank string). Optional (``null`` = absent):
``qid`` (string or integer), ``difficulty`` (number or string), ``video_start`` / ``video_end``
(seconds of the source file), ``pred`` ([start, end], a stored prediction to evaluate).
``kwargs`` (an object, as in the Qwen3-VL-GRPO-VTG format) is merged into ``metadata``; its
``qid`` / ``difficulty`` count as those fields when the top level has none. Every other key goes
to ``metadata`` untouched (top-level keys win over ``kwargs`` entries of the same name).

Decisions:

- Trimmed clips: with ``video_start`` / ``video_end`` the sample is the window
  [video_start, video_end] of the source file, and ``duration`` and ``timestamp`` are relative to
  that window (the seed example: duration 24.9 = 429.1 - 404.2, timestamp [11.3, 15.0] inside
  it). When both bounds are given, ``duration`` must equal ``video_end - video_start`` within the
  tolerance.
- Tolerance (default 0.5 s, the task's ``tolerance`` option): annotators and frame rounding put
  ends slightly past the clip; a time up to ``duration + tolerance`` is accepted and clamped to
  ``duration`` so every answer lies inside the clip. Negative times are always invalid.
- ``start == end`` (an instant) is valid; ``start > end`` is not.
- Numbers must be JSON numbers: booleans, strings, NaN/Infinity (Python's json accepts them) and
  values above :data:`~vtg_core.data.annotations.MAX_SECONDS` are rejected.
- ``Sample.id`` is ``qid`` as a string, else ``"<file stem>:<line>"`` (JSON Lines) or
  ``"<file stem>[<index>]"`` (JSON array, 0-based).
"""

from __future__ import annotations

import os
from typing import Any

from ...data.annotations import RowReader, json_type_name
from ...data.sample import Location, Sample
from ..base import RowProblem

REQUIRED_FIELDS = ("video", "duration", "timestamp", "sentence")
OPTIONAL_FIELDS = ("video_start", "video_end", "qid", "difficulty", "pred", "kwargs")
DEFAULT_TOLERANCE = 0.5


def resolve_video(video: str, video_dir: str | None) -> str:
    """``video`` joined to ``video_dir`` unless absolute (``~`` expanded); as given without a dir."""
    video = os.path.expanduser(video)
    if os.path.isabs(video) or not video_dir:
        return video
    return os.path.normpath(os.path.join(os.path.expanduser(video_dir), video))


def default_id(where: Location) -> str:
    stem = os.path.splitext(os.path.basename(where.file))[0]
    if where.line is not None:
        return f"{stem}:{where.line}"
    if where.index is not None:
        return f"{stem}[{where.index}]"
    return stem


def read_segment(r: RowReader, key: str, value: Any, *, allow_negative: bool = False) -> tuple[float, float] | None:
    """Check a ``[start, end]`` pair of finite JSON numbers (order is the caller's business)."""
    if not isinstance(value, list):
        r.problem(key, f"expected [start, end] (an array of two numbers), got {json_type_name(value)}",
                  "bad_segment")
        return None
    if len(value) != 2:
        r.problem(key, f"expected [start, end] (two numbers), got an array of {len(value)}", "bad_segment")
        return None
    out = []
    for i, item in enumerate(value):
        field = f"{key}[{i}]"
        if isinstance(item, bool) or not isinstance(item, int | float):
            r.problem(field, f"expected a number, got {json_type_name(item)}", "wrong_type")
            return None
        number = r.check_number(field, item, allow_negative=allow_negative)
        if number is None:
            return None
        out.append(number)
    return out[0], out[1]


def row_to_sample(
    where: Location,
    row: dict[str, Any],
    *,
    video_dir: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Sample | list[RowProblem]:
    """Validate one row; the sample, or every problem found in it (never raises on content)."""
    r = RowReader(row, where)
    video = r.text("video")
    duration = r.number("duration", allow_zero=False)
    sentence = r.text("sentence")
    raw_ts = r.get("timestamp", list, what="[start, end] (an array of two numbers)")
    segment = read_segment(r, "timestamp", raw_ts) if raw_ts is not None else None

    kwargs_value = r.get("kwargs", dict, required=False, what="an object")
    extra = dict(kwargs_value) if kwargs_value else {}

    qid, qid_field = _pick(row, extra, "qid")
    sample_id = None
    if qid is not None:
        if isinstance(qid, bool) or not isinstance(qid, str | int):
            r.problem(qid_field, f"expected a string or integer, got {json_type_name(qid)}", "wrong_type")
        elif not str(qid).strip():
            r.problem(qid_field, "must not be empty", "empty")
        else:
            sample_id = str(qid)

    difficulty, diff_field = _pick(row, extra, "difficulty")
    if difficulty is not None:
        if isinstance(difficulty, str):
            pass
        elif isinstance(difficulty, bool) or not isinstance(difficulty, int | float):
            r.problem(diff_field, f"expected a number or string, got {json_type_name(difficulty)}", "wrong_type")
        else:
            difficulty = r.check_number(diff_field, difficulty, allow_negative=True)

    pred = row.get("pred")
    if pred is not None:
        # A stored prediction is model output: any order and sign, but it must be two numbers.
        pred = read_segment(r, "pred", pred, allow_negative=True)

    video_start = r.number("video_start", required=False)
    video_end = r.number("video_end", required=False)

    if segment is not None and duration is not None:
        start, end = segment
        if start > end:
            r.problem("timestamp", f"start {start:g} is after end {end:g}", "reversed")
        for name, t in (("start", start), ("end", end)):
            if t > duration + tolerance:
                r.problem("timestamp", f"{name} {t:g} is beyond the duration {duration:g} "
                          f"(tolerance {tolerance:g} s)", "out_of_range")
                break
        segment = (min(start, duration), min(end, duration))

    if video_start is not None and video_end is not None:
        if video_end <= video_start:
            r.problem("video_end", f"video_end {video_end:g} is not after video_start {video_start:g}", "reversed")
        elif duration is not None and abs((video_end - video_start) - duration) > tolerance:
            r.problem("duration", f"duration {duration:g} disagrees with video_end - video_start = "
                      f"{video_end - video_start:g} (timestamps are relative to the trimmed clip)", "inconsistent")

    if r.problems:
        return r.problems

    metadata: dict[str, Any] = {k: v for k, v in extra.items() if k not in ("qid", "difficulty")}
    metadata.update({k: v for k, v in row.items() if k not in REQUIRED_FIELDS and k not in OPTIONAL_FIELDS})
    if difficulty is not None:
        metadata["difficulty"] = difficulty
    if pred is not None:
        metadata["pred"] = pred
    assert video is not None and duration is not None and sentence is not None and segment is not None
    return Sample(
        id=sample_id or default_id(where),
        video=resolve_video(video, video_dir),
        duration=duration,
        query=sentence,
        answer=segment,
        video_start=video_start,
        video_end=video_end,
        metadata=metadata,
        source=where,
    )


def _pick(row: dict[str, Any], extra: dict[str, Any], key: str) -> tuple[Any, str]:
    """A field from the top level, else from ``kwargs``; with the name to report it under."""
    if row.get(key) is not None:
        return row[key], key
    if extra.get(key) is not None:
        return extra[key], f"kwargs.{key}"
    return None, key
