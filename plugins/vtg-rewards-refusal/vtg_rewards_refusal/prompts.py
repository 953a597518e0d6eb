"""Prompts and SFT targets for refusal-aware grounding.

Every prompt states the clip's duration, the query, both ways to answer (a segment and ``NIL``,
or a refusal and a corrected query) and the exact output format, which is what the ``format``
reward and the parser check: ``<think>..</think> <answer>..</answer> <correction>..</correction>``.
A few phrasings of the question (:data:`TEMPLATES`) keep a model from overfitting one sentence; the
choice is seeded per sample (the core's :func:`stable_rng`), so SFT, GRPO and evaluation agree.

The SFT target is the shortest text the parser reads as intended: a one-line thought, the segment
or the refusal sentence (which holds no times, so it can never read as a segment), and ``NIL`` or
the first reference as the correction.
"""

from __future__ import annotations

from typing import Any

from vtg_core.data.sample import Sample
from vtg_core.tasks.temporal_grounding.parser import format_seconds
from vtg_core.tasks.temporal_grounding.prompts import TimeFormat

from .parser import NIL

TEMPLATES: tuple[str, ...] = (
    'The video is {duration} seconds long. Query: "{query}" Does this happen in the video, and when? {format}',
    'Find the segment of this {duration}-second video that matches the query "{query}", if there is one. {format}',
    "Query: {query}\nVideo length: {duration} seconds.\nLocate the segment the query describes, or refuse "
    "if the video does not show it. {format}",
)

DEFAULT_REFUSAL = "The query does not match the video."
ANSWER_THOUGHT = "The query matches the video."
REFUSAL_THOUGHT = "The video does not show what the query describes."


def instruction(fmt: TimeFormat, duration: float, refusal: str = DEFAULT_REFUSAL) -> str:
    """What to write in each tag, for answerable and refusable queries."""
    if fmt.relative:
        when = ("give its start and end as fractions of the video length, between 0 and 1, "
                "as <answer>start to end</answer>")
    else:
        when = (f"give its start and end time in seconds, between 0 and {format_seconds(duration)}, "
                "as <answer>start to end</answer>")
    return (f"If the query matches the video, {when} and write <correction>{NIL}</correction>. "
            f"If it does not match the video, write <answer>{refusal}</answer> without any times and put a "
            "corrected query that does match the video in <correction></correction>. "
            "First reason inside <think></think>. "
            "Reply exactly as <think>...</think> <answer>...</answer> <correction>...</correction>.")


def user_prompt(sample: Sample, fmt: TimeFormat, template_index: int, refusal: str = DEFAULT_REFUSAL) -> str:
    duration = sample.duration or 0.0
    return TEMPLATES[template_index].format(duration=format_seconds(duration), query=sample.query.rstrip(" ."),
                                            format=instruction(fmt, duration, refusal))


def build_messages(sample: Sample, fmt: TimeFormat, *, template_index: int, system_prompt: str | None = None,
                   refusal: str = DEFAULT_REFUSAL) -> list[dict[str, Any]]:
    """``[system?, user]``; the user turn holds ``{"type": "video"}`` then the text."""
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": [
        {"type": "video"}, {"type": "text", "text": user_prompt(sample, fmt, template_index, refusal)}]})
    return messages


def target(sample: Sample, fmt: TimeFormat, refusal: str = DEFAULT_REFUSAL) -> str:
    """The SFT answer: the first segment and NIL, or the refusal and the first reference."""
    truth = sample.answer
    if truth.refusable:
        return (f"<think>{REFUSAL_THOUGHT}</think> <answer>{refusal}</answer> "
                f"<correction>{truth.references[0]}</correction>")
    start, end = truth.segments[0]
    return (f"<think>{ANSWER_THOUGHT}</think> <answer>{fmt.write(start, end, sample.duration)}</answer> "
            f"<correction>{NIL}</correction>")
