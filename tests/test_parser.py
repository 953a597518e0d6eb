"""The one answer parser shared by SFT checks, GRPO rewards and evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtg_core.tasks.temporal_grounding.parser import parse_segment


def seconds(text, duration=30.0, **kw):
    return parse_segment(text, duration=duration, **kw)


@pytest.mark.parametrize("text, expected", [
    ("12.5 to 15.0", (12.5, 15.0)),
    ("12.5 - 15.0", (12.5, 15.0)),
    ("12.5-15", (12.5, 15.0)),
    ("<answer>12.5 - 15.0</answer>", (12.5, 15.0)),
    ("The event happens from 12.5s to 15s.", (12.5, 15.0)),
    ("[12.5, 15.0]", (12.5, 15.0)),
    ("(3, 4.25)", (3.0, 4.25)),
    ("between 2 and 7 seconds", (2.0, 7.0)),
    ("12.5 seconds to 15.0 seconds", (12.5, 15.0)),
    ("1.5 ~ 3", (1.5, 3.0)),
    ("12.5 – 15.0", (12.5, 15.0)),
    ("start: 4.0, end: 9.5", (4.0, 9.5)),
    ("Start time = 4 s; end time = 9 s", (4.0, 9.0)),
    ("from 1:05 to 1:20.5", (65.0, 80.5)),
    ("0:00:10 to 0:00:12", (10.0, 12.0)),
    (".5 to 2.", (0.5, 2.0)),
    ("<ANSWER> 3 to 4 </ANSWER>", (3.0, 4.0)),
])
def test_reads_the_accepted_formats_in_seconds(text, expected):
    result = seconds(text)
    assert result.ok, result.error
    assert result.value == pytest.approx(expected)
    assert result.error is None


def test_answer_block_wins_over_text_and_think():
    text = "<think>maybe 1 to 2, no: 5 to 6</think> noise 7 to 8 <answer>10 to 12</answer>"
    assert seconds(text).value == (10.0, 12.0)
    # with several answers, the last (final) one
    assert seconds("<answer>1 to 2</answer> <answer>3 to 4</answer>").value == (3.0, 4.0)
    # an unclosed answer at the end of a truncated generation still counts
    assert seconds("<think>x 1 to 2</think><answer>5 to 9").value == (5.0, 9.0)


def test_think_is_ignored_without_an_answer_block():
    assert seconds("<think>I see 1 to 2</think> It is 5 to 6.").value == (5.0, 6.0)
    result = seconds("<think>I see 1 to 2 and then")
    assert not result.ok and "unclosed <think>" in result.error


@pytest.mark.parametrize("text", ["", "   ", "no numbers here", "12.5", "at 12.5 seconds", "<answer></answer>",
                                  "<answer>soon</answer> 1 to 2", "<12><40>"])
def test_failures_never_invent_a_prediction(text):
    result = seconds(text)
    assert not result.ok and result.value is None and result.error


def test_non_string_and_non_finite_fail():
    assert not seconds(None).ok
    assert not seconds(["1 to 2"]).ok
    assert "finite" in seconds("1 to " + "9" * 400).error


def test_reversed_segment_parses_and_keeps_its_order():
    assert seconds("15 to 12.5").value == (15.0, 12.5)


def test_values_are_not_clipped_and_negatives_are_read():
    assert seconds("-3 to 5").value == (-3.0, 5.0)
    assert seconds("25 to 45", duration=30.0).value == (25.0, 45.0)
    assert seconds("2 - -1").value == (2.0, -1.0)


def test_number_is_not_cut_short_by_backtracking():
    assert seconds("1 to 15.5abc").value == (1.0, 15.5)
    assert seconds("v2 1 to 3").value == (1.0, 3.0)


def test_relative_times_are_converted_with_duration():
    result = parse_segment("<answer>0.25 to 0.75</answer>", duration=40.0, relative=True)
    assert result.ok and result.value == (10.0, 30.0)
    # out-of-range fractions are the model's answer, converted as written (rewards clip)
    assert parse_segment("0.5 to 1.5", duration=10.0, relative=True).value == (5.0, 15.0)
    # clock times are seconds: not an answer in relative mode
    assert not parse_segment("0:01 to 0:02", duration=10.0, relative=True).ok
    assert "duration" in parse_segment("0.1 to 0.2", duration=None, relative=True).error
    assert not parse_segment("0.1 to 0.2", duration=0, relative=True).ok


def test_temporal_tokens():
    result = parse_segment("<answer><12><40></answer>", duration=99.0, num_bins=100, use_temporal_tokens=True)
    assert result.ok and result.value == pytest.approx((12.0, 40.0))
    assert parse_segment("<0> to <99>", duration=50.0, num_bins=100, use_temporal_tokens=True).value == (0.0, 50.0)
    assert parse_segment("<3> <1>", duration=10.0, num_bins=11, use_temporal_tokens=True).value == (3.0, 1.0)
    out_of_range = parse_segment("<12><100>", duration=99.0, num_bins=100, use_temporal_tokens=True)
    assert not out_of_range.ok and "<100>" in out_of_range.error
    # token mode reads only tokens
    assert not parse_segment("12 to 40", duration=99.0, num_bins=100, use_temporal_tokens=True).ok
    assert not parse_segment("<1><2>", duration=9.0, num_bins=None, use_temporal_tokens=True).ok


def test_search_think_reads_the_last_pair_of_the_reasoning():
    text = "<think>first 1 to 2, finally 4 to 8</think><answer>4 to 9</answer>"
    assert parse_segment(text, duration=10.0, search_think=True).value == (4.0, 8.0)
    assert not parse_segment("<answer>4 to 9</answer>", duration=10.0, search_think=True).ok


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzz_parser_never_raises(text):
    for kw in ({}, {"relative": True}, {"use_temporal_tokens": True, "num_bins": 10}):
        result = parse_segment(text, duration=10.0, **kw)
        assert result.ok == (result.value is not None)
        assert result.ok or result.error
