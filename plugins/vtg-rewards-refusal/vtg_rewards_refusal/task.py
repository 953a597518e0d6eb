"""The ``refusal_grounding`` task object: what ``TaskSpec("refusal_grounding").load()(**options)`` returns.

Refusal-aware temporal grounding with query correction (RA-RFT, seed 001): answer *when* for
answerable queries, refuse queries the video does not show and propose a corrected query. SFT,
GRPO and evaluation share this object's prompt builder, target writer, parser and scorer.

Options (``task_options`` in the config):

- ``use_relative_timestamps`` (False): times as fractions of the clip instead of seconds. Not
  taken from the ``temporal:`` section, whose default (relative) suits the core's grounding demo,
  not RA-RFT, which answers in seconds.
- ``prompt_template`` (``"random"``): a template index or a seeded per-sample choice; ``seed`` (0).
- ``tolerance`` (0.5 s): how far past the clip an annotated end may go (then clamped).
- ``system_prompt`` (None); ``refusal_text``: the refusal sentence prompts and SFT targets use
  (it must hold no times, or it would read as a segment).
- ``sbert_model`` (None = the packaged all-MiniLM-L6-v2), ``sbert_device``: the model the
  ``correction_similarity`` metric uses; ``correction_metric`` (True) turns that metric off.
- ``curriculum``: settings of the ``refusal_curriculum`` sampler (see :mod:`.curriculum`); the
  core has no per-sampler options, so they live with the task they belong to.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Sequence
from typing import Any

from vtg_core.data.annotations import InvalidPolicy, LoadReport, PolicyMode, load_samples
from vtg_core.data.sample import Location, Sample
from vtg_core.errors import ConfigError, DataError
from vtg_core.tasks.base import ParseResult, RowProblem
from vtg_core.tasks.temporal_grounding.parser import parse_segment
from vtg_core.tasks.temporal_grounding.prompts import TimeFormat, stable_rng

from . import prompts
from .curriculum import CurriculumOptions
from .metrics import METRIC_NAMES, as_list, refusal_metrics, refusal_metrics_by, sample_scores
from .parser import correction, parse_refusal
from .schema import DEFAULT_TOLERANCE, REFUSABLE, Truth, row_to_sample

DEFAULT_REWARDS: tuple[dict[str, Any], ...] = (
    # Seed 001: the three rewards summed with equal weight.
    {"name": "format", "weight": 1.0},
    {"name": "refuse_iou", "weight": 1.0},
    {"name": "explain_correction", "weight": 1.0},
)

_DEFAULTS: dict[str, Any] = {
    "use_relative_timestamps": False,
    "prompt_template": "random",
    "tolerance": DEFAULT_TOLERANCE,
    "seed": 0,
    "system_prompt": None,
    "refusal_text": prompts.DEFAULT_REFUSAL,
    "sbert_model": None,
    "sbert_device": None,
    "correction_metric": True,
    "curriculum": None,
}


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"refusal_grounding option {name!r} must be true or false, got {value!r}")
    return value


def _optional_text(name: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"refusal_grounding option {name!r} must be a non-empty string or null, got {value!r}")
    return value


class RefusalGroundingTask:
    """Refusal-aware grounding: video + query -> segment and ``NIL``, or refusal and correction."""

    name = "refusal_grounding"
    default_rewards = DEFAULT_REWARDS
    metric_names = METRIC_NAMES
    #: The answer starts with <think> reasoning: evaluation generates the GRPO completion length,
    #: not the 32 tokens a bare grounding answer needs (read by ``vtg eval``).
    think = True

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(_DEFAULTS))
        if unknown:
            raise ConfigError(f"refusal_grounding: unknown option(s) {unknown}; known: {sorted(_DEFAULTS)}")
        opts = {**_DEFAULTS, **options}
        self.use_relative_timestamps = _bool("use_relative_timestamps", opts["use_relative_timestamps"])
        self.correction_metric = _bool("correction_metric", opts["correction_metric"])
        template = opts["prompt_template"]
        valid_index = (isinstance(template, int) and not isinstance(template, bool)
                       and 0 <= template < len(prompts.TEMPLATES))
        if template != "random" and not valid_index:
            raise ConfigError(f"refusal_grounding option 'prompt_template' must be 'random' or an index in "
                              f"[0, {len(prompts.TEMPLATES) - 1}], got {template!r}")
        self.prompt_template = template
        tolerance = opts["tolerance"]
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not (
                math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(f"refusal_grounding option 'tolerance' must be a number >= 0 (seconds), got {tolerance!r}")
        self.tolerance = float(tolerance)
        if isinstance(opts["seed"], bool) or not isinstance(opts["seed"], int):
            raise ConfigError(f"refusal_grounding option 'seed' must be an integer, got {opts['seed']!r}")
        self.seed = opts["seed"]
        self.system_prompt = _optional_text("system_prompt", opts["system_prompt"])
        refusal = _optional_text("refusal_text", opts["refusal_text"]) or prompts.DEFAULT_REFUSAL
        if parse_segment(f"<answer>{refusal}</answer>", duration=None).ok:
            raise ConfigError(f"refusal_grounding option 'refusal_text' {refusal!r} reads as a time segment; "
                              "a refusal must hold no times")
        self.refusal_text = refusal.strip()
        self.sbert_model = opts["sbert_model"]
        self.sbert_device = _optional_text("sbert_device", opts["sbert_device"])
        self.curriculum = CurriculumOptions.from_mapping(opts["curriculum"])
        self.time_format = TimeFormat(relative=self.use_relative_timestamps)
        self._embedder_fn: Any = None
        if self.correction_metric:
            from .sbert import lazy_embedder

            self._embedder_fn = lazy_embedder(self.sbert_model, device=self.sbert_device)

    def make_demo_data(self, directory: str | os.PathLike[str], *, seed: int) -> dict[str, Any]:
        """``vtg train --task refusal_grounding`` with no data: a generated RIQ set, half refusable."""
        from .synthetic import make_riq_dataset

        paths: dict[str, Any] = make_riq_dataset(directory, num_train=48, num_val=16, seed=seed,
                                                 duration_range=(3.0, 5.0))
        # Fewer epochs than the grounding demo: a GRPO step here costs num_generations rollouts.
        paths["overrides"] = ["training.num_train_epochs=1", "video.max_frames=8", "rl.max_completion_length=32"]
        return paths

    def __repr__(self) -> str:
        return (f"RefusalGroundingTask(time_format={self.time_format.name!r}, "
                f"prompt_template={self.prompt_template!r}, tolerance={self.tolerance})")

    # -- data ---------------------------------------------------------------------------------
    def validate_row(self, where: Location, row: dict[str, Any], *, video_dir: str | None = None
                     ) -> Sample | list[RowProblem]:
        """One RIQ row -> sample, or its problems (see :mod:`.schema`)."""
        return row_to_sample(where, row, video_dir=video_dir, tolerance=self.tolerance)

    def load_with_report(self, path: str | os.PathLike[str], *, video_dir: str | None = None,
                         policy: InvalidPolicy | PolicyMode | None = "skip",
                         max_invalid_fraction: float | None = None) -> tuple[list[Sample], LoadReport]:
        """Read and validate a RIQ file (JSON array or JSON Lines); apply the invalid-row policy."""
        return load_samples(path, lambda where, row: self.validate_row(where, row, video_dir=video_dir),
                            policy, max_invalid_fraction=max_invalid_fraction)

    def load(self, path: str | os.PathLike[str], *, video_dir: str | None = None,
             policy: InvalidPolicy | PolicyMode | None = "skip",
             max_invalid_fraction: float | None = None) -> tuple[list[Sample], list[RowProblem]]:
        """The valid samples and the problems of the rejected rows (policies as the core's tasks)."""
        samples, report = self.load_with_report(path, video_dir=video_dir, policy=policy,
                                                max_invalid_fraction=max_invalid_fraction)
        return samples, report.problems

    # -- prompting ----------------------------------------------------------------------------
    def template_index(self, sample: Sample, rng: random.Random | None = None) -> int:
        """The fixed template, or a draw from ``rng`` (default: the sample's own seeded generator)."""
        if self.prompt_template != "random":
            return self.prompt_template
        return (rng or stable_rng(sample.id, self.seed)).randrange(len(prompts.TEMPLATES))

    def build_messages(self, sample: Sample, *, rng: random.Random | None = None) -> list[dict[str, Any]]:
        """The conversation; needs no ground truth (``vtg predict`` builds samples without one)."""
        _require_duration(sample)
        return prompts.build_messages(sample, self.time_format, template_index=self.template_index(sample, rng),
                                      system_prompt=self.system_prompt, refusal=self.refusal_text)

    def target(self, sample: Sample) -> str:
        _require(sample)
        return prompts.target(sample, self.time_format, self.refusal_text)

    # -- reading answers and scoring ------------------------------------------------------------
    def parse(self, text: str, sample: Sample) -> ParseResult:
        return parse_refusal(text, duration=sample.duration, relative=self.use_relative_timestamps)

    def _similarities(self, parsed: Sequence[ParseResult], samples: Sequence[Sample]) -> list[float | None]:
        out: list[float | None] = [None] * len(samples)
        if self._embedder_fn is None:
            return out
        wanted = [i for i, (p, s) in enumerate(zip(parsed, samples, strict=True))
                  if s.answer.refusable and s.answer.references and correction(p)]
        if wanted:
            sims = self._embedder_fn().best_similarity([correction(parsed[i]) for i in wanted],
                                                       [list(samples[i].answer.references) for i in wanted])
            for i, sim in zip(wanted, sims, strict=True):
                out[i] = sim
        return out

    def coerce(self, parsed: ParseResult, sample: Sample) -> ParseResult:
        """A parse result in this task's form, whatever produced it.

        ``vtg eval --from-pred`` hands the rows' stored ``pred`` over as a parse result: raw model
        text is parsed here, ``[start, end]`` is a segment, and ``[-1, -1]`` or ``null`` a refusal.
        """
        value = parsed.value
        if not parsed.ok or isinstance(value, dict):
            return parsed
        if isinstance(value, str):
            return self.parse(value, sample)
        if value is None:
            return ParseResult(True, {"segment": None, "refused": True, "correction": None, "well_formed": False})
        if isinstance(value, list | tuple) and len(value) == 2 and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            segment = None if tuple(float(v) for v in value) == (-1.0, -1.0) else [float(v) for v in value]
            return ParseResult(True, {"segment": segment, "refused": segment is None, "correction": None,
                                      "well_formed": False})
        return ParseResult(False, None, f"cannot read a prediction from {value!r}")

    def score(self, parsed: ParseResult, sample: Sample) -> dict[str, float]:
        """Per-sample scores (:func:`.metrics.sample_scores`); one SBERT call for a refusable sample."""
        return self.score_batch([parsed], [sample])[0]

    def score_batch(self, parsed: Sequence[ParseResult], samples: Sequence[Sample]) -> list[dict[str, float]]:
        """:meth:`score` for many samples with one batched SBERT pass (references cached)."""
        for sample in samples:
            _require(sample)
        parsed = [self.coerce(p, s) for p, s in zip(parsed, samples, strict=True)]
        sims = self._similarities(parsed, samples)
        scores = [sample_scores(p, s.answer, s.duration, sim) for p, s, sim in zip(parsed, samples, sims, strict=True)]
        if self._embedder_fn is None:
            for s in scores:  # without the model there is no similarity to report
                s.pop("correction_similarity", None)
        return scores

    def aggregate(self, scores: Sequence[dict[str, float]], parsed: Iterable[ParseResult]) -> dict[str, float]:
        """Refusal accuracy / precision / recall / F1, refusal-aware R1@k and mIoU (%), corrections."""
        metrics = refusal_metrics(scores, as_list(parsed))
        if self._embedder_fn is None:
            metrics.pop("correction_similarity", None)
        return metrics

    def metrics_by(self, scores: Sequence[dict[str, float]], parsed: Sequence[ParseResult],
                   samples: Sequence[Sample], by: str) -> dict[str, dict[str, float]]:
        """:meth:`aggregate` per value of ``sample.metadata[by]`` (``difficulty``, ``task_type``...)."""
        return refusal_metrics_by(scores, as_list(parsed), [s.metadata for s in samples], by)

    def reward_columns(self, sample: Sample) -> dict[str, Any]:
        """The columns the rewards read (GRPO puts them in each row); see :mod:`.rewards`.

        ``timestamp`` (the first segment, ``None`` for refusable rows) lets the core's grounding
        rewards share a run: they skip rows without one.
        """
        _require(sample)
        truth: Truth = sample.answer
        segments = [[float(s), float(e)] for s, e in truth.segments] or [[-1.0, -1.0]]
        return {
            "task_type": truth.task_type,
            "gt_answers": segments,
            "refusable_queries": list(truth.references),
            "duration": sample.duration,
            "time_format": self.time_format.name,
            "timestamp": segments[0] if truth.task_type != REFUSABLE else None,
        }


def _require_duration(sample: Sample) -> None:
    if not sample.duration or sample.duration <= 0:
        raise DataError(f"sample {sample.id!r} ({sample.source}) has no positive duration")


def _require(sample: Sample) -> None:
    if not isinstance(sample.answer, Truth):
        raise DataError(f"sample {sample.id!r} ({sample.source}) was not read by the refusal_grounding task "
                        f"(its answer is {type(sample.answer).__name__}, not a refusal-aware ground truth)")
    _require_duration(sample)
