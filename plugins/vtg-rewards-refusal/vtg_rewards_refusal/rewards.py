"""The RA-RFT rewards (seed 001), with TRL's reward signature: ``format``, ``refuse_iou``, ``explain_correction``.

Each factory returns ``fn(prompts, completions, **columns) -> list[float | None]`` named after the
reward, so TRL logs ``rewards/<name>/mean``. Completions are read by :func:`.parser.parse_refusal`,
the parser evaluation uses.

Columns read (what :meth:`RefusalGroundingTask.reward_columns` writes; raw RIQ rows work too):

- ``task_type``: ``answerable`` | ``refusable``; ``None`` in a row means "not a refusal-aware
  row" and the reward is ``None`` there (not applicable), so these rewards can share a run with
  other tasks' rows.
- ``gt_answers``: ``[[start, end], ...]`` or RIQ's ``[{"answer": [start, end]}, ...]``; the
  refusable marker ``[-1, -1]`` is ignored.
- ``duration``: clip seconds (``refuse_iou`` normalises the boundary errors by it).
- ``refusable_queries``: the correction references of a refusable row.
- ``time_format`` (optional): ``seconds`` | ``relative``, how answers are written.

Definitions (seed 001):

- ``format``: 1.0 when the whole completion is ``<think>..</think> <answer>..</answer>
  <correction>..</correction>`` (see :func:`.parser.is_well_formed`), else 0.0.
- ``refuse_iou``: answerable with a timestamp -> ``IoU x start_acc x end_acc`` with
  ``start_acc = 1 - |gt_start - pred_start| / duration`` (same for the end); answerable without
  one -> 0; refusable without a timestamp -> 1; refusable with one -> 0.
- ``explain_correction``: the refusal score (answerable: 1 with a timestamp; refusable: 1
  without) plus, for refusable rows, ``max(0, best SBERT cosine(correction, references) - 0.5)``.
  Range [0, 1.5] on refusable rows, [0, 1] on answerable ones.

Decisions where the seed is silent:

- A parse failure (no answer at all, see the parser) scores 0 in ``refuse_iou`` and
  ``explain_correction``: silence is not a refusal.
- Several ground-truth segments: the best-scoring one counts.
- The predicted segment is clipped to ``[0, duration]`` before IoU and the boundary accuracies, as
  the core metrics clip it; a reversed segment has IoU 0.
- The correction bonus is added whether or not the model refused (the seed's formula adds it
  for every refusable query); a ``NIL`` or missing correction gets no bonus, and so does a row
  without references.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from vtg_core.errors import ConfigError
from vtg_core.rewards.temporal import as_duration, column, completion_text
from vtg_core.tasks.temporal_grounding.metrics import clip_segment, segment_iou

from .parser import correction, has_timestamp, is_well_formed, parse_refusal, refused
from .sbert import DEFAULT_BATCH_SIZE, DEFAULT_CACHE_SIZE, Embedder, lazy_embedder
from .schema import ANSWERABLE, REFUSABLE, gt_segments

RewardFn = Callable[..., list[float | None]]

DEFAULT_THRESHOLD = 0.5


def _named(fn: RewardFn, name: str) -> RewardFn:
    fn.__name__ = fn.__qualname__ = name
    return fn


def _task_types(kwargs: dict[str, Any], n: int, reward: str) -> list[str | None]:
    types = column(kwargs, "task_type", n, reward)
    for value in types:
        if value is not None and value not in (ANSWERABLE, REFUSABLE):
            raise ConfigError(f"reward {reward!r}: task_type must be {ANSWERABLE!r} or {REFUSABLE!r}, got {value!r}")
    return types


def _relative(reward: str, relative: bool | None, time_format: Any) -> bool:
    if relative is not None:
        return relative
    if time_format in (None, "seconds"):
        return False
    if time_format == "relative":
        return True
    raise ConfigError(f"reward {reward!r}: time_format must be 'seconds' or 'relative', got {time_format!r}")


def _check_relative(reward: str, relative: Any) -> None:
    if relative is not None and not isinstance(relative, bool):
        raise ConfigError(f"reward {reward!r}: option 'relative' must be true, false or null, got {relative!r}")


def _parse_all(reward: str, completions: Sequence[Any], kwargs: dict[str, Any], relative: bool | None) -> list[Any]:
    n = len(completions)
    durations = column(kwargs, "duration", n, reward, required=False)
    formats = column(kwargs, "time_format", n, reward, required=False)
    return [parse_refusal(completion_text(c), duration=as_duration(d), relative=_relative(reward, relative, f))
            for c, d, f in zip(completions, durations, formats, strict=True)]


def boundary_score(pred: tuple[float, float], gt: tuple[float, float], duration: float) -> float:
    """``IoU x (1 - |start error| / duration) x (1 - |end error| / duration)`` (seed 001), clipped."""
    start, end = clip_segment(pred, duration)
    iou = segment_iou((start, end), gt)
    if iou <= 0.0:
        return 0.0
    start_acc = 1.0 - abs(gt[0] - start) / duration
    end_acc = 1.0 - abs(gt[1] - end) / duration
    return max(0.0, iou * start_acc * end_acc)


def format_reward() -> RewardFn:
    """``format``: 1.0 for exactly the three tags in order (full match), else 0.0."""

    def reward(prompts: Any, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        return [1.0 if is_well_formed(completion_text(c)) else 0.0 for c in completions]

    return _named(reward, "format")


def refuse_iou(relative: bool | None = None) -> RewardFn:
    """``refuse_iou``: timestamp quality on answerable rows, 1 for refusing refusable ones.

    ``relative`` (default: the ``time_format`` column, else seconds) reads answers as fractions.
    """
    _check_relative("refuse_iou", relative)

    def reward(prompts: Any, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        types = _task_types(kwargs, n, "refuse_iou")
        answers = column(kwargs, "gt_answers", n, "refuse_iou")
        durations = column(kwargs, "duration", n, "refuse_iou")
        parsed = _parse_all("refuse_iou", completions, kwargs, relative)
        out: list[float | None] = []
        for task_type, gt, duration, p in zip(types, answers, durations, parsed, strict=True):
            if task_type is None:
                out.append(None)
            elif task_type == REFUSABLE:
                out.append(1.0 if refused(p) else 0.0)
            elif not has_timestamp(p):
                out.append(0.0)
            else:
                d = as_duration(duration)
                segments = gt_segments(gt)
                if d is None or not segments:
                    raise ConfigError(f"reward 'refuse_iou': an answerable row needs a positive 'duration' and "
                                      f"a gt_answers segment, got duration={duration!r}, gt_answers={gt!r}")
                pred = tuple(p.value["segment"])
                out.append(max(boundary_score(pred, s, d) for s in segments))
        return out

    return _named(reward, "refuse_iou")


def explain_correction(model: str | None = None, threshold: float = DEFAULT_THRESHOLD, device: str | None = None,
                       batch_size: int = DEFAULT_BATCH_SIZE, cache_size: int = DEFAULT_CACHE_SIZE,
                       relative: bool | None = None, embedder: Embedder | None = None) -> RewardFn:
    """``explain_correction``: refusal score + ``max(0, best SBERT similarity - threshold)`` on refusable rows.

    ``model``: a sentence-transformers model path or id (default: the packaged all-MiniLM-L6-v2);
    ``device`` (default ``cuda:<LOCAL_RANK>`` or ``cpu``), ``batch_size``, ``cache_size``: how it
    runs; ``threshold`` (0.5): the similarity above which a correction earns a bonus. The model
    loads on the first batch that needs a similarity. ``embedder`` replaces it (tests).
    """
    _check_relative("explain_correction", relative)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
            math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
        raise ConfigError(f"reward 'explain_correction': option 'threshold' must be a number in [-1, 1] "
                          f"(a cosine similarity), got {threshold!r}")
    get_embedder = (lambda: embedder) if embedder is not None else lazy_embedder(
        model, device=device, batch_size=batch_size, cache_size=cache_size)

    def reward(prompts: Any, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        types = _task_types(kwargs, n, "explain_correction")
        refs_column = column(kwargs, "refusable_queries", n, "explain_correction", required=False)
        parsed = _parse_all("explain_correction", completions, kwargs, relative)
        out: list[float | None] = []
        queries: list[str] = []
        references: list[list[str]] = []
        needs: list[int] = []
        for i, (task_type, refs, p) in enumerate(zip(types, refs_column, parsed, strict=True)):
            if task_type is None:
                out.append(None)
                continue
            if task_type == ANSWERABLE:
                out.append(1.0 if has_timestamp(p) else 0.0)
                continue
            out.append(1.0 if refused(p) else 0.0)
            text = correction(p)
            refs = [str(r) for r in (refs or []) if isinstance(r, str) and r.strip()]
            if text and refs:
                needs.append(i)
                queries.append(text)
                references.append(refs)
        if needs:
            # One batched pass over the whole GRPO batch; references come from the cache.
            similarities = get_embedder().best_similarity(queries, references)
            for i, sim in zip(needs, similarities, strict=True):
                if sim is not None:
                    out[i] = float(out[i]) + max(0.0, sim - float(threshold))
        return out

    return _named(reward, "explain_correction")
