"""The one parser of refusal-aware answers: answers, refusals, corrections, the format check, failures."""

from __future__ import annotations

import json

import pytest
from vtg_rewards_refusal.parser import correction_of, is_well_formed, parse_refusal


def parse(text, duration=100.0, **kw):
    return parse_refusal(text, duration=duration, **kw)


def test_answer_with_nil_correction():
    p = parse("<think>it is there</think> <answer>20.0 to 40.0</answer> <correction>NIL</correction>")
    assert p.ok and p.value == {"segment": [20.0, 40.0], "refused": False, "correction": None, "well_formed": True}
    json.dumps(p.value)  # prediction files store it as is


def test_refusal_with_correction():
    p = parse("<think>no basketball here</think>\n<answer>The query does not match the video.</answer>\n"
              "<correction>a person is cooking pasta</correction>")
    assert p.ok and p.value["refused"] and p.value["segment"] is None
    assert p.value["correction"] == "a person is cooking pasta" and p.value["well_formed"]


@pytest.mark.parametrize("text", ["NIL", "nil", " NIL. ", "", "   "])
def test_nil_and_empty_corrections_are_none(text):
    assert correction_of(f"<answer>x</answer><correction>{text}</correction>") is None


def test_correction_whitespace_is_collapsed_and_last_block_wins():
    assert correction_of("<correction>a</correction> <correction> the  red\nsquare </correction>") == "the red square"
    assert correction_of("<answer>no</answer> <correction>the red sq") == "the red sq"  # truncated generation
    assert correction_of("<answer>no</answer>") is None


@pytest.mark.parametrize("answer", ["12 to 15", "12-15", "[12, 15]", "from 12s to 15s", "12.0 to 15.0"])
def test_every_core_segment_form_is_a_timestamp(answer):
    # The seed's regex (\d+\.\d+ to \d+\.\d+) would call "12 to 15" a refusal; the core parser reads it.
    p = parse(f"<think>t</think> <answer>{answer}</answer> <correction>NIL</correction>")
    assert p.ok and p.value["segment"] == [12.0, 15.0] and not p.value["refused"]


@pytest.mark.parametrize("text", [
    "", "I am not sure", "<think>still thinking",
    "<think>t</think> <answer>  </answer> <correction>x</correction>",
    "<think>t</think> <correction>the red square</correction>",
    None,
])
def test_failures_are_not_refusals(text):
    # Silence, an empty answer or an unfinished thought must not earn the refusal reward.
    p = parse(text)
    assert not p.ok and p.value is None and p.error


def test_untagged_timestamp_counts_as_an_answer():
    p = parse("<think>t</think> It happens from 3.5 to 7.0 seconds.")
    assert p.ok and p.value["segment"] == [3.5, 7.0] and not p.value["well_formed"]


def test_unclosed_answer_stops_at_the_correction():
    p = parse("<think>t</think> <answer>does not match <correction>the blue circle 2</correction>")
    assert p.ok and p.value["refused"] and p.value["correction"] == "the blue circle 2"


def test_relative_answers_and_reversed_order_are_kept():
    p = parse("<answer>0.25 to 0.5</answer>", duration=8.0, relative=True)
    assert p.value["segment"] == [2.0, 4.0]
    assert parse("<answer>15 to 12</answer>").value["segment"] == [15.0, 12.0]  # metrics score it 0


@pytest.mark.parametrize("text,ok", [
    ("<think>a</think> <answer>b</answer> <correction>c</correction>", True),
    ("<think>a</think><answer>b</answer><correction>c</correction>", True),
    ("  <think>line 1\nline 2</think>\n<answer>1.0 to 2.0</answer>\n<correction>NIL</correction>\n", True),
    ("<think>a</think> <answer>b</answer>", False),  # no correction
    ("<answer>b</answer> <think>a</think> <correction>c</correction>", False),  # order
    ("<think>a</think> <answer>b</answer> <correction>c</correction> extra", False),  # text outside
    ("preamble <think>a</think> <answer>b</answer> <correction>c</correction>", False),
    ("<think>a</think> <answer>b</answer> <correction>c</correction><correction>d</correction>", False),
    ("<think>a</think> <answer>b</answer><answer>x</answer> <correction>c</correction>", False),
    ("<think>a <answer>x</answer></think> <answer>b</answer> <correction>c</correction>", False),
    ("<THINK>a</THINK> <answer>b</answer> <correction>c</correction>", False),  # the tags are exact
])
def test_format_is_the_three_tags_in_order_and_nothing_else(text, ok):
    assert is_well_formed(text) is ok
    assert is_well_formed(None) is False
