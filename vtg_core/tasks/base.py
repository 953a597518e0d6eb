"""The contract a task object fulfils (what ``TaskSpec.factory(**options)`` returns).

SFT, GRPO and evaluation all go through the same task object, so the prompt the model is trained
on, the parser that reads its answers and the metrics that score them can never drift apart.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..data.sample import Location, Sample


@attrs.frozen
class RowProblem:
    """One rejected annotation row: where it is, which field, and why."""

    where: Location
    field: str | None
    reason: str
    code: str = "invalid"  # short tag used to group problems in summaries

    def __str__(self) -> str:
        field = f" field {self.field!r}:" if self.field else ""
        return f"{self.where}:{field} {self.reason}"


@attrs.frozen
class ParseResult:
    """What a parser read from a model's text. ``ok=False`` is a parse failure, never a guess."""

    ok: bool
    value: Any = None
    error: str | None = None


@runtime_checkable
class Task(Protocol):
    """What every task provides. See ``vtg_core.tasks.temporal_grounding`` for the reference."""

    name: str

    def load(self, path: str, *, video_dir: str | None = None) -> tuple[list[Sample], list[RowProblem]]:
        """Read an annotation file; return the valid samples and the problems of the rejected rows.

        A rejected row may have several problems (one per bad field), all with the same location.
        Tasks built on :mod:`vtg_core.data.annotations` also accept ``policy=`` and
        ``max_invalid_fraction=`` and offer ``load_with_report`` (counts by reason).
        """

    def build_messages(self, sample: Sample, *, rng: random.Random | None = None) -> list[dict[str, Any]]:
        """The chat conversation for ``sample`` (system/user turns; the video as a ``{"type": "video"}`` part)."""

    def target(self, sample: Sample) -> str:
        """The assistant's answer text SFT trains on."""

    def parse(self, text: str, sample: Sample) -> ParseResult:
        """Read a model's answer. The same parser serves SFT checks, GRPO rewards and evaluation."""

    def score(self, parsed: ParseResult, sample: Sample) -> dict[str, float]:
        """Per-sample metric values (e.g. ``iou``)."""

    def aggregate(self, scores: Sequence[dict[str, float]], parsed: Iterable[ParseResult]) -> dict[str, float]:
        """Data-set metrics from per-sample scores (e.g. R1@0.5, mIoU, parse_failure_rate)."""


# Optional methods the core uses when a task defines them (looked up with ``getattr``):
#
# - ``load_frames(sample, video_cfg, *, cache, seed) -> Frames``: take the sample's frames the
#   task's own way (around support timestamps, from ``.npz`` arrays). SFT, GRPO, evaluation and
#   prediction all go through :func:`vtg_core.data.sample_frames.frames_for_sample`, which calls it.
# - ``extra_tokens``: new tokens the tokenizer needs (temporal tokens); the backend adds them.
# - ``default_max_new_tokens``: how long an answer may be when generating.
#
# Answers (``ParseResult.value``) and scores must be JSON-serialisable: predictions are written
# as JSONL and compared across runs.
