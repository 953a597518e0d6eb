"""The one reader of refusal-aware answers: SFT checks, GRPO rewards and evaluation all use it.

The model answers in three tags (seed 001)::

    <think>reasoning</think> <answer>12.5 to 15.0</answer> <correction>NIL</correction>
    <think>reasoning</think> <answer>The query does not match the video.</answer>
    <correction>a person is cooking in the kitchen</correction>

:func:`parse_refusal` returns a :class:`~vtg_core.tasks.base.ParseResult` whose ``value`` is a plain
dict (JSON-serialisable, so prediction files can store it as is):

- ``segment``: ``[start, end]`` seconds read by the core grounding parser
  (:func:`~vtg_core.tasks.temporal_grounding.parser.parse_segment`), or ``None``;
- ``refused``: ``True`` when the answer holds no timestamp (seed 001: "has timestamp" decides);
- ``correction``: the corrected query, or ``None`` for ``NIL``, an empty or a missing block;
- ``well_formed``: whether the whole text is exactly the three tags in order (the ``format`` reward).

Decisions:

- A timestamp is whatever the core parser reads (``12.5 to 15``, ``[12.5, 15]``, ``12-15``...),
  not only the seed's ``\\d+\\.\\d+ to \\d+\\.\\d+``: with the seed's regex an answer of ``12 to 15``
  to a refusable query would count as a refusal and be rewarded. One reader for rewards and
  metrics also keeps their numbers consistent.
- A refusal must be *said*: an ``<answer>`` block with text and no timestamp. No ``<answer>`` tag
  and no timestamp anywhere, an empty answer, or a text that ends inside ``<think>`` is a parse
  failure (``ok=False``), never a refusal; otherwise an empty or truncated generation would earn
  the refusal reward on every refusable query.
- Without an ``<answer>`` tag, a timestamp in the text outside ``<think>`` still counts as the
  answer (as the core grounding parser does), so the grounding part is not stricter than the core's.
- An unclosed ``<answer>`` (a truncated generation) reads up to ``<correction>`` or the end.
"""

from __future__ import annotations

import re
from typing import Any

from vtg_core.tasks.base import ParseResult
from vtg_core.tasks.temporal_grounding.parser import answer_region, parse_segment

#: Bump when what the parser reads, or how, changes (evaluation manifests record parser versions).
PARSER_VERSION = 1

NIL = "NIL"

_FLAGS = re.IGNORECASE | re.DOTALL
_ANSWER_OPEN = re.compile(r"<answer>", _FLAGS)
_CORRECTION_BLOCK = re.compile(r"<correction>(.*?)</correction>", _FLAGS)
_CORRECTION_OPEN = re.compile(r"<correction>", _FLAGS)
_NIL = re.compile(r"^\W*nil\W*$", re.IGNORECASE)

# Tag contents may not hold another of the three tags: the seed's lazy ``.*?`` under fullmatch
# would otherwise accept a second <answer> or <correction> block hidden inside the first.
_TAG_FREE = r"(?:(?!</?(?:think|answer|correction)>).)*"
# DOTALL, unlike the seed's snippet: reasoning spans lines, and the seed's own description of the
# reward ("all three tags present in correct order") does not ask for one-line reasoning.
_FORMAT = re.compile(
    rf"\s*<think>{_TAG_FREE}</think>\s*<answer>{_TAG_FREE}</answer>\s*<correction>{_TAG_FREE}</correction>\s*",
    re.DOTALL,
)


def is_well_formed(text: object) -> bool:
    """Exactly ``<think>..</think> <answer>..</answer> <correction>..</correction>``, whitespace between."""
    return isinstance(text, str) and _FORMAT.fullmatch(text) is not None


def correction_of(text: str) -> str | None:
    """The last ``<correction>`` block's text; ``None`` for ``NIL``, empty or no block."""
    blocks = _CORRECTION_BLOCK.findall(text)
    if blocks:
        content = blocks[-1]
    else:
        opens = list(_CORRECTION_OPEN.finditer(text))
        if not opens:
            return None
        content = text[opens[-1].end():]  # truncated generation: up to the end
    content = " ".join(content.split())
    if not content or _NIL.match(content):
        return None
    return content


def _answer(text: str) -> tuple[str | None, bool, str | None]:
    """``(region, tagged, error)``: the answer text, whether it came from an ``<answer>`` tag."""
    region, error = answer_region(text)
    if region is None:
        return None, False, error
    tagged = _ANSWER_OPEN.search(text) is not None
    # An unclosed <answer> runs to the end of the text, and an untagged answer is the whole text
    # outside <think>: in both, a correction may sit inside the region and is not part of it.
    region = _CORRECTION_BLOCK.sub(" ", region)
    cut = _CORRECTION_OPEN.search(region)
    if cut:
        region = region[: cut.start()]
    return region, tagged, None


def parse_refusal(text: object, *, duration: float | None, relative: bool = False) -> ParseResult:
    """Read a refusal-aware answer (see the module docstring); never raises on content."""
    if not isinstance(text, str):
        return ParseResult(False, None, f"expected text, got {type(text).__name__}")
    region, tagged, error = _answer(text)
    if region is None:
        return ParseResult(False, None, error)
    if not region.strip():
        return ParseResult(False, None, "empty answer" if tagged else "no answer")
    # Wrapped in tags so the core parser reads exactly this region.
    segment = parse_segment(f"<answer>{region}</answer>", duration=duration, relative=relative)
    if not segment.ok and not tagged:
        return ParseResult(False, None, "no <answer> block and no timestamp: neither an answer nor a refusal")
    value: dict[str, Any] = {
        "segment": list(segment.value) if segment.ok else None,
        "refused": not segment.ok,
        "correction": correction_of(text),
        "well_formed": is_well_formed(text),
    }
    return ParseResult(True, value)


def _value(parsed: ParseResult) -> dict[str, Any]:
    # Only this parser's dicts count; a foreign value (another task's tuple) reads as nothing.
    return parsed.value if parsed.ok and isinstance(parsed.value, dict) else {}


def has_timestamp(parsed: ParseResult) -> bool:
    """The model gave a segment (a parse failure has none)."""
    return _value(parsed).get("segment") is not None


def refused(parsed: ParseResult) -> bool:
    """The model refused: a readable answer without a segment (a parse failure is not a refusal)."""
    return bool(_value(parsed).get("refused"))


def correction(parsed: ParseResult) -> str | None:
    """The corrected query, ``None`` for NIL, none given, or a parse failure."""
    return _value(parsed).get("correction")


def well_formed(parsed: ParseResult) -> bool:
    return bool(_value(parsed).get("well_formed"))
