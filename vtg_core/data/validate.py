"""Check an annotation file before a run: what ``vtg validate FILE`` prints.

:func:`validate_file` loads the file with a task's own row validation in ``report`` mode (every
problem collected, nothing raised, nothing logged), then optionally opens every video
(``check_videos``) and checks that it covers the sample: the trim window when the row has one,
else ``[0, duration]``. Videos are probed once per path even when many rows share one.

Works with any task: a task with ``load_with_report`` (the built-ins) gives exact counts; for any
other task the counts come from its ``load()`` result (rows = samples + rows with problems).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import attrs

from ..errors import VideoError
from ..tasks.base import RowProblem
from .annotations import LoadReport
from .sample import Sample

DEFAULT_VIDEO_TOLERANCE = 0.5  # seconds a file may fall short of the annotated end (frame rounding)


@attrs.define
class ValidationReport:
    """Counts, problems (with locations) and warnings of one validation.

    ``by_reason`` counts problems by code (a row with two problems counts under both, once in
    ``num_invalid``). Video problems have codes ``video_<reason>`` (``video_missing``,
    ``video_corrupt``, ``video_too_short``, ...). ``warnings`` do not make a row invalid
    (e.g. duplicate sample ids).
    """

    path: str
    task: str
    rows: int = 0
    num_valid: int = 0
    num_invalid: int = 0
    by_reason: dict[str, int] = attrs.field(factory=dict)
    problems: list[RowProblem] = attrs.field(factory=list)
    warnings: list[str] = attrs.field(factory=list)
    videos_checked: int | None = None

    @property
    def ok(self) -> bool:
        return self.num_invalid == 0

    def format(self) -> str:
        """A summary (rows, valid, invalid by reason), then each problem with its location."""
        lines = [f"{self.path} ({self.task}): {self.rows} rows, {self.num_valid} valid, {self.num_invalid} invalid"
                 + (f" ({100 * self.num_invalid / self.rows:.1f}%)" if self.rows and self.num_invalid else "")]
        if self.videos_checked is not None:
            lines.append(f"videos checked: {self.videos_checked}")
        if self.by_reason:
            lines.append("invalid by reason:")
            width = max(len(code) for code in self.by_reason)
            for code, n in sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"  {code:<{width}}  {n}")
        if self.problems:
            lines.append("problems:")
            lines.extend(f"  {p}  [{p.code}]" for p in self.problems)
        if self.warnings:
            lines.append("warnings:")
            lines.extend(f"  {w}" for w in self.warnings)
        if not self.problems and not self.warnings:
            lines.append("no problems found")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "task": self.task, "rows": self.rows, "valid": self.num_valid,
            "invalid": self.num_invalid, "by_reason": dict(self.by_reason), "videos_checked": self.videos_checked,
            "problems": [{"where": str(p.where), "file": p.where.file, "line": p.where.line, "index": p.where.index,
                          "field": p.field, "reason": p.reason, "code": p.code} for p in self.problems],
            "warnings": list(self.warnings),
        }


def _resolve_task(task: Any, task_options: dict[str, Any] | None) -> Any:
    if not isinstance(task, str):
        return task
    from ..plugins import get_registry

    return get_registry().get("task", task).load()(**(task_options or {}))


def _load(task: Any, path: str, video_dir: str | None) -> tuple[list[Sample], LoadReport]:
    if hasattr(task, "load_with_report"):
        return task.load_with_report(path, video_dir=video_dir, policy="report")
    # A task following only the base protocol: it may apply its own policy and raise (DataError
    # then reaches the user as a clean message), so rebuild the counts from what it returns.
    samples, problems = task.load(path, video_dir=video_dir)
    report = LoadReport(path=path)
    bad_rows = {(p.where.file, p.where.line, p.where.index) for p in problems}
    report.valid, report.invalid = len(samples), len(bad_rows)
    report.rows = report.valid + report.invalid
    report.problems = list(problems)
    report.by_reason = dict(Counter(p.code for p in problems))
    return samples, report


def _sort_key(problem: RowProblem) -> tuple[int, int]:
    where = problem.where
    return (where.line if where.line is not None else -1, where.index if where.index is not None else -1)


def _needed_end(sample: Sample) -> float | None:
    if sample.video_end is not None:
        return sample.video_end
    if sample.duration is None:
        return None
    return (sample.video_start or 0.0) + sample.duration


# Frames decoded per file by --check-videos: a header that opens proves little (a damaged file's
# header often does); decoding a spread of frames across the whole clip finds broken frame data.
CHECK_FRAMES = 8


def _open_and_decode(path: str, sample_id: str) -> Any:
    from .video import load_frames, probe  # lazy: decoding stacks stay out of plain validation

    info = probe(path, sample_id=sample_id)
    load_frames(path, max_frames=CHECK_FRAMES, sample_id=sample_id)
    return info


def _check_videos(samples: list[Sample], tolerance: float) -> tuple[list[tuple[Sample, RowProblem]], int]:

    probed: dict[str, Any] = {}
    found: list[tuple[Sample, RowProblem]] = []
    for sample in samples:
        where = sample.source
        path = sample.video
        if where is None or path is None:
            continue
        if path not in probed:
            try:
                probed[path] = _open_and_decode(path, sample.id)
            except VideoError as exc:
                probed[path] = exc
            except Exception as exc:  # a decoder crash on one file must not end the whole check
                probed[path] = VideoError(f"{type(exc).__name__}: {exc}", path=path, reason="corrupt")
        info = probed[path]
        if isinstance(info, VideoError):
            found.append((sample, RowProblem(where, "video", f"{path}: {info}", code=f"video_{info.reason}")))
            continue
        needed = _needed_end(sample)
        actual = getattr(info, "duration", None)
        if needed is not None and actual is not None and actual + tolerance < needed:
            span = (f"its trim window ends at {needed:g} s" if sample.video_end is not None
                    else f"the sample needs {needed:g} s")
            found.append((sample, RowProblem(
                where, "video", f"{path} is {actual:.2f} s long but {span}", code="video_too_short")))
    return found, len(probed)


def validate_file(
    path: str | os.PathLike[str],
    *,
    task: Any,
    video_dir: str | None = None,
    check_videos: bool = False,
    task_options: dict[str, Any] | None = None,
    video_tolerance: float = DEFAULT_VIDEO_TOLERANCE,
) -> ValidationReport:
    """Validate an annotation file against ``task`` (a task object, or a registered task name).

    ``check_videos`` opens every referenced video with :func:`vtg_core.data.video.probe`, decodes
    :data:`CHECK_FRAMES` frames spread over it, and
    checks it is long enough (within ``video_tolerance`` seconds) for the sample. Raises only for
    a file that cannot be read (:class:`~vtg_core.errors.DataError`).
    """
    path = os.fspath(path)
    task_obj = _resolve_task(task, task_options)
    samples, load_report = _load(task_obj, path, video_dir)
    report = ValidationReport(
        path=path, task=getattr(task_obj, "name", type(task_obj).__name__), rows=load_report.rows,
        num_valid=load_report.valid, num_invalid=load_report.invalid, by_reason=dict(load_report.by_reason),
        problems=list(load_report.problems),
    )

    seen: dict[str, Sample] = {}
    for sample in samples:
        first = seen.setdefault(sample.id, sample)
        if first is not sample:
            report.warnings.append(f"{sample.source}: sample id {sample.id!r} repeats {first.source}")

    if check_videos:
        video_problems, report.videos_checked = _check_videos(samples, video_tolerance)
        bad = {id(sample) for sample, _ in video_problems}
        report.num_invalid += len(bad)
        report.num_valid -= len(bad)
        for _, problem in video_problems:
            report.problems.append(problem)
            report.by_reason[problem.code] = report.by_reason.get(problem.code, 0) + 1

    report.problems.sort(key=_sort_key)
    return report
