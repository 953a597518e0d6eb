"""Temporal-grounding rewards with TRL's reward signature.

Each factory returns ``fn(prompts, completions, **columns) -> list[float | None]`` whose
``__name__`` is the reward's name, so TRL logs ``rewards/<name>``. Completions are strings or
conversations (``[{"role": "assistant", "content": "..."}]``, content a string or a list of text
parts). Answers are read by the task's parser (:func:`~vtg_core.tasks.temporal_grounding.parser.parse_segment`),
the same one evaluation uses.

Data-set columns read (what :meth:`TemporalGroundingTask.reward_columns` writes):

- ``timestamp``: ground truth ``[start, end]`` in seconds of the clip; ``None`` in a row means the
  reward does not apply there (e.g. an unanswerable query) and yields ``None``.
- ``duration``: clip seconds; needed for relative times, tokens and clipping (optional otherwise).
- ``time_format`` (optional): ``seconds`` | ``relative`` | ``tokens:N``. A factory option
  (``relative=``, ``use_temporal_tokens=``/``num_bins=``) overrides it; with neither, seconds.

Scoring decisions, shared with the metrics: an unparseable completion scores 0.0 (never ``None``:
the model did answer, badly); a reversed prediction (start > end) scores 0.0; predictions are
clipped to ``[0, duration]`` before overlap; zero-length segments follow
:func:`~vtg_core.tasks.temporal_grounding.metrics.segment_iou`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError
from ..tasks.base import ParseResult
from ..tasks.temporal_grounding.metrics import clip_segment, segment_iou
from ..tasks.temporal_grounding.parser import parse_segment

RewardFn = Callable[..., list[float | None]]


# -- shared helpers (plugin rewards may use them too) --------------------------------------------

def completion_text(completion: Any) -> str:
    """The assistant's text of a TRL completion: a string, or a conversation's last assistant turn."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, list | tuple):
        turns = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in turns if m.get("role", "assistant") == "assistant"] or turns
        if not assistant:
            return ""
        content = assistant[-1].get("content", "")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content
                           if isinstance(part, dict) and isinstance(part.get("text", ""), str))
    return ""


def column(kwargs: dict[str, Any], name: str, n: int, reward: str, *, required: bool = True) -> list[Any]:
    """The data-set column ``name``, one value per completion."""
    if name not in kwargs or kwargs[name] is None:
        if required:
            raise ConfigError(f"reward {reward!r} needs a {name!r} column in the data set; got columns "
                              f"{sorted(k for k in kwargs if not k.startswith('trainer'))}")
        return [None] * n
    values = list(kwargs[name])
    if len(values) != n:
        raise ConfigError(f"reward {reward!r}: column {name!r} has {len(values)} values for {n} completions")
    return values


def as_segment(value: Any) -> tuple[float, float] | None:
    """A ``[start, end]`` of finite numbers as floats, else ``None``."""
    if value is None or isinstance(value, str | bytes | dict):
        return None
    try:
        items = list(value)
    except TypeError:
        return None
    if len(items) != 2:
        return None
    out = []
    for item in items:
        if isinstance(item, bool):
            return None
        try:
            number = float(item)
        except (TypeError, ValueError, OverflowError):
            return None
        if not math.isfinite(number):
            return None
        out.append(number)
    return out[0], out[1]


def as_duration(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number > 0 else None


class TimeFormatOptions:
    """Factory-level time-format options, falling back to the ``time_format`` column per row."""

    def __init__(self, reward: str, relative: bool | None, use_temporal_tokens: bool | None, num_bins: int | None):
        for key, value in (("relative", relative), ("use_temporal_tokens", use_temporal_tokens)):
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"reward {reward!r}: option {key!r} must be true, false or null, got {value!r}")
        if num_bins is not None and (isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 2):
            raise ConfigError(f"reward {reward!r}: option 'num_bins' must be an integer >= 2, got {num_bins!r}")
        if use_temporal_tokens and num_bins is None:
            raise ConfigError(f"reward {reward!r}: use_temporal_tokens needs num_bins")
        self.reward = reward
        self.relative = relative
        self.use_temporal_tokens = use_temporal_tokens
        self.num_bins = num_bins

    def for_row(self, time_format: Any) -> dict[str, Any]:
        relative, tokens, bins = False, False, None
        if isinstance(time_format, str):
            if time_format == "relative":
                relative = True
            elif time_format.startswith("tokens:"):
                tokens = True
                try:
                    bins = int(time_format.split(":", 1)[1])
                except ValueError as exc:
                    raise ConfigError(f"reward {self.reward!r}: bad time_format {time_format!r}") from exc
            elif time_format != "seconds":
                raise ConfigError(f"reward {self.reward!r}: time_format must be 'seconds', 'relative' or "
                                  f"'tokens:N', got {time_format!r}")
        # An explicit factory option beats the column.
        if self.use_temporal_tokens is not None:
            tokens = self.use_temporal_tokens
        if self.num_bins is not None:
            bins = self.num_bins
        if self.relative is not None:
            relative = self.relative
        if tokens and bins is None:
            raise ConfigError(f"reward {self.reward!r}: temporal tokens need num_bins (option or 'tokens:N' column)")
        return {"relative": relative, "use_temporal_tokens": tokens, "num_bins": bins}


def _check_scale(reward: str, scale: Any) -> float:
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise ConfigError(f"reward {reward!r}: option 'scale' must be a finite number, got {scale!r}")
    return float(scale)


def _named(fn: RewardFn, name: str) -> RewardFn:
    fn.__name__ = name
    fn.__qualname__ = name
    return fn


def _parse_all(completions: Sequence[Any], kwargs: dict[str, Any], fmt: TimeFormatOptions,
               ) -> tuple[list[ParseResult | None], list[float | None]]:
    """Parse every completion with its row's time format; ``None`` where the format needs a duration."""
    n = len(completions)
    durations = [as_duration(d) for d in column(kwargs, "duration", n, fmt.reward, required=False)]
    formats = column(kwargs, "time_format", n, fmt.reward, required=False)
    parsed: list[ParseResult | None] = []
    for completion, duration, time_format in zip(completions, durations, formats, strict=True):
        opts = fmt.for_row(time_format)
        if (opts["relative"] or opts["use_temporal_tokens"]) and duration is None:
            parsed.append(None)  # cannot convert to seconds: not applicable, not the model's fault
            continue
        parsed.append(parse_segment(completion_text(completion), duration=duration, **opts))
    return parsed, durations


def _prediction(parsed: ParseResult, duration: float | None) -> tuple[float, float] | None:
    """The clipped prediction, or ``None`` for a failure or a reversed segment."""
    if not parsed.ok or parsed.value is None:
        return None
    start, end = parsed.value
    if start > end:
        return None
    return clip_segment((start, end), duration)


# -- rewards -------------------------------------------------------------------------------------

def temporal_iou(scale: float = 1.0, relative: bool | None = None, use_temporal_tokens: bool | None = None,
                 num_bins: int | None = None) -> RewardFn:
    """``scale`` x IoU of the answer with ``timestamp`` (0 unparseable / reversed; ``None`` without a ground truth)."""
    scale = _check_scale("temporal_iou", scale)
    fmt = TimeFormatOptions("temporal_iou", relative, use_temporal_tokens, num_bins)

    def reward(prompts: Any, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        gts = column(kwargs, "timestamp", len(completions), "temporal_iou")
        parsed, durations = _parse_all(completions, kwargs, fmt)
        out: list[float | None] = []
        for p, gt_value, duration in zip(parsed, gts, durations, strict=True):
            gt = as_segment(gt_value)
            if gt is None or p is None:
                out.append(None)
                continue
            pred = _prediction(p, duration)
            out.append(0.0 if pred is None else scale * segment_iou(pred, gt))
        return out

    return _named(reward, "temporal_iou")


def _coverage(inner: tuple[float, float], outer: tuple[float, float]) -> float:
    """Share of ``inner`` covered by ``outer``; an instant counts as covered if inside."""
    s, e = inner
    if e - s <= 0:
        return 1.0 if outer[0] <= s <= outer[1] else 0.0
    return max(0.0, min(e, outer[1]) - max(s, outer[0])) / (e - s)


def segment_overlap(mode: str = "recall", scale: float = 1.0, relative: bool | None = None,
                    use_temporal_tokens: bool | None = None, num_bins: int | None = None) -> RewardFn:
    """Overlap as a share of one segment.

    ``recall``: share of the ground truth covered by the prediction (rewards not missing the event);
    ``precision``: share of the prediction inside the ground truth (rewards not over-reaching).
    A zero-length segment counts as fully covered when it lies inside the other one.
    """
    if mode not in ("recall", "precision"):
        raise ConfigError(f"reward 'segment_overlap': option 'mode' must be 'recall' or 'precision', got {mode!r}")
    scale = _check_scale("segment_overlap", scale)
    fmt = TimeFormatOptions("segment_overlap", relative, use_temporal_tokens, num_bins)

    def reward(prompts: Any, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        gts = column(kwargs, "timestamp", len(completions), "segment_overlap")
        parsed, durations = _parse_all(completions, kwargs, fmt)
        out: list[float | None] = []
        for p, gt_value, duration in zip(parsed, gts, durations, strict=True):
            gt = as_segment(gt_value)
            if gt is None or gt[0] > gt[1] or p is None:
                out.append(None)
                continue
            pred = _prediction(p, duration)
            if pred is None:
                out.append(0.0)
            elif mode == "recall":
                out.append(scale * _coverage(gt, pred))
            else:
                out.append(scale * _coverage(pred, gt))
        return out

    return _named(reward, "segment_overlap")


def step_consistency(tolerance: float = 0.5, scale: float = 1.0, relative: bool | None = None,
                     use_temporal_tokens: bool | None = None, num_bins: int | None = None) -> RewardFn:
    """A ground-truth-free reward for a well-formed answer that agrees with its own reasoning.

    The mean of the checks that apply, times ``scale``:

    1. ordered: start <= end;
    2. in bounds: ``-tolerance <= start`` and ``end <= duration + tolerance`` (when ``duration`` is
       known);
    3. consistent: when the last ``<think>`` block states a segment (its last ``a to b`` pair), the
       IoU of that segment with the answer, so the answer follows from the steps.

    An unparseable answer scores 0.0. It needs no ``timestamp`` column, so it also shapes rows
    without a ground truth; ``None`` only where the time format needs a missing duration.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not (
            math.isfinite(tolerance) and tolerance >= 0):
        raise ConfigError(f"reward 'step_consistency': option 'tolerance' must be a number >= 0, got {tolerance!r}")
    scale = _check_scale("step_consistency", scale)
    fmt = TimeFormatOptions("step_consistency", relative, use_temporal_tokens, num_bins)

    def reward(prompts: Any, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        parsed, durations = _parse_all(completions, kwargs, fmt)
        formats = column(kwargs, "time_format", len(completions), "step_consistency", required=False)
        out: list[float | None] = []
        for completion, p, duration, time_format in zip(completions, parsed, durations, formats, strict=True):
            if p is None:
                out.append(None)
                continue
            if not p.ok or p.value is None:
                out.append(0.0)
                continue
            start, end = p.value
            checks = [1.0 if start <= end else 0.0]
            if duration is not None:
                checks.append(1.0 if -tolerance <= start and end <= duration + tolerance else 0.0)
            thought = parse_segment(completion_text(completion), duration=duration, search_think=True,
                                    **fmt.for_row(time_format))
            if thought.ok and thought.value is not None:
                a = tuple(sorted(thought.value))
                b = tuple(sorted((start, end)))
                checks.append(segment_iou(a, b))
            out.append(scale * sum(checks) / len(checks))
        return out

    return _named(reward, "step_consistency")
