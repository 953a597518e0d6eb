"""``validate_file``: the report ``vtg validate`` prints, with and without video checks."""

from __future__ import annotations

import json

import pytest

from vtg_core.data.validate import validate_file
from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask

GOOD = {"video": "clip.mp4", "duration": 2.0, "timestamp": [0.5, 1.5], "sentence": "a square moves"}


def write_jsonl(tmp_path, rows, name="ann.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows) + b"\n")
    return str(path)


def test_report_counts_reasons_and_lists_problems_by_line(tmp_path):
    rows = [GOOD, {**GOOD, "timestamp": [1.5, 0.5]}, b'{"video": "x.mp4", "dur', {**GOOD, "duration": True},
            b'{"sentence": "\xff"}', {**GOOD, "qid": "dup"}, {**GOOD, "qid": "dup"}, [1, 2]]
    path = write_jsonl(tmp_path, rows)
    report = validate_file(path, task=TemporalGroundingTask())
    assert (report.rows, report.num_valid, report.num_invalid) == (8, 3, 5)
    assert report.by_reason == {"reversed": 1, "bad_json": 1, "wrong_type": 1, "bad_utf8": 1, "not_object": 1}
    assert [p.where.line for p in report.problems] == [2, 3, 4, 5, 8]
    assert not report.ok and report.videos_checked is None
    assert len(report.warnings) == 1 and "'dup' repeats" in report.warnings[0] and f"{path}:6" in report.warnings[0]

    text = report.format()
    lines = text.splitlines()
    assert lines[0] == f"{path} (temporal_grounding): 8 rows, 3 valid, 5 invalid (62.5%)"
    assert "invalid by reason:" in text and "  reversed" in text
    assert f"{path}:2: field 'timestamp': start 1.5 is after end 0.5  [reversed]" in text
    assert f"{path}:4: field 'duration': expected a number, got boolean true  [wrong_type]" in text

    data = report.to_dict()
    assert data["invalid"] == 5 and data["problems"][0]["line"] == 2 and data["problems"][0]["field"] == "timestamp"
    json.dumps(data)


def test_clean_file_and_json_array(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps([GOOD, {**GOOD, "sentence": ""}]))
    report = validate_file(str(path), task=TemporalGroundingTask())
    assert (report.rows, report.num_valid, report.num_invalid) == (2, 1, 1)
    assert report.problems[0].where.index == 1 and f"{path}[1]: field 'sentence'" in report.format()
    clean = validate_file(write_jsonl(tmp_path, [GOOD]), task=TemporalGroundingTask())
    assert clean.ok and "no problems found" in clean.format()


def test_never_raises_where_loading_would(tmp_path):
    # every row invalid: a training load would stop, validation reports
    path = write_jsonl(tmp_path, [{"x": 1}] * 3)
    report = validate_file(path, task=TemporalGroundingTask())
    assert report.num_invalid == 3 and report.by_reason == {"missing_field": 12}


def test_task_by_name_through_the_registry(tmp_path, monkeypatch):
    from vtg_core import plugins

    plugins.set_registry(plugins.build_registry(builtins=("vtg_core.tasks.plugin",), entry_points=False))
    report = validate_file(write_jsonl(tmp_path, [GOOD]), task="temporal_grounding")
    assert report.ok and report.task == "temporal_grounding"


def test_a_protocol_only_task_is_counted_from_its_load(tmp_path):
    from vtg_core.data.sample import Location, Sample
    from vtg_core.tasks.base import RowProblem

    class MinimalTask:
        name = "minimal"

        def load(self, path, *, video_dir=None):
            where = Location(path, line=2)
            return [Sample(id="a", video=None, duration=None, query="q")], [RowProblem(where, "a", "bad", "x"), RowProblem(where, "b", "bad", "y")]

    report = validate_file(write_jsonl(tmp_path, [GOOD]), task=MinimalTask())
    assert (report.rows, report.num_valid, report.num_invalid) == (2, 1, 1)
    assert report.by_reason == {"x": 1, "y": 1}


# -- --check-videos -------------------------------------------------------------------------------

def make_clip(path, seconds: float, fps: int = 10):
    av = pytest.importorskip("av")
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 5 % 255, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


@pytest.fixture
def video_dir(tmp_path):
    pytest.importorskip("vtg_core.data.video")
    d = tmp_path / "videos"
    d.mkdir()
    make_clip(d / "clip.mp4", 2.0)
    (d / "broken.mp4").write_bytes(b"not a video at all" * 50)
    return d


def test_check_videos_opens_each_video_once_and_checks_coverage(tmp_path, video_dir):
    rows = [
        GOOD,                                                                   # covered
        {**GOOD, "qid": "again"},                                               # same file: probed once
        {**GOOD, "duration": 8.0, "timestamp": [1, 7]},                         # file is 2 s, needs 8 s
        {**GOOD, "video_start": 1.0, "video_end": 6.0, "duration": 5.0},        # trim window past the end
        {**GOOD, "video": "missing.mp4"},
        {**GOOD, "video": "broken.mp4"},
        {**GOOD, "timestamp": [3, 1]},                                          # row problem, not probed
    ]
    path = write_jsonl(tmp_path, rows)
    report = validate_file(path, task=TemporalGroundingTask(), video_dir=str(video_dir), check_videos=True)
    assert report.videos_checked == 3
    assert (report.rows, report.num_valid, report.num_invalid) == (7, 2, 5)
    got = [(p.where.line, p.code) for p in report.problems]
    assert got[:2] == [(3, "video_too_short"), (4, "video_too_short")]
    assert got[2] == (5, "video_missing")
    assert got[3][0] == 6 and got[3][1].startswith("video_") and got[4] == (7, "reversed")
    assert "trim window ends at 6 s" in report.problems[1].reason
    assert "videos checked: 3" in report.format()


def test_check_videos_on_a_clean_file(tmp_path, video_dir):
    report = validate_file(write_jsonl(tmp_path, [GOOD]), task=TemporalGroundingTask(),
                           video_dir=str(video_dir), check_videos=True)
    assert report.ok and report.videos_checked == 1


def test_check_videos_decodes_frames_so_a_damaged_file_is_caught(tmp_path, shared_videos):
    # corrupted.mp4's header opens (5 s, 50 frames claimed) but its frame data is broken: only a
    # decode finds that, and the report must say which line and which file.
    rows = [
        {"video": "nasa_13013.mp4", "duration": 13.0, "timestamp": [1.0, 12.0], "sentence": "fine"},
        {"video": "corrupted.mp4", "duration": 5.0, "timestamp": [1.0, 2.0], "sentence": "damaged"},
    ]
    path = tmp_path / "real.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = validate_file(path, task=TemporalGroundingTask(), video_dir=str(shared_videos), check_videos=True)
    assert report.num_valid == 1 and report.num_invalid == 1
    assert report.by_reason == {"video_corrupt": 1}
    (problem,) = report.problems
    assert problem.where.line == 2 and "corrupted.mp4" in problem.reason
