"""Read a model's answer: ``1``/``2`` for preference, an integer 0-100 for progress.

Answers may come bare (``"1"``, what SFT trains) or in the prompt's format (``"ANS: 75"``). Anything
else is a parse failure, never a guess: ``"1 or 2"`` holds two candidates and fails.
"""

from __future__ import annotations

import re

from vtg_core.tasks.base import ParseResult

from .schema import PREFERENCE, PROGRESS

_ANS = re.compile(r"ANS\s*:\s*([+-]?\d+(?:\.\d+)?)", re.IGNORECASE)
_BARE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*\.?\s*$")


def _number(text: str) -> str | None:
    found = _ANS.findall(text)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        return None
    bare = _BARE.match(text)
    return bare.group(1) if bare else None


def parse_answer(text: str, sample_type: str) -> ParseResult:
    """``ParseResult(True, 1 | 2)`` for preference, ``ParseResult(True, int 0..100)`` for progress."""
    if not isinstance(text, str):
        return ParseResult(False, None, f"expected text, got {type(text).__name__}")
    raw = _number(text)
    if raw is None:
        return ParseResult(False, None, f"no single answer in {text[:60]!r} (expected 'ANS: <n>' or a bare number)")
    value = float(raw)
    if sample_type == PREFERENCE:
        if value not in (1.0, 2.0):
            return ParseResult(False, None, f"preference answer must be 1 or 2, got {raw}")
        return ParseResult(True, int(value))
    if sample_type == PROGRESS:
        if not 0.0 <= value <= 100.0:
            return ParseResult(False, None, f"progress score must be within 0-100, got {raw}")
        return ParseResult(True, int(round(value)))
    return ParseResult(False, None, f"unknown sample type {sample_type!r}")
