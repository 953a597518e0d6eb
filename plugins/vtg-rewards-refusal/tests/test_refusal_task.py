"""The refusal_grounding task: RIQ loading and validation, prompts, targets, reward columns, options."""

from __future__ import annotations

import json

import pytest
from vtg_rewards_refusal.task import RefusalGroundingTask

from vtg_core.errors import ConfigError, DataError

GOOD = [
    {"video": "a.mp4", "duration": 100.0, "problem": "a person is cooking pasta", "task_type": "answerable",
     "gt_answers": [{"answer": [20.0, 40.0]}], "qid": "q1", "difficulty": "easy"},
    {"video_path": "b.mp4", "duration": 50, "problem": "a person is playing basketball", "task_type": "refusable",
     "gt_answers": [[-1, -1]], "refusable_queries": ["a person is cooking in the kitchen", "a person stirs a pot"],
     "source": "charades"},
    {"video": "c.mp4", "duration": 10, "problem": "a dog runs", "task_type": "answerable",
     "gt_answers": [[1, 3], {"answer": [6, 10.3]}]},  # end 10.3 is within the 0.5 s tolerance: clamped
]


def write_json(path, rows):
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def task():
    return RefusalGroundingTask(correction_metric=False)


def test_json_array_and_jsonl_load_the_same_samples(task, tmp_path):
    a, _ = task.load(write_json(tmp_path / "riq.json", GOOD), video_dir="/data/videos")
    b, _ = task.load(write_jsonl(tmp_path / "riq.jsonl", GOOD), video_dir="/data/videos")
    assert [s.answer for s in a] == [s.answer for s in b] and len(a) == 3
    first, second, third = a
    assert first.id == "q1" and first.video == "/data/videos/a.mp4" and first.query == "a person is cooking pasta"
    assert first.answer.segments == ((20.0, 40.0),) and not first.answer.refusable
    assert first.metadata == {"task_type": "answerable", "difficulty": "easy"}
    assert second.id == "riq[1]" and b[1].id == "riq:2"  # array index / line number when there is no qid
    assert second.video == "/data/videos/b.mp4" and second.answer.refusable and second.answer.segments == ()
    assert second.answer.references == ("a person is cooking in the kitchen", "a person stirs a pot")
    assert second.metadata == {"source": "charades", "task_type": "refusable"}
    assert third.answer.segments == ((1.0, 3.0), (6.0, 10.0))
    json.dumps(second.answer)  # prediction files write the ground truth as JSON


BAD = [
    ({"duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": [[1, 2]]},
     "video", "missing_field"),
    ({"video": "a.mp4", "video_path": "b.mp4", "duration": 5, "problem": "p", "task_type": "answerable",
      "gt_answers": [[1, 2]]}, "video_path", "inconsistent"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "maybe", "gt_answers": [[1, 2]]},
     "task_type", "bad_value"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "refusable", "gt_answers": [[1, 2]],
      "refusable_queries": ["q"]}, "gt_answers[0]", "inconsistent"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": [[-1, -1]]},
     "gt_answers[0]", "inconsistent"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": [{"answer": [3, 1]}]},
     "gt_answers[0]", "reversed"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": [[1, 9]]},
     "gt_answers[0]", "out_of_range"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": [[-2, 3]]},
     "gt_answers[0]", "negative"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": []},
     "gt_answers", "empty"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": [{"start": 1}]},
     "gt_answers[0].answer", "missing_field"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": ["1 to 2"]},
     "gt_answers[0]", "wrong_type"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": [[1, "2"]]},
     "gt_answers[0][1]", "wrong_type"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "refusable", "gt_answers": [[-1, -1]]},
     "refusable_queries", "missing_field"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "refusable", "gt_answers": [[-1, -1]],
      "refusable_queries": []}, "refusable_queries", "empty"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "refusable", "gt_answers": [[-1, -1]],
      "refusable_queries": ["ok", 3]}, "refusable_queries[1]", "wrong_type"),
    ({"video": "a.mp4", "duration": 5, "problem": "The P", "task_type": "refusable", "gt_answers": [[-1, -1]],
      "refusable_queries": ["the p"]}, "refusable_queries[0]", "inconsistent"),
    ({"video": "a.mp4", "duration": True, "problem": "p", "task_type": "answerable", "gt_answers": [[1, 2]]},
     "duration", "wrong_type"),
    ({"video": "a.mp4", "duration": 5, "problem": "  ", "task_type": "answerable", "gt_answers": [[1, 2]]},
     "problem", "empty"),
    ({"video": "a.mp4", "duration": 5, "problem": "p", "task_type": "answerable", "gt_answers": {"answer": [1, 2]}},
     "gt_answers", "wrong_type"),
]


def test_every_invalid_row_is_reported_with_line_field_and_reason(task, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD[0], *[row for row, _, _ in BAD]])
    samples, report = task.load_with_report(path, policy="report")
    assert len(samples) == 1 and report.invalid == len(BAD)
    found = {(p.where.line, p.field, p.code) for p in report.problems}
    for line, (_, field, code) in enumerate(BAD, start=2):
        assert (line, field, code) in found, (line, field, code, sorted(found))
    text = "\n".join(str(p) for p in report.problems)
    assert f"{path}:4: field 'task_type': must be 'answerable' or 'refusable', got 'maybe'" in text
    assert "a refusable query has no segment: expected [-1, -1]" in text


def test_one_row_with_several_problems_lists_them_all(task, tmp_path):
    row = {"video": 3, "duration": -1, "problem": "p", "task_type": "refusable", "gt_answers": [[-1, -1]]}
    _, report = task.load_with_report(write_json(tmp_path / "x.json", [row]), policy="report")
    assert {(p.where.index, p.field) for p in report.problems} == {
        (0, "video"), (0, "duration"), (0, "refusable_queries")}


def test_policies(task, tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [GOOD[0], BAD[2][0]])
    with pytest.raises(DataError, match=r"mixed.jsonl:2: field 'task_type'"):
        task.load(path, policy="fail")
    with pytest.raises(DataError, match="max_invalid_fraction"):
        task.load(path, policy="skip")
    samples, problems = task.load(path, policy="skip", max_invalid_fraction=0.5)
    assert len(samples) == 1 and len(problems) == 1


def test_targets_parse_back_and_prompts_ask_for_the_format(task, tmp_path):
    samples, _ = task.load(write_json(tmp_path / "riq.json", GOOD))
    for sample in samples:
        text = task.target(sample)
        parsed = task.parse(text, sample)
        assert parsed.ok and parsed.value["well_formed"]
        scores = task.score(parsed, sample)
        assert scores["iou"] == 1.0 and scores["decision_correct"] == 1.0
        prompt = task.build_messages(sample)[-1]["content"][1]["text"]
        assert "<correction>NIL</correction>" in prompt and sample.query in prompt
        assert "<think>...</think> <answer>...</answer> <correction>...</correction>" in prompt
        assert task.build_messages(sample) == task.build_messages(sample)  # seeded per sample
    assert task.target(samples[1]).endswith("<correction>a person is cooking in the kitchen</correction>")
    relative = RefusalGroundingTask(use_relative_timestamps=True, correction_metric=False, prompt_template=2)
    assert "<answer>0.20 to 0.40</answer>" in relative.target(samples[0])
    assert relative.parse(relative.target(samples[0]), samples[0]).value["segment"] == pytest.approx([20.0, 40.0])


def test_reward_columns_build_an_arrow_dataset(task, tmp_path):
    datasets = pytest.importorskip("datasets")
    from vtg_core.train.grpo import build_rows

    samples, _ = task.load(write_json(tmp_path / "riq.json", GOOD))
    assert task.reward_columns(samples[1]) == {
        "task_type": "refusable", "gt_answers": [[-1.0, -1.0]],
        "refusable_queries": ["a person is cooking in the kitchen", "a person stirs a pot"], "duration": 50.0,
        "time_format": "seconds", "timestamp": None}
    table = datasets.Dataset.from_list(build_rows(task, samples))
    assert table["task_type"] == ["answerable", "refusable", "answerable"]
    assert table["gt_answers"][2] == [[1.0, 3.0], [6.0, 10.0]] and table["refusable_queries"][0] == []


def test_options_are_checked():
    with pytest.raises(ConfigError, match="unknown option"):
        RefusalGroundingTask(thinking=True)
    with pytest.raises(ConfigError, match="reads as a time segment"):
        RefusalGroundingTask(refusal_text="Nothing between 1 and 2")
    with pytest.raises(ConfigError, match="prompt_template"):
        RefusalGroundingTask(prompt_template=7)
    with pytest.raises(ConfigError, match="curriculum.stages"):
        RefusalGroundingTask(curriculum={"stages": [0.5, 0.2, 1.0]})
    with pytest.raises(ConfigError, match="not a model directory"):
        RefusalGroundingTask(sbert_model="/no/such/dir")


def test_prompts_and_parsing_need_no_ground_truth(task):
    # `vtg predict` builds samples from a video and a query alone.
    from vtg_core.data.sample import Sample

    sample = Sample(id="new", video="v.mp4", duration=8.0, query="the red square")
    assert "the red square" in task.build_messages(sample)[-1]["content"][1]["text"]
    assert task.parse("<think>a</think> <answer>2.0 to 4.0</answer> <correction>NIL</correction>",
                      sample).value["segment"] == [2.0, 4.0]
    with pytest.raises(DataError, match="not read by the refusal_grounding task"):
        task.target(sample)
