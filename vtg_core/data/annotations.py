"""Read annotation files row by row, and apply the invalid-row policy.

Every task reads its annotations through this module, so each one reports problems the same way:
file, line (JSON Lines) or array index (JSON), field, reason, and a short ``code`` used to count
problems by cause.

Reading (:func:`load_rows`) yields ``(Location, row)`` where ``row`` is the decoded JSON object or
a :class:`~vtg_core.tasks.base.RowProblem`; it never raises for bad content, only for a file that
cannot be opened. Two formats are accepted:

- JSON Lines (``.jsonl``/``.ndjson``, or any file whose first non-blank character is not ``[``):
  one object per line, 1-based line numbers, blank lines skipped. Bytes are decoded line by line,
  so one line of broken UTF-8 is reported on its own and the rest of the file still loads.
- A JSON array of objects: rows are located by 0-based ``index``; elements are decoded one at a
  time so the elements before a syntax error (a truncated file) are kept and the error is
  reported with its line.

Checking (:class:`RowReader`) reads typed fields out of a row and records one problem per bad
field; tasks use it to build their samples. Collecting (:func:`collect`) runs a task's row
validator over every row and applies :class:`InvalidPolicy`:

- ``skip``: invalid rows are left out and *logged* (count by reason, first few problems), never
  dropped silently; above ``max_invalid_fraction`` the load stops with the summary, since that
  many bad rows means a wrong file or format, not a few broken annotations.
- ``fail``: any invalid row raises :class:`~vtg_core.errors.DataError` listing the problems.
- ``report``: collect everything, log nothing, raise nothing (``vtg validate``).

Problem codes used by this module and the built-in tasks: ``bad_utf8``, ``bad_json``,
``not_object``, ``missing_field``, ``wrong_type``, ``not_finite``, ``too_large``, ``negative``,
``empty``, ``bad_segment``, ``reversed``, ``out_of_range``, ``inconsistent``.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import attrs

from ..errors import DataError
from ..tasks.base import RowProblem
from .sample import Location, Sample

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_SECONDS",
    "InvalidPolicy",
    "LoadReport",
    "RowProblem",
    "RowReader",
    "collect",
    "json_type_name",
    "load_rows",
    "load_samples",
]

# Times and durations above this are data errors, not long videos: about 11.5 days. It also keeps
# float conversion of absurd JSON integers (10**400) from overflowing.
MAX_SECONDS = 1e6

_JSONL_SUFFIXES = (".jsonl", ".ndjson")

Row = dict[str, Any]
RowResult = Sample | RowProblem | list[RowProblem]
Validator = Callable[[Location, Row], RowResult]


# -- reading -------------------------------------------------------------------------------------

def _decode_json(text: str) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, error)``; never raises on content."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    except ValueError as exc:  # e.g. an integer literal with more digits than Python converts
        return None, f"invalid JSON: {exc}"


def _utf8_error(data: bytes) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start + 1} of the line: {data[exc.start:exc.start + 1]!r})"
    return None


def _not_object(where: Location, value: Any) -> RowProblem:
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
    return RowProblem(where, None, f"expected a JSON object, got {kind}", code="not_object")


def _iter_jsonl(path: str, name: str) -> Iterator[tuple[Location, Row | RowProblem]]:
    with open(path, "rb") as fh:
        # Split on b"\n" only: a JSON string may legally hold U+2028 etc., which str.splitlines()
        # would treat as line breaks.
        for lineno, raw in enumerate(fh, start=1):
            where = Location(name, line=lineno)
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark some editors write
            if not raw.strip():
                continue
            error = _utf8_error(raw)
            if error:
                yield where, RowProblem(where, None, error, code="bad_utf8")
                continue
            value, error = _decode_json(raw.decode("utf-8"))
            if error:
                yield where, RowProblem(where, None, error, code="bad_json")
            elif not isinstance(value, dict):
                yield where, _not_object(where, value)
            else:
                yield where, value


def _iter_json_array(data: bytes, name: str) -> Iterator[tuple[Location, Row | RowProblem]]:
    # Decode per line so a bad byte is pinned to its line; the replacement character lets the
    # parser carry on, and every element touching a bad line is then rejected as bad_utf8.
    lines = data.split(b"\n")
    bad_lines: set[int] = set()
    texts: list[str] = []
    for lineno, raw in enumerate(lines, start=1):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad_lines.add(lineno)
            texts.append(raw.decode("utf-8", errors="replace"))
    text = "\n".join(texts)
    starts = [0]
    for t in texts[:-1]:
        starts.append(starts[-1] + len(t) + 1)

    def line_of(pos: int) -> int:
        return bisect.bisect_right(starts, pos)

    decoder = json.JSONDecoder()
    ws = " \t\r\n\ufeff"
    pos = len(text) - len(text.lstrip(ws)) + 1  # just past "["
    index = 0

    def problem(reason: str, at: int) -> tuple[Location, RowProblem]:
        where = Location(name, index=index)
        return where, RowProblem(where, None, f"{reason} (line {line_of(at)})", code="bad_json")

    while True:
        while pos < len(text) and text[pos] in ws:
            pos += 1
        if pos >= len(text):
            yield problem("truncated JSON array: missing closing ']'", pos)
            return
        if text[pos] == "]" and index == 0:
            break
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield problem(f"invalid JSON: {exc.msg}", exc.pos)
            return  # after a syntax error the element boundaries are unknown
        except (RecursionError, ValueError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            yield problem(f"invalid JSON: {reason}", pos)
            return
        where = Location(name, index=index)
        span = range(line_of(pos), line_of(max(pos, end - 1)) + 1)
        bad = sorted(bad_lines.intersection(span))
        if bad:
            yield where, RowProblem(where, None, f"not valid UTF-8 (line {bad[0]})", code="bad_utf8")
        elif not isinstance(value, dict):
            yield where, _not_object(where, value)
        else:
            yield where, value
        index += 1
        pos = end
        while pos < len(text) and text[pos] in ws:
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            break
        if pos >= len(text):
            yield problem("truncated JSON array: missing closing ']'", pos)
        else:
            yield problem("invalid JSON: expected ',' or ']' after an element", pos)
        return
    rest = text[pos + 1:].strip(ws)
    if rest:
        where = Location(name, index=index)
        yield where, RowProblem(where, None, f"unexpected text after the closing ']' (line {line_of(pos + 1)})",
                                code="bad_json")


def _first_char(path: str) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(4096)
        while head:
            stripped = head.lstrip(b" \t\r\n")
            if stripped.startswith(b"\xef\xbb\xbf"):
                stripped = stripped[3:].lstrip(b" \t\r\n")
            if stripped:
                return stripped[:1]
            head = fh.read(4096)
    return b""


def _is_single_object(path: str) -> bool:
    """A pretty-printed JSON object (not JSON Lines): one clear problem beats one per line."""
    with open(path, "rb") as fh:
        first_line = fh.readline()
        if _decode_json(first_line.decode("utf-8", errors="replace").lstrip("\ufeff"))[1] is None:
            return False
        data = fh.read()
    value, error = _decode_json((first_line + data).decode("utf-8", errors="replace").lstrip("\ufeff"))
    return error is None and isinstance(value, dict)


def load_rows(path: str | os.PathLike[str]) -> Iterator[tuple[Location, Row | RowProblem]]:
    """Yield ``(location, row_or_problem)`` for every non-blank row of an annotation file.

    JSON Lines rows are located by 1-based ``line``, JSON-array elements by 0-based ``index``.
    Bad content (UTF-8, JSON syntax, a row that is not an object) becomes a
    :class:`~vtg_core.tasks.base.RowProblem`; only an unreadable file raises
    :class:`~vtg_core.errors.DataError`.
    """
    path = os.fspath(path)
    name = path
    try:
        first = b"" if path.lower().endswith(_JSONL_SUFFIXES) else _first_char(path)
        if first == b"[":
            with open(path, "rb") as fh:
                data = fh.read()
            yield from _iter_json_array(data, name)
        elif first == b"{" and _is_single_object(path):
            where = Location(name, line=1)
            yield where, RowProblem(where, None, "the file is one JSON object; expected JSON Lines (one object "
                                    "per line) or a JSON array of objects", code="bad_json")
        else:
            yield from _iter_jsonl(path, name)
    except FileNotFoundError as exc:
        raise DataError(f"annotation file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise DataError(f"annotation path is a directory, expected a .jsonl or .json file: {path}") from exc
    except OSError as exc:
        raise DataError(f"cannot read annotation file {path}: {exc}") from exc


# -- checking fields -----------------------------------------------------------------------------

_MISSING = object()


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except (RecursionError, ValueError):
            text = f"<{json_type_name(value)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@attrs.define
class RowReader:
    """Read typed fields from one row, collecting a :class:`RowProblem` per bad field.

    Each getter returns the value (converted) or ``None`` when the field is missing / invalid, and
    records why; check :attr:`problems` after reading every field, so a row with three bad fields
    is reported once with all three. Plugin tasks reuse it for their own formats::

        r = RowReader(row, where)
        question = r.text("question")
        choices = r.get("choices", list)
        if r.problems:
            return r.problems
    """

    row: Row
    where: Location
    problems: list[RowProblem] = attrs.field(factory=list)

    def problem(self, field: str | None, reason: str, code: str) -> None:
        self.problems.append(RowProblem(self.where, field, reason, code=code))

    def get(self, key: str, types: type | tuple[type, ...], *, required: bool = True,
            what: str | None = None) -> Any:
        """The raw value of ``key`` if it has one of ``types``; ``null`` counts as missing."""
        value = self.row.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problem(key, "required field is missing" if value is _MISSING else "required field is null",
                             "missing_field")
            return None
        # bool is a subclass of int: never accept true/false where a number or string is meant.
        if isinstance(value, types) and not (isinstance(value, bool) and bool not in _as_tuple(types)):
            return value
        self.problem(key, f"expected {what or _names(types)}, got {json_type_name(value)} {_short(value)}", "wrong_type")
        return None

    def number(self, key: str, *, required: bool = True, allow_negative: bool = False,
               allow_zero: bool = True, maximum: float = MAX_SECONDS) -> float | None:
        """A finite JSON number (not a boolean) within ``[0, maximum]`` by default."""
        value = self.get(key, (int, float), required=required, what="a number")
        if value is None:
            return None
        return self.check_number(key, value, allow_negative=allow_negative, allow_zero=allow_zero,
                                 maximum=maximum)

    def check_number(self, field: str, value: int | float, *, allow_negative: bool = False,
                     allow_zero: bool = True, maximum: float = MAX_SECONDS) -> float | None:
        """Range-check a number already known to be int/float (not bool); ``None`` if bad."""
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(field, f"must be a finite number, got {value}", "not_finite")
            return None
        # Compare before converting: float(10**400) raises OverflowError.
        if abs(value) > maximum:
            self.problem(field, f"{_short(value, 30)} is implausibly large (limit {maximum:g})", "too_large")
            return None
        number = float(value)
        if number < 0 and not allow_negative:
            self.problem(field, f"must not be negative, got {number:g}", "negative")
            return None
        if number == 0 and not allow_zero:
            self.problem(field, "must be greater than 0", "out_of_range")
            return None
        return number

    def text(self, key: str, *, required: bool = True) -> str | None:
        """A string with something besides whitespace, stripped."""
        value = self.get(key, str, required=required, what="a string")
        if value is None:
            return None
        if not value.strip():
            self.problem(key, "must not be empty or whitespace only", "empty")
            return None
        return value.strip()


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _names(types: type | tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object", bool: "boolean"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(types))


# -- policy and report ---------------------------------------------------------------------------

PolicyMode = Literal["skip", "fail", "report"]


@attrs.frozen
class InvalidPolicy:
    """What to do with invalid rows (see the module docstring).

    ``max_invalid_fraction`` (0-1, ``None`` = no limit) applies to ``skip``; ``log_first`` bounds
    how many problems the skip warning lists (the count is always complete).
    """

    mode: PolicyMode = attrs.field(default="skip", validator=attrs.validators.in_(("skip", "fail", "report")))
    max_invalid_fraction: float | None = 0.05
    log_first: int = 10

    @classmethod
    def coerce(cls, policy: InvalidPolicy | str | None, max_invalid_fraction: float | None = None) -> InvalidPolicy:
        """Accept a policy object, a mode name, or ``None`` (= ``report``)."""
        if isinstance(policy, InvalidPolicy):
            if max_invalid_fraction is not None:
                return attrs.evolve(policy, max_invalid_fraction=max_invalid_fraction)
            return policy
        mode = "report" if policy is None else policy
        if mode not in ("skip", "fail", "report"):
            raise DataError(f"invalid-row policy must be 'skip', 'fail' or 'report', got {policy!r}")
        if max_invalid_fraction is None:
            return cls(mode=mode)
        return cls(mode=mode, max_invalid_fraction=max_invalid_fraction)


@attrs.define
class LoadReport:
    """Counts and problems of one load.

    ``rows`` = ``valid`` + ``invalid`` (blank lines are not rows). ``by_reason`` counts problems by
    code: a row with two bad fields counts once in ``invalid`` and under both codes.
    """

    path: str
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    by_reason: dict[str, int] = attrs.field(factory=dict)
    problems: list[RowProblem] = attrs.field(factory=list)

    @property
    def invalid_fraction(self) -> float:
        return self.invalid / self.rows if self.rows else 0.0

    def summary(self) -> str:
        """One line: rows, valid, invalid by reason."""
        reasons = ", ".join(f"{n} {code}" for code, n in sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
        text = f"{self.path}: {self.rows} rows, {self.valid} valid, {self.invalid} invalid"
        if self.invalid:
            text += f" ({100 * self.invalid_fraction:.1f}%: {reasons})"
        return text

    def format(self, limit: int | None = None) -> str:
        """The summary, then each problem with its location (the first ``limit`` if given)."""
        lines = [self.summary()]
        shown = self.problems if limit is None else self.problems[:limit]
        lines.extend(f"  {p}  [{p.code}]" for p in shown)
        if len(shown) < len(self.problems):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more (`vtg validate {self.path}` lists all)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "rows": self.rows, "valid": self.valid, "invalid": self.invalid,
            "by_reason": dict(self.by_reason),
            "problems": [{"where": str(p.where), "line": p.where.line, "index": p.where.index,
                          "field": p.field, "reason": p.reason, "code": p.code} for p in self.problems],
        }


def collect(
    rows: Iterable[tuple[Location, Row | RowProblem]],
    validate: Validator,
    policy: InvalidPolicy | PolicyMode | None = None,
    *,
    path: str = "<rows>",
    max_invalid_fraction: float | None = None,
) -> tuple[list[Sample], LoadReport]:
    """Turn rows into samples with ``validate(location, row)`` and apply ``policy``.

    ``validate`` returns a :class:`Sample`, a :class:`RowProblem`, or a non-empty list of them.
    ``policy=None`` means ``report`` (collect only). Raises :class:`DataError` under ``fail`` for
    any invalid row, under ``skip`` above ``max_invalid_fraction`` or when no row is valid.
    """
    pol = InvalidPolicy.coerce(policy, max_invalid_fraction)
    report = LoadReport(path=path)
    reasons: Counter[str] = Counter()
    samples: list[Sample] = []
    for where, row in rows:
        report.rows += 1
        result: RowResult = row if isinstance(row, RowProblem) else validate(where, row)
        if isinstance(result, Sample):
            samples.append(result)
            continue
        found = [result] if isinstance(result, RowProblem) else list(result)
        if not found:  # a validator bug; refuse to drop a row without a reason
            found = [RowProblem(where, None, "row rejected without a reason", code="invalid")]
        report.invalid += 1
        report.problems.extend(found)
        reasons.update(p.code for p in found)
        if pol.mode == "fail":
            # Stop at the first bad row: with `fail` the user wants to fix the file, not a tally.
            report.by_reason = dict(reasons)
            raise DataError(
                f"invalid row in {path} (invalid_policy=fail):\n"
                + "\n".join(f"  {p}  [{p.code}]" for p in found)
                + f"\nFix the row, or use invalid_policy=skip to leave invalid rows out; "
                f"`vtg validate {path}` lists every problem."
            )
    report.valid = len(samples)
    report.by_reason = dict(reasons)
    _apply(report, pol)
    return samples, report


def _apply(report: LoadReport, pol: InvalidPolicy) -> None:
    if pol.mode == "report":
        return
    if report.rows == 0:
        raise DataError(f"{report.path} has no rows: is it the right file?")
    if report.valid == 0:
        raise DataError(f"no valid row in {report.path}; wrong task or format?\n{report.format(limit=pol.log_first)}")
    limit = pol.max_invalid_fraction
    if limit is not None and report.invalid_fraction > limit:
        raise DataError(
            f"{100 * report.invalid_fraction:.1f}% of the rows are invalid, above max_invalid_fraction="
            f"{limit:g}; a wrong file or format is more likely than a few bad rows. Fix the data or raise "
            f"the limit.\n{report.format(limit=pol.log_first)}"
        )
    if report.invalid:
        logger.warning("skipped invalid rows (invalid_policy=skip): %s", report.format(limit=pol.log_first))
    else:
        logger.info("%s", report.summary())


def load_samples(
    path: str | os.PathLike[str],
    validate: Validator,
    policy: InvalidPolicy | PolicyMode | None = "skip",
    *,
    max_invalid_fraction: float | None = None,
) -> tuple[list[Sample], LoadReport]:
    """:func:`load_rows` + :func:`collect`: what a task's ``load`` usually is in one line."""
    path = os.fspath(path)
    return collect(load_rows(path), validate, policy, path=path, max_invalid_fraction=max_invalid_fraction)
