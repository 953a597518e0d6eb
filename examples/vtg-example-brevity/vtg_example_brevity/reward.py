"""The brevity reward, in TRL's reward-function signature."""

from __future__ import annotations


def _text(completion) -> str:
    # TRL passes plain strings for standard data sets and message lists for conversational ones.
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def brevity(max_chars: int = 64):
    if max_chars <= 0:
        raise ValueError(f"brevity: max_chars must be positive, got {max_chars}")

    def reward(prompts, completions, **columns) -> list[float]:
        scores = []
        for completion in completions:
            n = len(_text(completion))
            scores.append(1.0 if n <= max_chars else max(0.0, 2.0 - n / max_chars))
        return scores

    reward.__name__ = "brevity"
    return reward
