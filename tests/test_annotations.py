"""Annotation reading (JSON Lines / JSON arrays), row checking and the invalid-row policy."""

from __future__ import annotations

import json
import logging
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtg_core.data.annotations import (
    InvalidPolicy,
    RowReader,
    collect,
    load_rows,
    load_samples,
)
from vtg_core.data.sample import Location, Sample
from vtg_core.errors import DataError
from vtg_core.tasks.base import RowProblem
from vtg_core.tasks.temporal_grounding.schema import row_to_sample

GOOD = {"video": "a.mp4", "duration": 10.0, "timestamp": [1.0, 2.0], "sentence": "a man waves"}


def write(tmp_path, name, data: bytes | str):
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def rows_of(path):
    return list(load_rows(path))


def validator(where, row):
    return row_to_sample(where, row)


# -- JSON Lines -----------------------------------------------------------------------------------

def test_jsonl_lines_are_one_based_and_blank_lines_skipped(tmp_path):
    text = json.dumps(GOOD) + "\n\n   \n" + json.dumps({**GOOD, "qid": "q2"}) + "\n"
    path = write(tmp_path, "a.jsonl", text)
    got = rows_of(path)
    assert [loc.line for loc, _ in got] == [1, 4]
    assert all(isinstance(row, dict) for _, row in got)
    assert got[0][0] == Location(path, line=1)


def test_jsonl_broken_utf8_is_reported_on_its_line_only(tmp_path):
    bad = b'{"video": "a.mp4", "sentence": "caf\xe9"}'
    data = json.dumps(GOOD).encode() + b"\n" + bad + b"\n" + json.dumps(GOOD).encode() + b"\n"
    path = write(tmp_path, "a.jsonl", data)
    got = rows_of(path)
    assert len(got) == 3
    loc, problem = got[1]
    assert isinstance(problem, RowProblem)
    assert (loc.line, problem.code) == (2, "bad_utf8")
    assert "UTF-8" in problem.reason
    assert isinstance(got[2][1], dict)


def test_jsonl_truncated_and_bad_lines_report_line_and_json_error(tmp_path):
    data = json.dumps(GOOD) + "\n" + '{"video": "a.mp4", "dur' + "\n" + "{'single': 'quotes'}\n"
    path = write(tmp_path, "a.jsonl", data)
    got = rows_of(path)
    assert [(loc.line, getattr(r, "code", "row")) for loc, r in got] == [(1, "row"), (2, "bad_json"), (3, "bad_json")]
    assert "invalid JSON" in got[1][1].reason and "column" in got[1][1].reason
    assert str(got[1][1]).startswith(f"{path}:2:")


@pytest.mark.parametrize("line, kind", [("[1, 2]", "array"), ('"text"', "string"), ("3", "number"),
                                        ("null", "null"), ("true", "boolean")])
def test_jsonl_row_that_is_not_an_object_is_a_problem(tmp_path, line, kind):
    path = write(tmp_path, "a.jsonl", line + "\n")
    [(loc, problem)] = rows_of(path)
    assert problem.code == "not_object" and kind in problem.reason


def test_jsonl_byte_order_mark_and_crlf_are_accepted(tmp_path):
    data = b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\r\n" + json.dumps(GOOD).encode() + b"\r\n"
    path = write(tmp_path, "a.jsonl", data)
    assert [isinstance(r, dict) for _, r in rows_of(path)] == [True, True]


def test_deep_nesting_and_huge_integer_literals_do_not_crash(tmp_path):
    data = "[" * 200_000 + "\n" + '{"x": ' + "9" * 6000 + "}\n"
    path = write(tmp_path, "a.jsonl", data)
    got = rows_of(path)
    assert [r.code for _, r in got] == ["bad_json", "bad_json"]


def test_json_file_holding_lines_is_read_as_jsonl(tmp_path):
    path = write(tmp_path, "a.json", json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    assert [loc.line for loc, _ in rows_of(path)] == [1, 2]


def test_a_single_pretty_printed_object_is_one_clear_problem(tmp_path):
    path = write(tmp_path, "a.json", json.dumps({"data": [GOOD]}, indent=2))
    [(loc, problem)] = rows_of(path)
    assert loc.line == 1 and "one JSON object" in problem.reason


def test_missing_file_and_directory_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        rows_of(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="directory"):
        rows_of(str(tmp_path))


# -- JSON arrays ----------------------------------------------------------------------------------

def test_json_array_rows_are_located_by_index(tmp_path):
    path = write(tmp_path, "a.json", json.dumps([GOOD, 5, {**GOOD, "qid": "x"}], indent=2))
    got = rows_of(path)
    assert [loc.index for loc, _ in got] == [0, 1, 2]
    assert all(loc.line is None for loc, _ in got)
    assert got[1][1].code == "not_object"
    assert str(got[1][0]) == f"{path}[1]"


def test_json_array_truncated_keeps_earlier_elements_and_reports_line(tmp_path):
    text = json.dumps([GOOD, GOOD], indent=2)
    cut = text[: text.rindex("{") + 12]  # inside the second element
    path = write(tmp_path, "a.json", cut)
    got = rows_of(path)
    assert isinstance(got[0][1], dict)
    loc, problem = got[1]
    assert loc.index == 1 and problem.code == "bad_json"
    assert "line" in problem.reason


def test_json_array_missing_closing_bracket(tmp_path):
    path = write(tmp_path, "a.json", "[" + json.dumps(GOOD) + ",\n" + json.dumps(GOOD))
    got = rows_of(path)
    assert [isinstance(r, dict) for _, r in got] == [True, True, False]
    assert "missing closing ']'" in got[2][1].reason


@pytest.mark.parametrize("text, reason", [
    ("[{\"a\": 1},]", "invalid JSON"),
    ("[" + json.dumps(GOOD) + " " + json.dumps(GOOD) + "]", "expected ','"),
    ("[" + json.dumps(GOOD) + "] trailing", "after the closing"),
])
def test_json_array_syntax_errors(tmp_path, text, reason):
    path = write(tmp_path, "a.json", text)
    problems = [r for _, r in rows_of(path) if isinstance(r, RowProblem)]
    assert len(problems) == 1 and reason in problems[0].reason


def test_json_array_empty_and_bad_utf8_element(tmp_path):
    assert rows_of(write(tmp_path, "e.json", "  [ ]  ")) == []
    data = b"[\n" + json.dumps(GOOD).encode() + b",\n" + b'{"sentence": "caf\xe9"},\n' + json.dumps(GOOD).encode() + b"\n]"
    got = rows_of(write(tmp_path, "u.json", data))
    assert [getattr(r, "code", "row") for _, r in got] == ["row", "bad_utf8", "row"]
    assert "line 3" in got[1][1].reason


# -- RowReader ------------------------------------------------------------------------------------

def test_row_reader_rejects_bool_nan_and_huge_numbers():
    where = Location("f.jsonl", line=1)
    r = RowReader({"a": True, "b": float("nan"), "c": 10**400, "d": -1, "e": "  ", "f": 3}, where)
    assert r.number("a") is None and r.number("b") is None and r.number("c") is None
    assert r.number("d") is None and r.text("e") is None and r.number("missing") is None
    assert r.number("f") == 3.0 and isinstance(r.number("f"), float)
    assert [p.code for p in r.problems] == ["wrong_type", "not_finite", "too_large", "negative", "empty",
                                           "missing_field"]
    assert all(p.where == where for p in r.problems)


# -- collect / policy -----------------------------------------------------------------------------

def _file(tmp_path, good: int, bad: int):
    lines = [json.dumps({**GOOD, "qid": f"q{i}"}) for i in range(good)]
    lines += [json.dumps({**GOOD, "timestamp": [5, 1]})] * bad
    return write(tmp_path, "d.jsonl", "\n".join(lines) + "\n")


def test_skip_logs_every_skipped_row_count_and_first_lines(tmp_path, caplog):
    path = _file(tmp_path, good=30, bad=1)
    with caplog.at_level(logging.WARNING, logger="vtg_core.data.annotations"):
        samples, report = load_samples(path, validator, "skip")
    assert len(samples) == 30
    assert (report.rows, report.valid, report.invalid, report.by_reason) == (31, 30, 1, {"reversed": 1})
    text = caplog.text
    assert "1 invalid" in text and f"{path}:31" in text and "reversed" in text


def test_skip_lists_only_first_n_problems_but_counts_all(tmp_path, caplog):
    path = _file(tmp_path, good=100, bad=4)
    pol = InvalidPolicy(mode="skip", max_invalid_fraction=0.5, log_first=2)
    with caplog.at_level(logging.WARNING, logger="vtg_core.data.annotations"):
        _, report = load_samples(path, validator, pol)
    assert report.invalid == 4 and len(report.problems) == 4
    assert "4 invalid" in caplog.text and "and 2 more" in caplog.text


def test_skip_above_threshold_stops_with_summary(tmp_path):
    path = _file(tmp_path, good=9, bad=2)
    with pytest.raises(DataError, match=r"18\.2% of the rows are invalid.*max_invalid_fraction=0\.1") as info:
        load_samples(path, validator, "skip", max_invalid_fraction=0.1)
    assert f"{path}:10" in str(info.value)
    samples, report = load_samples(path, validator, "skip", max_invalid_fraction=0.2)
    assert len(samples) == 9


def test_fail_raises_with_line_numbers(tmp_path):
    path = _file(tmp_path, good=3, bad=1)
    with pytest.raises(DataError, match=rf"{path}:4: field 'timestamp': start 5 is after end 1"):
        load_samples(path, validator, "fail")


def test_report_mode_never_raises_and_logs_nothing(tmp_path, caplog):
    path = _file(tmp_path, good=0, bad=3)
    with caplog.at_level(logging.INFO):
        samples, report = load_samples(path, validator, None)
    assert samples == [] and report.invalid == 3 and caplog.text == ""


def test_empty_file_and_all_invalid_raise_under_skip(tmp_path):
    with pytest.raises(DataError, match="no rows"):
        load_samples(write(tmp_path, "e.jsonl", "\n\n"), validator, "skip")
    with pytest.raises(DataError, match="no valid row"):
        load_samples(_file(tmp_path, good=0, bad=2), validator, InvalidPolicy(max_invalid_fraction=None))


def test_collect_counts_a_row_with_several_problems_once():
    rows = [(Location("f", line=1), {"video": 1, "duration": True, "timestamp": [1, 2], "sentence": ""})]
    samples, report = collect(rows, validator)
    assert report.invalid == 1 and len(report.problems) == 3
    assert report.by_reason == {"wrong_type": 2, "empty": 1}
    assert report.to_dict()["problems"][0]["line"] == 1


def test_unknown_policy_is_refused():
    with pytest.raises(DataError, match="policy"):
        collect([], validator, "drop")


# -- fuzz: nothing but samples and problems -------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
field_values = st.one_of(
    json_values,
    st.lists(st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none()),
             max_size=3),
)
row_like = st.fixed_dictionaries(
    {},
    optional={k: field_values for k in ("video", "duration", "timestamp", "sentence", "video_start", "video_end",
                                        "qid", "difficulty", "pred", "kwargs")},
)
_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check_results(path):
    samples, report = load_samples(path, validator, None)
    assert report.rows == report.valid + report.invalid == len(samples) + report.invalid
    for sample in samples:
        assert isinstance(sample, Sample)
        start, end = sample.answer
        assert 0 <= start <= end <= sample.duration and math.isfinite(sample.duration)
    for problem in report.problems:
        assert isinstance(problem, RowProblem) and problem.where.line is not None
    return samples, report


@_FUZZ
@given(values=st.lists(st.one_of(json_values, row_like), min_size=1, max_size=5))
def test_fuzz_any_json_value_per_line(tmp_path, values):
    text = "\n".join(json.dumps(v, allow_nan=True) for v in values)
    _check_results(write(tmp_path, "fuzz.jsonl", text))


@_FUZZ
@given(lines=st.lists(st.binary(max_size=40), min_size=1, max_size=5))
def test_fuzz_arbitrary_bytes_per_line(tmp_path, lines):
    _check_results(write(tmp_path, "fuzz.jsonl", b"\n".join(lines)))


@_FUZZ
@given(values=st.lists(st.one_of(json_values, row_like), max_size=5), cut=st.integers(min_value=0, max_value=400))
def test_fuzz_json_array_possibly_truncated(tmp_path, values, cut):
    text = json.dumps(values, allow_nan=True, indent=1)
    path = write(tmp_path, "fuzz.json", text[: max(1, len(text) - cut)])
    samples, report = load_samples(path, validator, None)
    assert report.rows == len(samples) + report.invalid
