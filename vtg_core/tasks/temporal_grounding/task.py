"""The temporal-grounding task object: what ``TaskSpec("temporal_grounding").load()(**options)`` returns.

It bundles the pieces of this package behind the :class:`~vtg_core.tasks.base.Task` protocol, so
SFT, GRPO and evaluation share one prompt builder, one target writer, one parser and one scorer.
Options (``task_options`` in the config, plus the ``temporal:`` section):

- ``use_relative_timestamps`` (False): write / read times as fractions of the clip, not seconds.
- ``use_temporal_tokens`` (False) and ``num_bins`` (100): write / read times as ``<i>`` tokens;
  :attr:`extra_tokens` lists them for the backend to add; ``embedding_init_strategy`` says how
  their embeddings start (``sinusoidal`` | ``mean`` | ``random``).
- ``prompt_template`` (``"random"``): a template index, or ``"random"`` for a per-sample choice
  (seeded by ``seed`` and the sample id unless an ``rng`` is passed).
- ``tolerance`` (0.5 s): how far past the clip an annotated time may go (it is then clamped).
- ``think`` (False): ask for ``<think>`` reasoning before the answer (GRPO).
- ``system_prompt`` (None): a system turn to put first.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Sequence
from typing import Any

from ...data.annotations import InvalidPolicy, LoadReport, PolicyMode, load_samples
from ...data.sample import Location, Sample
from ...errors import ConfigError, DataError
from ..base import ParseResult, RowProblem
from . import prompts
from .metrics import METRIC_NAMES, grounding_metrics, metrics_by, prediction_iou
from .parser import parse_segment
from .schema import DEFAULT_TOLERANCE, row_to_sample
from .temporal_tokens import MAX_BINS, STRATEGIES, temporal_token_strings

DEFAULT_REWARDS: tuple[dict[str, Any], ...] = (
    {"name": "temporal_iou", "weight": 1.0},
    {"name": "segment_overlap", "weight": 0.5, "mode": "recall"},
)

_DEFAULTS: dict[str, Any] = {
    "use_relative_timestamps": False,
    "use_temporal_tokens": False,
    "num_bins": 100,
    "embedding_init_strategy": "sinusoidal",
    "prompt_template": "random",
    "tolerance": DEFAULT_TOLERANCE,
    "seed": 0,
    "think": False,
    "system_prompt": None,
}


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"temporal_grounding option {name!r} must be true or false, got {value!r}")
    return value


class TemporalGroundingTask:
    """Temporal grounding: video + sentence -> ``(start, end)`` seconds. See the module docstring."""

    name = "temporal_grounding"
    default_rewards = DEFAULT_REWARDS
    metric_names = METRIC_NAMES

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(_DEFAULTS))
        if unknown:
            raise ConfigError(f"temporal_grounding: unknown option(s) {unknown}; known: {sorted(_DEFAULTS)}")
        opts = {**_DEFAULTS, **options}
        self.use_relative_timestamps = _bool("use_relative_timestamps", opts["use_relative_timestamps"])
        self.use_temporal_tokens = _bool("use_temporal_tokens", opts["use_temporal_tokens"])
        self.think = _bool("think", opts["think"])
        num_bins = opts["num_bins"]
        if isinstance(num_bins, bool) or not isinstance(num_bins, int) or not 2 <= num_bins <= MAX_BINS:
            raise ConfigError(f"temporal_grounding option 'num_bins' must be an integer in [2, {MAX_BINS}], "
                              f"got {num_bins!r}")
        self.num_bins = num_bins
        if opts["embedding_init_strategy"] not in STRATEGIES:
            raise ConfigError(f"temporal_grounding option 'embedding_init_strategy' must be one of {STRATEGIES}, "
                              f"got {opts['embedding_init_strategy']!r}")
        self.embedding_init_strategy = opts["embedding_init_strategy"]
        template = opts["prompt_template"]
        valid_index = isinstance(template, int) and not isinstance(template, bool) and 0 <= template < len(prompts.TEMPLATES)
        if template != "random" and not valid_index:
            raise ConfigError(f"temporal_grounding option 'prompt_template' must be 'random' or an index in "
                              f"[0, {len(prompts.TEMPLATES) - 1}], got {template!r}")
        self.prompt_template = template
        tolerance = opts["tolerance"]
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not (
                math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(f"temporal_grounding option 'tolerance' must be a number >= 0 (seconds), got {tolerance!r}")
        self.tolerance = float(tolerance)
        if isinstance(opts["seed"], bool) or not isinstance(opts["seed"], int):
            raise ConfigError(f"temporal_grounding option 'seed' must be an integer, got {opts['seed']!r}")
        self.seed = opts["seed"]
        if opts["system_prompt"] is not None and not isinstance(opts["system_prompt"], str):
            raise ConfigError("temporal_grounding option 'system_prompt' must be a string or null")
        self.system_prompt = opts["system_prompt"]
        self.time_format = prompts.TimeFormat(relative=self.use_relative_timestamps,
                                              use_temporal_tokens=self.use_temporal_tokens, num_bins=self.num_bins)

    def __repr__(self) -> str:
        return (f"TemporalGroundingTask(time_format={self.time_format.name!r}, "
                f"prompt_template={self.prompt_template!r}, tolerance={self.tolerance})")

    # -- data ---------------------------------------------------------------------------------
    def validate_row(self, where: Location, row: dict[str, Any], *, video_dir: str | None = None
                     ) -> Sample | list[RowProblem]:
        """One row -> sample, or its problems."""
        return row_to_sample(where, row, video_dir=video_dir, tolerance=self.tolerance)

    def load_with_report(self, path: str | os.PathLike[str], *, video_dir: str | None = None,
                         policy: InvalidPolicy | PolicyMode | None = "skip",
                         max_invalid_fraction: float | None = None) -> tuple[list[Sample], LoadReport]:
        """Read and validate an annotation file; apply the invalid-row policy; return the report."""
        return load_samples(path, lambda where, row: self.validate_row(where, row, video_dir=video_dir),
                            policy, max_invalid_fraction=max_invalid_fraction)

    def load(self, path: str | os.PathLike[str], *, video_dir: str | None = None,
             policy: InvalidPolicy | PolicyMode | None = "skip",
             max_invalid_fraction: float | None = None) -> tuple[list[Sample], list[RowProblem]]:
        """The valid samples and the problems of the rejected rows (see :meth:`load_with_report`).

        ``policy``: ``skip`` (default; logs skipped rows, raises above ``max_invalid_fraction``,
        default 0.05), ``fail`` (raises on the first invalid row), ``report``/``None`` (never raises).
        """
        samples, report = self.load_with_report(path, video_dir=video_dir, policy=policy,
                                                max_invalid_fraction=max_invalid_fraction)
        return samples, report.problems

    # -- prompting ----------------------------------------------------------------------------
    @property
    def extra_tokens(self) -> list[str]:
        """Tokens the backend must add to the tokenizer (the temporal tokens, when used)."""
        return temporal_token_strings(self.num_bins) if self.use_temporal_tokens else []

    def template_index(self, sample: Sample, rng: random.Random | None = None) -> int:
        if self.prompt_template == "random" and rng is None:
            rng = prompts.stable_rng(sample.id, self.seed)
        return prompts.choose_template(self.prompt_template, rng or random.Random(self.seed))

    def build_messages(self, sample: Sample, *, rng: random.Random | None = None) -> list[dict[str, Any]]:
        """The conversation: optional system turn, then the user turn with the video and the prompt."""
        _require_duration(sample)
        return prompts.build_messages(sample, self.time_format, template_index=self.template_index(sample, rng),
                                      system_prompt=self.system_prompt, think=self.think)

    def target(self, sample: Sample) -> str:
        """``<answer>12.5 to 15.0</answer>`` (or relative / token form per the options)."""
        _require_answer(sample)
        _require_duration(sample)
        return prompts.target(sample, self.time_format)

    # -- reading answers and scoring ------------------------------------------------------------
    def parse(self, text: str, sample: Sample) -> ParseResult:
        return parse_segment(text, duration=sample.duration, relative=self.use_relative_timestamps,
                             num_bins=self.num_bins, use_temporal_tokens=self.use_temporal_tokens)

    def score(self, parsed: ParseResult, sample: Sample) -> dict[str, float]:
        """``{"iou": 0..1}``: 0 for a failure or a reversed answer; the prediction is clipped to the clip."""
        _require_answer(sample)
        return {"iou": prediction_iou(parsed, sample.answer, sample.duration)}

    def aggregate(self, scores: Sequence[dict[str, float]], parsed: Iterable[ParseResult]) -> dict[str, float]:
        """R1@0.3/0.5/0.7 and mIoU in percent, parse_failure_rate as a fraction, num_samples."""
        return grounding_metrics([s["iou"] for s in scores], [p.ok for p in parsed])

    def metrics_by(self, scores: Sequence[dict[str, float]], parsed: Sequence[ParseResult],
                   samples: Sequence[Sample], by: str) -> dict[str, dict[str, float]]:
        """:meth:`aggregate` per value of ``sample.metadata[by]`` (e.g. ``by="difficulty"``)."""
        return metrics_by([s["iou"] for s in scores], [p.ok for p in parsed], [s.metadata for s in samples], by)

    def reward_columns(self, sample: Sample) -> dict[str, Any]:
        """The data-set columns the built-in rewards read (GRPO puts them in each row).

        ``timestamp``: ground truth ``[start, end]`` seconds; ``duration``: clip seconds;
        ``time_format``: how answers are written (``seconds`` / ``relative`` / ``tokens:N``).
        """
        return {
            "timestamp": list(sample.answer) if sample.answer is not None else None,
            "duration": sample.duration,
            "time_format": self.time_format.name,
        }


def _require_answer(sample: Sample) -> None:
    if sample.answer is None:
        raise DataError(f"sample {sample.id!r} ({sample.source}) has no ground-truth timestamp")


def _require_duration(sample: Sample) -> None:
    if not sample.duration or sample.duration <= 0:
        raise DataError(f"sample {sample.id!r} ({sample.source}) has no positive duration")
