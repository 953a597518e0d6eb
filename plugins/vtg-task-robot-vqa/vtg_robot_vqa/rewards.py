"""GRPO rewards of the ``robot_vqa`` task, with TRL's reward signature.

Both read the columns :meth:`RobotVQATask.reward_columns` writes (``sample_type``, ``answer``) and
parse completions with the task's own parser, so a reward agrees with the evaluation metric. A
reward returns ``None`` for rows of the other sample type (TRL then leaves it out of that row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .parser import parse_answer
from .schema import PREFERENCE, PROGRESS


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):  # conversational
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return str(completion)


def preference_exact() -> Any:
    """1.0 when the completion names the video that makes more progress, else 0.0 (unparsable: 0.0)."""

    def robot_preference(prompts: Sequence[Any], completions: Sequence[Any], sample_type: Sequence[str],
                         answer: Sequence[str], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for completion, kind, truth in zip(completions, sample_type, answer, strict=True):
            if kind != PREFERENCE:
                out.append(None)
                continue
            parsed = parse_answer(_text(completion), PREFERENCE)
            out.append(float(parsed.ok and parsed.value == int(truth)))
        return out

    return robot_preference


def progress_closeness(scale: float = 100.0) -> Any:
    """``max(0, 1 - |predicted - true| / scale)`` for progress rows (unparsable: 0.0)."""
    if not scale > 0:
        raise ValueError(f"robot_progress option 'scale' must be > 0, got {scale!r}")

    def robot_progress(prompts: Sequence[Any], completions: Sequence[Any], sample_type: Sequence[str],
                       answer: Sequence[str], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for completion, kind, truth in zip(completions, sample_type, answer, strict=True):
            if kind != PROGRESS:
                out.append(None)
                continue
            parsed = parse_answer(_text(completion), PROGRESS)
            out.append(max(0.0, 1.0 - abs(parsed.value - float(truth)) / scale) if parsed.ok else 0.0)
        return out

    return robot_progress
