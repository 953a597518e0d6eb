"""Finding the chosen letter in a model's free text; a text that names no single letter is a failure.

Accepted, in this order (the first rule that applies decides):

1. The answer starts with the letter: ``"B"``, ``"B."``, ``"(B)"``, ``"B) Turn left"``,
   ``"b."``. A letter followed by a plain word (``"A car stops"``) is English, not an answer.
2. A cue names it: ``"Đáp án: B"``, ``"Đáp án đúng là C"``, ``"The answer is (B)"``,
   ``"Answer: D"``, ``"option B"``, ``"chọn A"``. Several cues naming different letters fail.
3. Exactly one letter of the choices stands alone in the text (``"... so (C) fits"``,
   ``"C. is right"``); two different ones fail as ambiguous.
4. Exactly one choice's text appears in the answer (``"Turn left"``).

A letter that is not one of the sample's choices (``D`` for a three-choice question) fails too.
The same parser serves SFT checks, the GRPO rewards, evaluation and ``vtg predict``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vtg_core.tasks.base import ParseResult

from .schema import LETTERS, normalize_text

PARSER_VERSION = "1"

_START = re.compile(r"^\s*[\(\[]?\s*([A-Da-d])\s*(?:[\)\].:]|$|\s*$)")
_CUE = re.compile(
    r"(?:đáp\s*án(?:\s*đúng)?|câu\s*trả\s*lời|lựa\s*chọn|phương\s*án|chọn|answer|option|choice)"
    r"\s*(?:là|is|would\s+be|:|-|=)?\s*(?:là|is)?\s*[:\-]?\s*[\(\[]?\s*([A-Da-d])(?![A-Za-zÀ-ỹ])",
    re.IGNORECASE,
)
_ALONE = re.compile(r"(?<![\w'])[\(\[]?([A-D])[\)\]]?(?![\w'])")
# "A" followed by a lower-case word is the English article ("A car stops"), not a choice; "A or B" is not.
_ARTICLE = re.compile(r"\s+(?!(?:or|and|nor|hoặc|và)\b)[a-zà-ỹ]")


def _check(letter: str, letters: Sequence[str], how: str) -> ParseResult:
    letter = letter.upper()
    if letter not in letters:
        return ParseResult(False, None, f"{how} {letter}, which is not one of the choices {''.join(letters)}")
    return ParseResult(True, letter)


def parse_letter(text: str, letters: Sequence[str] = LETTERS, choices: Sequence[str] = ()) -> ParseResult:
    """The letter ``text`` chooses among ``letters`` (``ParseResult.value``), or a failure saying why."""
    if not isinstance(text, str) or not text.strip():
        return ParseResult(False, None, "empty answer")
    m = _START.match(text)
    if m:
        return _check(m.group(1), letters, "the answer starts with")
    cued = {c.upper() for c in _CUE.findall(text)}
    if len(cued) == 1:
        return _check(cued.pop(), letters, "the answer names")
    if len(cued) > 1:
        return ParseResult(False, None, f"the answer names several letters: {', '.join(sorted(cued))}")
    alone = {m.group(1) for m in _ALONE.finditer(text) if m.group(1) in letters
             and not (m.group(0) == "A" and _ARTICLE.match(text, m.end()))}
    if len(alone) == 1:
        return ParseResult(True, alone.pop())
    if len(alone) > 1:
        return ParseResult(False, None, f"ambiguous: the answer mentions {', '.join(sorted(alone))}")
    said = normalize_text(text)
    named = [letter for letter, choice in zip(letters, choices, strict=False)
             if normalize_text(choice) and re.search(rf"(?<!\w){re.escape(normalize_text(choice))}(?!\w)", said)]
    if len(named) == 1:
        return ParseResult(True, named[0])
    return ParseResult(False, None, f"no choice letter ({''.join(letters)}) found in the answer")


def is_well_formed(text: str, letters: Sequence[str] = LETTERS, choices: Sequence[str] = ()) -> bool:
    """The strict answer form the prompts ask for: the letter alone, or ``"B."`` / ``"B. <its text>"``."""
    if not isinstance(text, str):
        return False
    stripped = text.strip()
    m = re.fullmatch(r"\(?([A-D])\)?\.?", stripped)
    if m:
        return m.group(1) in letters
    m = re.fullmatch(r"([A-D])[.)]\s+(.+)", stripped, re.DOTALL)
    if not m or m.group(1) not in letters:
        return False
    i = list(letters).index(m.group(1))
    return i < len(choices) and normalize_text(m.group(2)) == normalize_text(choices[i])
