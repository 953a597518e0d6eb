"""Reading Road Buddy files: good rows become samples; each kind of bad row is named with file and index."""

from __future__ import annotations

import json

import pytest

from vtg_core.errors import DataError


def _write(tmp_path, rows, *, count=True, name="train.json"):
    (tmp_path / "videos").mkdir(exist_ok=True)
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("video_path"), str) and row["video_path"].startswith("videos/clip"):
            (tmp_path / row["video_path"]).write_bytes(b"not decoded at load time")
    doc = {"__count__": len(rows), "data": rows} if count else rows
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _row(i, **over):
    row = {"id": f"train_{i:04d}", "question": "Xe phía trước đang làm gì?",
           "choices": ["A. Rẽ trái", "B. Đi thẳng", "C. Dừng lại"], "answer": "B. Đi thẳng",
           "support_frames": [1.5, 0.5], "video_path": f"videos/clip{i}.mp4"}
    row.update(over)
    return row


def _task():
    from vtg_dashcam_mcq.task import DashcamMCQTask

    return DashcamMCQTask()


def test_a_good_file_loads_with_letters_choices_support_times_and_utf8(tmp_path):
    path = _write(tmp_path, [_row(0), _row(1, answer="C", support_frames=[]), _row(2, answer="Đi thẳng")])
    samples, problems = _task().load(path)
    assert problems == []
    s = samples[0]
    assert (s.id, s.answer, s.query) == ("train_0000", "B", "Xe phía trước đang làm gì?")
    assert s.inputs == {"letters": ["A", "B", "C"], "choices": ["Rẽ trái", "Đi thẳng", "Dừng lại"],
                        "support_frames": [0.5, 1.5]}
    assert s.video == str(tmp_path / "videos" / "clip0.mp4") and str(s.source) == f"{path}[0]"
    assert [x.answer for x in samples] == ["B", "C", "B"]  # a bare letter, and the choice's text alone


def test_video_paths_resolve_against_the_data_root_above_the_file(tmp_path):
    """Road Buddy keeps train/train.json and writes video_path as train/videos/x.mp4."""
    (tmp_path / "train" / "videos").mkdir(parents=True)
    (tmp_path / "train" / "videos" / "a.mp4").write_bytes(b"x")
    path = tmp_path / "train" / "train.json"
    path.write_text(json.dumps({"__count__": 1, "data": [_row(0, video_path="train/videos/a.mp4")]}))
    [sample], _ = _task().load(path)
    assert sample.video == str(tmp_path / "train" / "videos" / "a.mp4")
    # An explicit --video-dir wins, and a wrong one is reported with where it looked.
    _, problems = _task().load(path, video_dir=str(tmp_path / "elsewhere"), policy="report")
    assert problems[0].code == "missing_video" and "elsewhere/train/videos/a.mp4" in problems[0].reason


@pytest.mark.parametrize(("change", "field", "code", "words"), [
    ({"answer": "D. Lùi lại"}, "answer", "answer_not_in_choices", "'D. Lùi lại' is not among the choices"),
    ({"answer": "B. Rẽ phải"}, "answer", "answer_not_in_choices", "not among the choices (A. Rẽ trái"),
    ({"choices": ["A. Rẽ trái", "Đi thẳng"]}, "choices", "choice_without_letter",
     "choice 1 'Đi thẳng' has no letter; expected it to start with 'B. '"),
    ({"choices": ["A. x", "C. y"]}, "choices", "choice_without_letter", "has letter C"),
    ({"choices": ["A. x"]}, "choices", "bad_choices", "expected 2 to 4 choices, got 1"),
    ({"video_path": "videos/nope.mp4"}, "video_path", "missing_video", "video file not found"),
    ({"support_frames": [1, "x"]}, "support_frames", "wrong_type", "element 1"),
    ({"question": "  "}, "question", "empty", "empty"),
])
def test_each_bad_row_is_named_with_file_index_field_and_reason(tmp_path, change, field, code, words):
    path = _write(tmp_path, [_row(0), _row(1, **change)])
    samples, problems = _task().load(path, policy="report")
    assert [s.id for s in samples] == ["train_0000"]
    [problem] = problems
    assert (problem.field, problem.code, problem.where.index) == (field, code, 1)
    assert words in problem.reason
    assert str(problem).startswith(f"{path}[1]: field {field!r}:")
    with pytest.raises(DataError, match=r"train\.json\[1\]"):  # invalid_policy=fail stops there
        _task().load(path, policy="fail")


def test_test_files_load_without_answers_but_training_needs_them(tmp_path):
    row = _row(0)
    del row["answer"]
    path = _write(tmp_path, [row], count=False)  # a bare array works too
    [sample], _ = _task().load(path)
    assert sample.answer is None
    _task().build_messages(sample)  # prompting needs no answer
    with pytest.raises(DataError, match="has no answer"):
        _task().target(sample)


def test_duplicate_ids_and_whole_file_problems(tmp_path):
    path = _write(tmp_path, [_row(0), _row(0)])
    _, problems = _task().load(path, policy="report")
    assert problems[0].code == "duplicate_id" and f"first at {path}[0]" in problems[0].reason
    bad = tmp_path / "bad.json"
    bad.write_text('{"__count__": 1, "data": [\n{"id": ')
    with pytest.raises(DataError, match=r"bad\.json:2:.*not valid JSON"):
        _task().load(bad)
    other = tmp_path / "other.json"
    other.write_text('{"rows": []}')
    with pytest.raises(DataError, match="without a 'data' list"):
        _task().load(other)


def test_vtg_validate_lists_the_problems(tmp_path):
    from click.testing import CliRunner

    from vtg_core.cli.main import cli

    path = _write(tmp_path, [_row(0), _row(1, answer="D. x")])
    result = CliRunner().invoke(cli, ["validate", str(path), "--task", "dashcam_mcq"])
    assert "answer_not_in_choices" in result.output and "[1]" in result.output, result.output
