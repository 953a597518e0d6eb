"""The ``dashcam_mcq`` task object: what ``TaskSpec("dashcam_mcq").load()(**options)`` returns.

Road Buddy (seed 003): a traffic question about a dashcam clip, answered with a letter. SFT,
GRPO, evaluation and ``vtg predict`` share this object's loader, frame sampling, prompts, parser
and metrics. Options (``task_options`` in the config):

- ``language`` (``"auto"``): prompt language, ``vi`` / ``en``, or detected per question.
- ``min_frames`` (4), ``max_frames`` (6), ``frames_per_support`` (3), ``support_window`` (0.5 s),
  ``use_support_frames`` (True): frame sampling, see :mod:`.frames`. They replace
  ``video.max_frames`` / ``video.sampling_strategy`` for this task; ``video.resolution`` /
  ``video.max_pixels`` and the frame cache still apply.
- ``fallback_letter`` (``"A"``, seed 003's default): the letter a submission gets for an answer
  that does not parse (``vtg predict --submission`` counts and lists those rows).
- ``system_prompt`` (None): a system turn to put first.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from vtg_core.data.annotations import InvalidPolicy, LoadReport, PolicyMode, collect
from vtg_core.data.sample import Location, Sample
from vtg_core.errors import ConfigError, DataError
from vtg_core.tasks.base import ParseResult, RowProblem

from . import prompts
from .frames import FrameOptions, load_support_frames
from .metrics import METRIC_NAMES, mcq_metrics, sample_scores, tables
from .parser import PARSER_VERSION, parse_letter
from .schema import LETTERS, iter_rows, row_to_sample

DEFAULT_REWARDS: tuple[dict[str, Any], ...] = (
    {"name": "mcq_accuracy", "weight": 1.0},
    {"name": "mcq_format", "weight": 0.5},
)

_DEFAULTS: dict[str, Any] = {
    "language": "auto",
    "min_frames": 4,
    "max_frames": 6,
    "frames_per_support": 3,
    "support_window": 0.5,
    "use_support_frames": True,
    "fallback_letter": "A",
    "system_prompt": None,
}


class DashcamMCQTask:
    """Dashcam multiple-choice video QA (Road Buddy). See the module docstring."""

    name = "dashcam_mcq"
    default_rewards = DEFAULT_REWARDS
    metric_names = METRIC_NAMES
    parser_version = PARSER_VERSION
    prompt_templates = [prompts.user_prompt("{question}", ["A", "B"], ["{choice A}", "{choice B}"], lang)
                        for lang in prompts.LANGUAGES]
    #: A letter, maybe with its choice's text: no need for the default 32 tokens.
    default_max_new_tokens = 24
    #: Held-out metric that picks the best epoch's checkpoint (:mod:`vtg_core.train.epoch_eval`).
    best_metric = ("accuracy", "max")
    #: Seed 003's training settings, applied by ``vtg train`` under what the user's config files
    #: and ``--set`` say (:mod:`vtg_core.config.task_defaults`). q/k/v/o projections exist in the
    #: language models of InternVL3 (Qwen2), Qwen2.5-VL and Qwen3-VL alike; seed 003's
    #: ``qkv_proj`` / ``out_proj`` do not exist in transformers' native InternVL classes.
    config_defaults: dict[str, Any] = {
        "model.name_or_path": "OpenGVLab/InternVL3-8B-hf",
        "dataset.video_dir": None,  # video_path is relative to the data root (see .schema)
        "lora.enabled": True,
        "lora.r": 32,
        "lora.lora_alpha": 64,
        "lora.lora_dropout": 0.05,
        "lora.target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "validation.annotation_file": None,
        "validation.split_fraction": 0.2,
        "training.eval_strategy": "epoch",
        "training.num_train_epochs": 5,
        "training.learning_rate": 2e-4,
        "training.per_device_train_batch_size": 4,
        "training.gradient_accumulation_steps": 4,
        "training.warmup_ratio": 0.1,
        "training.weight_decay": 0.01,
        "training.lr_scheduler_type": "cosine",
        "training.output_dir": "./outputs/dashcam_mcq",
    }

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(_DEFAULTS))
        if unknown:
            raise ConfigError(f"dashcam_mcq: unknown option(s) {unknown}; known: {sorted(_DEFAULTS)}")
        opts = {**_DEFAULTS, **options}
        if opts["language"] not in ("auto", *prompts.LANGUAGES):
            raise ConfigError(f"dashcam_mcq option 'language' must be auto, vi or en, got {opts['language']!r}")
        self.language = opts["language"]
        self.frames = FrameOptions(min_frames=opts["min_frames"], max_frames=opts["max_frames"],
                                   frames_per_support=opts["frames_per_support"],
                                   support_window=opts["support_window"],
                                   use_support_frames=opts["use_support_frames"])
        if opts["fallback_letter"] not in tuple(LETTERS):
            raise ConfigError(f"dashcam_mcq option 'fallback_letter' must be one of {', '.join(LETTERS)}, "
                              f"got {opts['fallback_letter']!r}")
        self.fallback_letter = opts["fallback_letter"]
        if opts["system_prompt"] is not None and not isinstance(opts["system_prompt"], str):
            raise ConfigError("dashcam_mcq option 'system_prompt' must be a string or null")
        self.system_prompt = opts["system_prompt"]

    def __repr__(self) -> str:
        f = self.frames
        return (f"DashcamMCQTask(language={self.language!r}, frames={f.min_frames}-{f.max_frames}, "
                f"support_window={f.support_window}, use_support_frames={f.use_support_frames})")

    # -- data ---------------------------------------------------------------------------------
    def load_with_report(self, path: str | os.PathLike[str], *, video_dir: str | None = None,
                         policy: InvalidPolicy | PolicyMode | None = "skip",
                         max_invalid_fraction: float | None = None) -> tuple[list[Sample], LoadReport]:
        """Read and validate a Road Buddy file (see :mod:`.schema`); apply the invalid-row policy."""
        path = os.fspath(path)
        seen: dict[str, Location] = {}
        return collect(iter_rows(path), lambda where, row: row_to_sample(where, row, video_dir=video_dir, seen=seen),
                       policy, path=path, max_invalid_fraction=max_invalid_fraction)

    def load(self, path: str | os.PathLike[str], *, video_dir: str | None = None,
             policy: InvalidPolicy | PolicyMode | None = "skip",
             max_invalid_fraction: float | None = None) -> tuple[list[Sample], list[RowProblem]]:
        samples, report = self.load_with_report(path, video_dir=video_dir, policy=policy,
                                                max_invalid_fraction=max_invalid_fraction)
        return samples, report.problems

    def load_frames(self, sample: Sample, video_cfg: Any, *, cache: Any = None, seed: int | None = None) -> Any:
        """Support-window frames topped up to an adaptive count (:mod:`.frames`)."""
        return load_support_frames(sample, video_cfg, self.frames, cache=cache)

    def make_demo_data(self, directory: str | os.PathLike[str], *, seed: int) -> dict[str, Any]:
        """``vtg train --task dashcam_mcq`` with no data: a generated Road Buddy-style set."""
        from .synthetic import DEMO_OVERRIDES, make_roadbuddy_dataset

        paths: dict[str, Any] = make_roadbuddy_dataset(directory, num_train=48, num_test=8, seed=seed)
        paths["overrides"] = list(DEMO_OVERRIDES)
        return paths

    # -- prompting ----------------------------------------------------------------------------
    def build_messages(self, sample: Sample, *, rng: Any = None) -> list[dict[str, Any]]:
        _require_choices(sample)
        return prompts.build_messages(sample, language=self.language, system_prompt=self.system_prompt)

    def target(self, sample: Sample) -> str:
        _require_answer(sample)
        return prompts.target(sample)

    # -- reading answers and scoring ------------------------------------------------------------
    def parse(self, text: str, sample: Sample) -> ParseResult:
        return parse_letter(text, sample.inputs.get("letters", LETTERS), sample.inputs.get("choices", ()))

    def score(self, parsed: ParseResult, sample: Sample) -> dict[str, float]:
        """``correct`` (1/0) and ``answer_index``; a stored prediction (``pred``) is read by the parser too."""
        _require_answer(sample)
        if parsed.ok and parsed.value not in sample.inputs["letters"]:
            parsed = self.parse(str(parsed.value), sample)
        return sample_scores(parsed, sample.answer)

    def aggregate(self, scores: Sequence[dict[str, float]], parsed: Iterable[ParseResult]) -> dict[str, float]:
        return mcq_metrics(scores, parsed)

    def baseline(self, train_samples: Sequence[Sample], eval_samples: Sequence[Sample]) -> dict[str, float]:
        """Metrics of always answering the training split's most common letter (among each question's
        choices): what a model that ignores the video can reach; ``vtg train`` prints it beside the model."""
        counts = Counter(s.answer for s in train_samples if s.answer)
        order = sorted(LETTERS, key=lambda x: (-counts[x], x))
        parsed = [ParseResult(True, next(x for x in order if x in s.inputs["letters"])) for s in eval_samples]
        return self.aggregate([self.score(p, s) for p, s in zip(parsed, eval_samples, strict=True)], parsed)

    def report_tables(self, scores: Sequence[dict[str, float]], parsed: Sequence[ParseResult],
                      samples: Sequence[Sample]) -> dict[str, dict[str, Any]]:
        """Confusion matrix and answer distribution (``vtg eval`` prints them, ``--plots`` draws them)."""
        return tables(scores, parsed)

    def submission_answer(self, parsed: ParseResult, sample: Sample) -> str | None:
        """The letter a submission row gets; None when the answer did not parse (a fallback is used)."""
        return str(parsed.value) if parsed.ok else None

    def submission_fallback(self, sample: Sample) -> str:
        letters = sample.inputs.get("letters") or LETTERS
        return self.fallback_letter if self.fallback_letter in letters else letters[0]

    def reward_columns(self, sample: Sample) -> dict[str, Any]:
        """``mcq_answer``, ``mcq_letters``, ``mcq_choices`` (see :mod:`.rewards`)."""
        _require_answer(sample)
        return {"mcq_answer": sample.answer, "mcq_letters": list(sample.inputs["letters"]),
                "mcq_choices": list(sample.inputs["choices"])}


def _require_choices(sample: Sample) -> None:
    if not sample.inputs.get("letters") or not sample.inputs.get("choices"):
        raise DataError(f"sample {sample.id!r} ({sample.source}) has no choices: was it read by the dashcam_mcq task? "
                        "(`vtg predict` on one --video has none: use --data FILE --submission out.csv)")


def _require_answer(sample: Sample) -> None:
    _require_choices(sample)
    if sample.answer is None:
        raise DataError(f"sample {sample.id!r} ({sample.source}) has no answer (a test file?); training and "
                        "evaluation need the 'answer' field")
