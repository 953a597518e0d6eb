"""Prompts in the question's language, the letter parser, the rewards and the metrics."""

from __future__ import annotations

import pytest

from vtg_core.data.sample import Sample
from vtg_core.tasks.base import ParseResult

CHOICES = ["Turn left", "Go straight", "Stop"]


def _sample(question="Xe phía trước đang làm gì?", choices=("Rẽ trái", "Đi thẳng", "Dừng lại"), answer="B"):
    letters = ["A", "B", "C", "D"][:len(choices)]
    return Sample(id="s1", video="clip.mp4", duration=None, query=question, answer=answer,
                  inputs={"letters": letters, "choices": list(choices), "support_frames": []})


@pytest.mark.parametrize(("text", "lang"), [
    ("Xe phía trước đang làm gì?", "vi"),
    ("Biển báo nào xuất hiện trong video?", "vi"),
    ("Xe co duoc phep re trai khong? Xe cho nguoi nao", "vi"),  # no diacritics, Vietnamese words
    ("What is the car in front doing?", "en"),
    ("Which sign appears in the video?", "en"),
])
def test_language_detection(text, lang):
    from vtg_dashcam_mcq.prompts import detect_language

    assert detect_language(text) == lang


def test_prompts_follow_the_question_language_and_list_every_choice():
    from vtg_dashcam_mcq.task import DashcamMCQTask

    task = DashcamMCQTask()
    vi = task.build_messages(_sample())[0]["content"]
    assert vi[0] == {"type": "video"}
    text = vi[1]["text"]
    assert "Câu hỏi: Xe phía trước đang làm gì?" in text and "A. Rẽ trái\nB. Đi thẳng\nC. Dừng lại" in text
    assert "(A, B, C)" in text
    en = task.build_messages(_sample("What is the car doing?", CHOICES))[0]["content"][1]["text"]
    assert "Question: What is the car doing?" in en and "C. Stop" in en and "Câu" not in en
    forced = DashcamMCQTask(language="en").build_messages(_sample())[0]["content"][1]["text"]
    assert forced.startswith("Here is a video") and "Rẽ trái" in forced
    assert task.target(_sample()) == "B"
    assert task.parse(task.target(_sample()), _sample()) == ParseResult(True, "B")  # the target parses


@pytest.mark.parametrize(("text", "letter"), [
    ("B", "B"), ("B.", "B"), ("(B)", "B"), ("b.", "B"), ("B) Go straight", "B"),
    ("Đáp án: B", "B"), ("Đáp án đúng là C", "C"), ("The answer is (B)", "B"), ("Answer: C", "C"),
    ("Câu trả lời là A", "A"), ("I would pick option C here.", "C"), ("... so (A) fits", "A"),
    ("Stop", "C"), ("The driver should go straight.", "B"),
])
def test_the_parser_finds_the_letter_in_free_text(text, letter):
    from vtg_dashcam_mcq.parser import parse_letter

    assert parse_letter(text, "ABC", CHOICES) == ParseResult(True, letter)


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty answer"),
    ("D", "not one of the choices ABC"),
    ("Answer: D", "not one of the choices"),
    ("B or C", "ambiguous"),
    ("A or B", "ambiguous"),
    ("Đáp án: B. Đáp án: C", "several letters"),
    ("A car stops suddenly", "no choice letter"),  # the article, and 'stops' is not 'Stop'
    ("I do not know", "no choice letter"),
])
def test_a_text_without_one_valid_letter_is_a_parse_failure(text, why):
    from vtg_dashcam_mcq.parser import parse_letter

    result = parse_letter(text, "ABC", CHOICES)
    assert not result.ok and result.value is None and why in result.error


def test_rewards_score_letters_and_format_and_skip_other_rows():
    from vtg_dashcam_mcq.rewards import mcq_accuracy, mcq_format

    completions = ["B", "Đáp án: B", "C", "nothing", [{"role": "assistant", "content": "B. Go straight"}], "B"]
    columns = {"mcq_answer": ["B"] * 5 + [None], "mcq_letters": [["A", "B", "C"]] * 5 + [None],
               "mcq_choices": [CHOICES] * 5 + [None]}
    assert mcq_accuracy()([None] * 6, completions, **columns) == [1.0, 1.0, 0.0, 0.0, 1.0, None]
    assert mcq_format()([None] * 6, completions, **columns) == [1.0, 0.0, 1.0, 0.0, 1.0, None]


def test_metrics_per_class_confusion_distribution_and_parse_failures():
    from vtg_dashcam_mcq.task import DashcamMCQTask

    task = DashcamMCQTask()
    truths = ["A", "A", "B", "B", "C", "C"]
    answers = ["A", "B", "B", "garbage", "C", "A"]
    samples = [_sample(answer=t) for t in truths]
    parsed = [task.parse(a, s) for a, s in zip(answers, samples, strict=True)]
    scores = [task.score(p, s) for p, s in zip(parsed, samples, strict=True)]
    m = task.aggregate(scores, parsed)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert (m["accuracy_A"], m["accuracy_B"], m["accuracy_C"]) == (0.5, 0.5, 0.5)
    assert "accuracy_D" not in m and m["parse_failure_rate"] == pytest.approx(1 / 6) and m["num_samples"] == 6
    tables = task.report_tables(scores, parsed, samples)
    cm = tables["confusion_matrix"]
    assert cm["rows"] == ["A", "B", "C"] and cm["columns"] == ["A", "B", "C", "unparsed"]
    assert cm["values"] == [[1, 1, 0, 0], [0, 1, 0, 1], [1, 0, 1, 0]]
    dist = tables["answer_distribution"]
    assert dist["rows"] == ["A", "B", "C", "unparsed"]
    assert [row[:2] for row in dist["values"]] == [[2, 2], [2, 2], [2, 1], [0, 1]]

    from vtg_core.evaluate.tables import format_table

    text = format_table("confusion_matrix", cm)
    assert text.splitlines()[1].split() == ["A", "B", "C", "unparsed"]
    assert text.splitlines()[3].split() == ["B", "0", "1", "0", "1"]


def test_options_are_checked():
    from vtg_dashcam_mcq.task import DashcamMCQTask

    from vtg_core.errors import ConfigError

    for bad in ({"language": "fr"}, {"min_frames": 7}, {"support_window": -1}, {"fallback_letter": "E"},
                {"frames": 3}):
        with pytest.raises(ConfigError):
            DashcamMCQTask(**bad)


def test_the_baseline_answers_the_most_common_training_letter():
    from vtg_dashcam_mcq.task import DashcamMCQTask

    train = [_sample(answer=a) for a in "CCAB"]
    two = _sample(choices=("x", "y"), answer="B")  # C is not a choice here: the next most common, A
    evals = [_sample(answer="C"), _sample(answer="A"), two]
    m = DashcamMCQTask().baseline(train, evals)
    assert m["accuracy"] == pytest.approx(1 / 3) and m["parse_failure_rate"] == 0.0
