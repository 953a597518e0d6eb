"""Malformed annotation rows for fuzzing every registered task's loader (tests and the benchmark).

:func:`malformed_lines` is a hypothesis strategy of one JSONL line (bytes, no newline) derived from a
valid seed row: keys dropped, values of the wrong type, huge numbers (1e308, 10**400), NaN and
infinities, negative and reversed time pairs, deep nesting, unknown keys, broken UTF-8, truncated
JSON, garbage bytes, non-objects. :func:`check_load` feeds one file to a task and checks the
contract: no exception, no hang, every non-blank line either a sample or at least one problem
with that line number and a reason.
"""

from __future__ import annotations

import inspect
import json
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

LEAVES = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 2**63, 1e308, -1e308, 5e-324, 0, -0.0, -1, -1e9]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", " ", "NaN", "1e999", "-3.5", "\u0000", "clip.mp4", "../../etc/passwd", "\ud800"]),
)
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                           max_size=4), max_leaves=8)


def _deep(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


def _encode(row: Any) -> bytes:
    try:
        return json.dumps(row, allow_nan=True).encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        return b'{"unencodable": true'


@st.composite
def mutated_row(draw: Any, seeds: Sequence[dict[str, Any]]) -> bytes:
    row = json.loads(json.dumps(draw(st.sampled_from(list(seeds)))))
    keys = list(row)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "retype", "negate", "reverse", "huge", "nan", "nest", "extra"]))
        key = draw(st.sampled_from(keys)) if keys else "video"
        value = row.get(key)
        if op == "drop":
            row.pop(key, None)
        elif op == "retype":
            row[key] = draw(VALUES)
        elif op == "negate" and isinstance(value, int | float) and not isinstance(value, bool):
            row[key] = -abs(value) - 1
        elif op == "negate" and isinstance(value, list) and all(isinstance(v, int | float) for v in value):
            row[key] = [-abs(v) - 1 for v in value]
        elif op == "reverse" and isinstance(value, list):
            row[key] = list(reversed(value)) if len(value) > 1 else [5.0, 1.0]
        elif op == "huge":
            row[key] = draw(st.sampled_from([10**400, 1e308, [1e308, 1e309], [0, 10**400], "9" * 5000]))
        elif op == "nan":
            row[key] = draw(st.sampled_from([float("nan"), float("inf"), [float("nan"), 1.0], [0.0, float("-inf")]]))
        elif op == "nest":
            row[key] = json.loads(_deep(draw(st.integers(50, 400)), draw(st.sampled_from(["list", "dict"]))))
        else:
            row[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
    return _encode(row)


@st.composite
def broken_line(draw: Any, seeds: Sequence[dict[str, Any]]) -> bytes:
    base = _encode(draw(st.sampled_from(list(seeds))))
    kind = draw(st.sampled_from(["truncate", "utf8", "garbage", "deep", "not_object", "empty_object", "nan_literal"]))
    if kind == "truncate":
        return base[: draw(st.integers(1, max(1, len(base) - 1)))]
    if kind == "utf8":
        at = draw(st.integers(0, len(base)))
        return base[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\xbc"])) + base[at:]
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=64)).replace(b"\n", b" ").replace(b"\r", b" ")
    if kind == "deep":  # past Python's recursion limit for json
        return _deep(draw(st.integers(1_000, 20_000)), draw(st.sampled_from(["list", "dict"]))).encode()
    if kind == "not_object":
        return _encode(draw(VALUES.filter(lambda v: not isinstance(v, dict))))
    if kind == "empty_object":
        return b"{}"
    return base.replace(b"}", b', "x": NaN, "y": -Infinity}', 1)


def malformed_lines(seeds: Sequence[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    line = st.one_of(mutated_row(seeds), broken_line(seeds), st.sampled_from([_encode(s) for s in seeds]))
    return line.filter(lambda b: b.strip() != b"")


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang("the loader took longer than the time limit")


def _write(path: Path, lines: Sequence[bytes], fmt: str) -> None:
    if fmt == "jsonl":
        path.write_bytes(b"\n".join(lines) + b"\n")
    else:  # one JSON document holding the rows, one per line ({"data": [...]}, as Road Buddy files are)
        path.write_bytes(b'{"__count__": %d, "data": [\n' % len(lines) + b",\n".join(lines) + b"\n]}\n")


def file_format(task: Any, path: Path, seeds: Sequence[dict[str, Any]], video_dir: str | None) -> str:
    """``jsonl`` when the task reads the seed rows as JSON Lines, else ``document``."""
    from vtg_core.errors import VtgError

    _write(path, [_encode(s) for s in seeds], "jsonl")
    try:
        _load(task, path, video_dir)
    except VtgError:
        return "document"
    return "jsonl"


def _load(task: Any, path: Path, video_dir: str | None) -> Any:
    kwargs: dict[str, Any] = {"video_dir": video_dir}
    if "policy" in inspect.signature(task.load).parameters:
        kwargs["policy"] = "report"  # never raises for content: everything is checked here
    return task.load(str(path), **kwargs)


def check_load(task: Any, path: Path, lines: Sequence[bytes], video_dir: str | None, fmt: str = "jsonl",
               time_limit: int = 20) -> dict[str, int]:
    """Load ``lines`` (written to ``path`` as ``fmt``) with ``task``; assert the contract; return counts.

    JSON Lines: every non-blank line is a sample or rejected with its line number and a reason. A
    JSON document: the same by array index, or, when the document itself is broken (truncated,
    bad UTF-8), one clean :class:`~vtg_core.errors.VtgError` naming the file (and where it breaks).
    """
    from vtg_core.errors import VtgError

    _write(path, lines, fmt)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(time_limit)
    try:
        result = _load(task, path, video_dir)
    except VtgError as exc:
        if fmt == "jsonl":
            raise
        assert str(path) in str(exc), f"a file-level error must name the file: {exc}"
        return {"rows": len(lines), "accepted": 0, "rejected": len(lines), "file_errors": 1}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    samples, problems = result if isinstance(result, tuple) else (result, [])
    if fmt == "jsonl":
        # Blank lines are not rows; the loader drops a UTF-8 byte-order mark at the start of the file.
        expected = {i + 1 for i, line in enumerate(lines)
                    if (line[3:] if i == 0 and line.startswith(b"\xef\xbb\xbf") else line).strip()}
        key = "line"
    else:
        expected, key = set(range(len(lines))), "index"
    accepted = {getattr(s.source, key) for s in samples}
    rejected = {getattr(p.where, key) for p in problems}
    assert None not in accepted and None not in rejected, f"every sample and problem must name its {key}"
    assert not accepted & rejected, f"rows both accepted and rejected: {sorted(accepted & rejected)[:5]}"
    assert accepted | rejected == expected, f"rows neither accepted nor rejected: {sorted(expected - accepted - rejected)[:5]}"
    for p in problems:
        assert isinstance(p.reason, str) and p.reason.strip(), f"problem without a reason at {p.where}"
        assert str(getattr(p.where, key)) in str(p), f"the message of {p!r} does not show its {key}"
    return {"rows": len(expected), "accepted": len(accepted), "rejected": len(rejected), "file_errors": 0}


def seed_rows(task: Any, name: str, directory: Path) -> list[dict[str, Any]]:
    """Valid rows of ``task``'s format: from its demo data when it has one, else a grounding row."""
    maker = getattr(task, "make_demo_data", None)
    if callable(maker):
        train = Path(maker(directory / name, seed=0)["train"])
        if train.is_dir():  # a saved `datasets` folder
            from datasets import load_from_disk

            rows = [dict(r) for r in load_from_disk(str(train))]
        else:
            from vtg_core.data.annotations import load_rows

            rows = [row for _, row in load_rows(train) if isinstance(row, dict)]
        if rows:
            return json.loads(json.dumps(rows[:8], default=str))
    return [{"video": "clip.mp4", "duration": 24.9, "timestamp": [11.3, 15.0], "sentence": "the man opens the door",
             "qid": "a1", "video_start": 404.2, "video_end": 429.1, "difficulty": 24.6},
            {"video": "b.mp4", "duration": 8.0, "timestamp": [0.0, 2.5], "sentence": "a dog runs"}]
