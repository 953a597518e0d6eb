"""The sample record every task produces and every sampler, loader and trainer consumes.

A task reads its own annotation format and turns each valid row into a :class:`Sample`. The core
only relies on the generic fields (id, video, duration, trimming, where it came from); what is
specific to a task lives in ``answer`` (the ground truth) and ``inputs`` (extra prompt inputs such
as multiple-choice options).
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Location:
    """Where a row came from: file and 1-based line (JSONL) or array index (JSON: ``index``)."""

    file: str
    line: int | None = None
    index: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.index is not None:
            return f"{self.file}[{self.index}]"
        return self.file


@attrs.define(kw_only=True)
class Sample:
    """One training / evaluation example.

    - ``id``: stable identifier (``qid`` when given, else derived from file and line).
    - ``video``: resolved path of the clip (absolute, or as given if no ``video_dir``).
    - ``duration``: seconds of the part of the clip the sample covers (after trimming).
    - ``query``: the user's text (the sentence, the question).
    - ``answer``: the task's ground truth (``(start, end)`` seconds for temporal grounding,
      a letter for multiple choice); ``None`` for unlabelled test data.
    - ``video_start`` / ``video_end``: trim window in seconds of the source file, or ``None``.
    - ``inputs``: task-specific prompt inputs (choices, support frames, ...).
    - ``metadata``: every other key of the row, untouched (``kwargs`` merged in).
    - ``source``: file and line it was read from, for error messages.
    """

    id: str
    video: str | None
    duration: float | None
    query: str
    answer: Any = None
    video_start: float | None = None
    video_end: float | None = None
    inputs: dict[str, Any] = attrs.field(factory=dict)
    metadata: dict[str, Any] = attrs.field(factory=dict)
    source: Location | None = None
