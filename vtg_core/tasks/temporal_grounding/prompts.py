"""Prompts and SFT targets for temporal grounding.

Several phrasings (:data:`TEMPLATES`) keep a model from overfitting one sentence; which one a
sample gets is chosen with a ``random.Random``, so a seed reproduces it. Every prompt states the
clip's duration and the exact answer format, and the target is the shortest text the parser reads:
``<answer>12.5 to 15.0</answer>``. Short targets matter for the tiny demo models, which learn a
fixed frame around a couple of numbers quickly, and for GRPO, which pays per generated token.

Time formats (:class:`TimeFormat`): seconds with one decimal (0.1 s is finer than annotators
are), relative fractions with two decimals (1 % of the clip), or temporal tokens ``<i><j>``.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import attrs

from ...data.sample import Sample
from .parser import format_seconds
from .temporal_tokens import time_to_bin

TEMPLATES: tuple[str, ...] = (
    'The video is {duration} seconds long. When does the following happen: "{query}"? {format}',
    "Find the segment of this {duration}-second video that matches the description: {query}. {format}",
    "Query: {query}\nVideo length: {duration} seconds.\nLocate the segment of the video the query describes. {format}",
    'In which part of the video does this happen: "{query}"? The video lasts {duration} seconds. {format}',
)

THINK_INSTRUCTION = " First reason step by step inside <think></think>, then give the answer."


@attrs.frozen
class TimeFormat:
    """How times are written: seconds, relative fractions, or temporal tokens."""

    relative: bool = False
    use_temporal_tokens: bool = False
    num_bins: int = 100

    @property
    def name(self) -> str:
        """The ``time_format`` column value rewards read (``seconds`` / ``relative`` / ``tokens:N``)."""
        if self.use_temporal_tokens:
            return f"tokens:{self.num_bins}"
        return "relative" if self.relative else "seconds"

    def instruction(self, duration: float) -> str:
        if self.use_temporal_tokens:
            return (f"The video is divided into {self.num_bins} evenly spaced time points <0> to "
                    f"<{self.num_bins - 1}>. Answer with the start and end points as <answer><start><end></answer>.")
        if self.relative:
            return ("Give the start and end as fractions of the video length, between 0 and 1, "
                    "as <answer>start to end</answer>.")
        return (f"Give the start and end time in seconds, between 0 and {format_seconds(duration)}, "
                "as <answer>start to end</answer>.")

    def write(self, start: float, end: float, duration: float) -> str:
        """The answer text (without the ``<answer>`` tags) for a segment in seconds."""
        if self.use_temporal_tokens:
            return f"<{time_to_bin(start, duration, self.num_bins)}><{time_to_bin(end, duration, self.num_bins)}>"
        if self.relative:
            return f"{start / duration:.2f} to {end / duration:.2f}"
        return f"{format_seconds(start)} to {format_seconds(end)}"


def stable_rng(sample_id: str, seed: int = 0) -> random.Random:
    """A per-sample generator that does not depend on ``PYTHONHASHSEED`` or the sample order."""
    return random.Random(zlib.crc32(f"{seed}:{sample_id}".encode()))


def choose_template(template: int | str, rng: random.Random) -> int:
    """The template index: ``template`` itself, or a draw from ``rng`` for ``"random"``."""
    if template == "random":
        return rng.randrange(len(TEMPLATES))
    return int(template)


def user_prompt(sample: Sample, fmt: TimeFormat, template_index: int, *, think: bool = False) -> str:
    instruction = fmt.instruction(sample.duration or 0.0)
    if think:
        instruction += THINK_INSTRUCTION
    return TEMPLATES[template_index].format(
        duration=format_seconds(sample.duration or 0.0), query=sample.query.rstrip(" ."), format=instruction
    )


def build_messages(sample: Sample, fmt: TimeFormat, *, template_index: int, system_prompt: str | None = None,
                   think: bool = False) -> list[dict[str, Any]]:
    """``[system?, user]``; the user turn holds ``{"type": "video"}`` then the text."""
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({
        "role": "user",
        "content": [{"type": "video"}, {"type": "text", "text": user_prompt(sample, fmt, template_index, think=think)}],
    })
    return messages


def target(sample: Sample, fmt: TimeFormat) -> str:
    start, end = sample.answer
    return f"<answer>{fmt.write(start, end, sample.duration)}</answer>"
