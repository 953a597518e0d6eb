"""GRPO rewards of the dashcam task, with TRL's reward signature.

Columns read (what ``DashcamMCQTask.reward_columns`` writes): ``mcq_answer`` (the true letter;
``None`` for a row of another task, where both rewards return ``None``, "not applicable"),
``mcq_letters`` (the sample's letters; ``None`` likewise for ``mcq_format``) and ``mcq_choices`` (their texts). Completions are read by
:func:`.parser.parse_letter`, the parser evaluation uses.

- ``mcq_accuracy``: 1.0 when the parsed letter is the true one; 0.0 otherwise, a parse failure
  included.
- ``mcq_format``: 1.0 when the completion is in the form the prompt asks for (the letter alone, or
  ``"B."`` / ``"B. <its text>"``, see :func:`.parser.is_well_formed`); 0.0 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vtg_core.rewards.temporal import column, completion_text

from .parser import is_well_formed, parse_letter
from .schema import LETTERS

RewardFn = Callable[..., list[float | None]]


def _rows(kwargs: dict[str, Any], n: int, reward: str, key: str) -> list[tuple[Any, list[str], list[str]]]:
    """``(applicability key's value, letters, choice texts)`` per completion."""
    keys = column(kwargs, key, n, reward)
    letters = column(kwargs, "mcq_letters", n, reward, required=False)
    choices = column(kwargs, "mcq_choices", n, reward, required=False)
    return [(k, list(ls) if ls else list(LETTERS), list(cs) if cs else []) for k, ls, cs in
            zip(keys, letters, choices, strict=True)]


def mcq_accuracy() -> RewardFn:
    def mcq_accuracy(prompts: Any, completions: list[Any], **kwargs: Any) -> list[float | None]:
        out: list[float | None] = []
        for completion, (answer, letters, choices) in zip(completions, _rows(kwargs, len(completions), "mcq_accuracy",
                                                                             "mcq_answer"), strict=True):
            if answer is None:
                out.append(None)
                continue
            parsed = parse_letter(completion_text(completion), letters, choices)
            out.append(1.0 if parsed.ok and parsed.value == answer else 0.0)
        return out

    return mcq_accuracy


def mcq_format() -> RewardFn:
    def mcq_format(prompts: Any, completions: list[Any], **kwargs: Any) -> list[float | None]:
        out: list[float | None] = []
        for completion, (own, letters, choices) in zip(completions, _rows(kwargs, len(completions), "mcq_format",
                                                                          "mcq_letters"), strict=True):
            if own is None:
                out.append(None)
                continue
            out.append(1.0 if is_well_formed(completion_text(completion), letters, choices) else 0.0)
        return out

    return mcq_format
