"""The one reader of temporal-grounding answers: SFT checks, GRPO rewards and evaluation use it.

:func:`parse_segment` reads a ``(start, end)`` in seconds from a model's text and returns a
:class:`~vtg_core.tasks.base.ParseResult`. It never guesses: no pair found means ``ok=False``.

Where it looks:

1. Inside the last ``<answer>...</answer>`` block if there is one (an unclosed ``<answer>`` at the
   end of a truncated generation counts up to the end of the text).
2. Otherwise in the text with ``<think>...</think>`` blocks removed; an unclosed ``<think>`` with
   no answer is a failure (the model never got to answering).

What it reads (case-insensitive), the first match in that region:

- ``12.5 to 15.0``, ``12.5 - 15.0``, ``12.5-15``, ``from 12.5s to 15s``, ``between 12.5 and 15``,
  ``[12.5, 15.0]``, ``(12.5, 15.0)``, ``12.5 ~ 15.0``, ``start: 12.5, end: 15.0``;
- clock times ``1:05 to 1:20.5`` / ``0:01:05`` (seconds mode only);
- temporal tokens ``<12><40>`` (``<12> to <40>``) when ``use_temporal_tokens`` is set.

Units: in seconds mode numbers are seconds; with ``relative=True`` they are fractions of the clip
and are multiplied by ``duration``; tokens map to ``i / (num_bins - 1) * duration``
(:mod:`.temporal_tokens`). Each mode reads only its own format, so a relative-mode model that
writes tokens fails to parse rather than being misread.

Decisions: the order is kept (``15 to 12`` parses to ``(15.0, 12.0)``): a reversed answer is the
model's mistake, which metrics score as IoU 0 and rewards penalise, not something to repair. Values
are not clipped to the clip either (rewards and metrics clip); negative numbers (``-3 to 5``) parse
as negative. Non-finite values fail.
"""

from __future__ import annotations

import math
import re

from ..base import ParseResult
from .temporal_tokens import bin_to_time

#: Bump when what the parser reads, or how, changes: evaluation manifests record it, so numbers
#: scored by different parsers are never mistaken for comparable.
PARSER_VERSION = 1

_FLAGS = re.IGNORECASE | re.DOTALL

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", _FLAGS)
_ANSWER_OPEN = re.compile(r"<answer>", _FLAGS)
_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", _FLAGS)
_THINK_OPEN = re.compile(r"<think>", _FLAGS)

# Atomic groups keep a number from being cut short by backtracking ("15.5abc" never reads as 15).
_CLOCK = r"\d{1,3}(?::\d{1,2}){1,2}(?:\.\d+)?"
_DECIMAL = r"\d+(?:\.\d*)?|\.\d+"
_TIME = rf"(?>{_CLOCK}|{_DECIMAL})"
_UNIT = r"(?:\s*(?:seconds|second|secs|sec|s)\b)?"
_SEP = r"\s*(?:to|until|till|through|and|-|–|—|~|,)\s*"
_PAIR = re.compile(
    rf"(?<![\w.:])(?P<sa>-)?(?P<a>{_TIME}){_UNIT}{_SEP}(?P<sb>-)?(?P<b>{_TIME}){_UNIT}", _FLAGS
)
_LABELLED = re.compile(
    rf"start(?:\s*time)?\s*[:=]\s*(?P<sa>-)?(?P<a>{_TIME}){_UNIT}[^0-9<>]{{0,40}}?"
    rf"end(?:\s*time)?\s*[:=]\s*(?P<sb>-)?(?P<b>{_TIME}){_UNIT}", _FLAGS
)
_TOKENS = re.compile(r"<(\d{1,6})>\s*(?:to|-|–|,|~)?\s*<(\d{1,6})>", _FLAGS)

_SNIPPET = 60


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


def answer_region(text: str) -> tuple[str | None, str | None]:
    """``(region, None)``: the part of ``text`` holding the answer; ``(None, error)`` if none."""
    blocks = _ANSWER_BLOCK.findall(text)
    if blocks:
        return blocks[-1], None
    opens = list(_ANSWER_OPEN.finditer(text))
    if opens:
        return text[opens[-1].end():], None
    without = _THINK_BLOCK.sub(" ", text)
    if _THINK_OPEN.search(without):
        return None, "no answer: the text ends inside an unclosed <think>"
    return without, None


def think_region(text: str) -> str | None:
    """The content of the last closed ``<think>`` block, if any."""
    blocks = _THINK_BLOCK.findall(text)
    return blocks[-1] if blocks else None


def _time_value(token: str) -> float:
    if ":" in token:
        seconds = 0.0
        for part in token.split(":"):
            seconds = seconds * 60 + float(part)
        return seconds
    return float(token)


def _find_pairs(region: str, *, relative: bool) -> list[tuple[float, float]]:
    """Every ``start to end`` pair in order (plain pairs first, then ``start: .. end: ..``)."""
    pairs = []
    for pattern in (_PAIR, _LABELLED):
        for match in pattern.finditer(region):
            a, b = match.group("a"), match.group("b")
            if relative and (":" in a or ":" in b):
                continue  # clock times are seconds; not an answer in relative mode
            start = -_time_value(a) if match.group("sa") else _time_value(a)
            end = -_time_value(b) if match.group("sb") else _time_value(b)
            pairs.append((start, end))
        if pairs:
            break
    return pairs


def parse_segment(
    text: object,
    *,
    duration: float | None,
    relative: bool = False,
    num_bins: int | None = None,
    use_temporal_tokens: bool = False,
    search_think: bool = False,
) -> ParseResult:
    """Read ``(start, end)`` seconds from a model's answer (see the module docstring).

    ``duration`` (seconds) is needed for relative times and tokens; ``num_bins`` for tokens.
    ``search_think=True`` reads the last pair inside the last ``<think>`` block instead of the
    answer (the ``step_consistency`` reward compares the two).
    """
    if not isinstance(text, str):
        return ParseResult(False, None, f"expected text, got {type(text).__name__}")
    if search_think:
        region = think_region(text)
        if region is None:
            return ParseResult(False, None, "no <think> block")
        error = None
    else:
        region, error = answer_region(text)
    if region is None:
        return ParseResult(False, None, error)
    if not region.strip():
        return ParseResult(False, None, "empty answer")
    needs_duration = relative or use_temporal_tokens
    if needs_duration and (duration is None or isinstance(duration, bool) or not (
            isinstance(duration, int | float) and math.isfinite(duration) and duration > 0)):
        return ParseResult(False, None, f"a positive duration is needed to convert the answer, got {duration!r}")

    if use_temporal_tokens:
        if not num_bins or num_bins < 2:
            return ParseResult(False, None, f"num_bins must be >= 2 to read temporal tokens, got {num_bins!r}")
        matches = list(_TOKENS.finditer(region))
        if not matches:
            return ParseResult(False, None, f"no '<i><j>' temporal token pair found in {_snippet(region)!r}")
        match = matches[-1] if search_think else matches[0]
        i, j = int(match.group(1)), int(match.group(2))
        if i >= num_bins or j >= num_bins:
            return ParseResult(False, None, f"temporal token <{max(i, j)}> is outside <0>..<{num_bins - 1}>")
        assert duration is not None
        return ParseResult(True, (bin_to_time(i, duration, num_bins), bin_to_time(j, duration, num_bins)))

    pairs = _find_pairs(region, relative=relative)
    if not pairs:
        return ParseResult(False, None, f"no 'start to end' pair found in {_snippet(region)!r}")
    # The answer is its first pair; the conclusion of the reasoning is its last.
    found = pairs[-1] if search_think else pairs[0]
    start, end = found
    if not (math.isfinite(start) and math.isfinite(end)):
        return ParseResult(False, None, "time is not a finite number")
    if relative:
        assert duration is not None
        start, end = start * duration, end * duration
    return ParseResult(True, (float(start), float(end)))


def format_seconds(value: float, decimals: int = 1) -> str:
    """How times are written in prompts and targets (``12.5``); the parser reads it back."""
    return f"{value:.{decimals}f}"
