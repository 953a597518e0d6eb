"""Parser, metrics and GRPO rewards of ``robot_vqa``: one parser, so rewards and metrics agree."""

from __future__ import annotations

import math

import pytest
from vtg_robot_vqa.metrics import aggregate, sample_scores, seed_report
from vtg_robot_vqa.parser import parse_answer
from vtg_robot_vqa.rewards import preference_exact, progress_closeness


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("1", "preference", 1), ("ANS: 2", "preference", 2), ("ans:1\n", "preference", 1), (" 2. ", "preference", 2),
    ("75", "progress", 75), ("ANS: 100", "progress", 100), ("ANS: 0", "progress", 0), ("ANS: 42.6", "progress", 43),
])
def test_parser_reads_bare_and_formatted_answers(text, kind, value):
    parsed = parse_answer(text, kind)
    assert parsed.ok and parsed.value == value


@pytest.mark.parametrize(("text", "kind"), [
    ("3", "preference"), ("1 or 2", "preference"), ("ANS: 1 ANS: 2", "preference"), ("", "preference"),
    ("Video 1", "preference"), ("101", "progress"), ("-5", "progress"), ("about 50%", "progress"),
])
def test_parser_fails_rather_than_guesses(text, kind):
    parsed = parse_answer(text, kind)
    assert not parsed.ok and parsed.value is None and parsed.error


def test_metrics_accuracy_mae_rmse_counts_and_parse_failures():
    cases = [("1", "preference", "1"), ("2", "preference", "1"), ("nonsense", "preference", "2"),
             ("ANS: 2", "preference", "2"), ("70", "progress", "75"), ("ANS: 90", "progress", "75"),
             ("?", "progress", "10")]
    parsed = [parse_answer(text, kind) for text, kind, _ in cases]
    scores = [sample_scores(p, kind, truth) for p, (_, kind, truth) in zip(parsed, cases, strict=True)]
    m = aggregate(scores, parsed)
    assert m["num_samples"] == 7 and m["num_preference"] == 4 and m["num_progress"] == 3
    assert m["preference_accuracy"] == pytest.approx(2 / 4) and m["preference_correct"] == 2
    assert m["progress_mae"] == pytest.approx((5 + 15) / 2)
    assert m["progress_rmse"] == pytest.approx(math.sqrt((25 + 225) / 2))
    assert m["parse_failures"] == 2 and m["parse_failure_rate"] == pytest.approx(2 / 7)
    assert m["preference_parse_failures"] == 1 and m["progress_parse_failures"] == 1
    report = seed_report(m)
    assert report["sample_types"] == {"preference": 4, "progress": 3}
    assert report["preference"] == {"count": 4, "correct": 2, "accuracy": 0.5, "parse_failures": 1}
    assert report["progress"]["mae"] == pytest.approx(10.0) and report["total_samples"] == 7


def test_metrics_of_a_single_type_leave_the_other_undefined():
    parsed = [parse_answer("1", "preference")]
    m = aggregate([sample_scores(parsed[0], "preference", "1")], parsed)
    assert m["preference_accuracy"] == 1.0 and math.isnan(m["progress_mae"])
    assert seed_report(m)["progress"]["mae"] is None


def test_rewards_score_their_own_rows_and_skip_the_others():
    pref, prog = preference_exact(), progress_closeness()
    completions = ["ANS: 1", "2", "junk", "ANS: 80", "75", "no idea"]
    types = ["preference", "preference", "preference", "progress", "progress", "progress"]
    answers = ["1", "1", "2", "60", "75", "30"]
    assert pref(prompts=[""] * 6, completions=completions, sample_type=types, answer=answers) == \
        [1.0, 0.0, 0.0, None, None, None]
    assert prog(prompts=[""] * 6, completions=completions, sample_type=types, answer=answers) == \
        [None, None, None, pytest.approx(0.8), 1.0, 0.0]
    chat = [[{"role": "assistant", "content": "ANS: 2"}]]
    assert pref(prompts=[""], completions=chat, sample_type=["preference"], answer=["2"]) == [1.0]
    assert progress_closeness(scale=50)(prompts=[""], completions=["0"], sample_type=["progress"],
                                        answer=["100"]) == [0.0]
    with pytest.raises(ValueError, match="scale"):
        progress_closeness(scale=0)
