"""Temporal-grounding metrics, checked against hand-computed values."""

from __future__ import annotations

import pytest

from vtg_core.data.sample import Sample
from vtg_core.tasks.base import ParseResult
from vtg_core.tasks.temporal_grounding.metrics import (
    METRIC_NAMES,
    clip_segment,
    grounding_metrics,
    metrics_by,
    prediction_iou,
    segment_iou,
)
from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask


@pytest.mark.parametrize("pred, gt, iou", [
    ((0, 10), (5, 15), 5 / 15),
    ((2, 4), (2, 4), 1.0),
    ((0, 1), (2, 3), 0.0),
    ((0, 2), (2, 3), 0.0),           # touching
    ((1, 9), (0, 10), 0.8),          # inside
    ((3, 3), (3, 3), 1.0),           # equal instants
    ((3, 3), (0, 10), 0.0),          # instant inside a segment: no length, no overlap
    ((5, 4), (0, 10), 0.0),          # reversed prediction
    ((0, float("nan")), (0, 1), 0.0),
])
def test_segment_iou(pred, gt, iou):
    assert segment_iou(pred, gt) == pytest.approx(iou)


def test_clip_and_prediction_iou():
    ok = lambda a, b: ParseResult(True, (a, b))  # noqa: E731
    assert clip_segment((-5, 30), 20.0) == (0.0, 20.0)
    assert clip_segment((-5, 30), None) == (-5.0, 30.0)
    assert prediction_iou(ok(-5, 10), (0, 10), 20.0) == 1.0            # clipped to the clip
    assert prediction_iou(ok(15, 30), (10, 20), 20.0) == 0.5           # (15, 20) vs (10, 20)
    assert prediction_iou(ok(25, 30), (10, 20), 20.0) == 0.0           # entirely after the clip
    assert prediction_iou(ok(12, 8), (8, 12), 20.0) == 0.0             # reversed
    assert prediction_iou(ParseResult(False, None, "x"), (0, 1), 2.0) == 0.0


def test_grounding_metrics_hand_computed():
    ious = [1.0, 0.5, 0.3, 0.0, 0.7]          # the 0.0 is a parse failure
    ok = [True, True, True, False, True]
    m = grounding_metrics(ious, ok)
    assert m["R1@0.3"] == pytest.approx(80.0)   # 1.0, 0.5, 0.3, 0.7 (>= threshold)
    assert m["R1@0.5"] == pytest.approx(60.0)
    assert m["R1@0.7"] == pytest.approx(40.0)
    assert m["mIoU"] == pytest.approx(50.0)
    assert m["parse_failure_rate"] == pytest.approx(0.2)
    assert m["num_samples"] == 5
    assert set(METRIC_NAMES) <= set(m)


def test_grounding_metrics_empty_and_mismatch():
    assert grounding_metrics([], [])["mIoU"] == 0.0
    with pytest.raises(ValueError):
        grounding_metrics([0.5], [True, False])


def test_metrics_by_group():
    ious = [1.0, 0.0, 0.4, 0.6]
    ok = [True, False, True, True]
    meta = [{"difficulty": "easy"}, {"difficulty": "easy"}, {"difficulty": "hard"}, {}]
    groups = metrics_by(ious, ok, meta, "difficulty")
    assert list(groups) == ["(missing)", "easy", "hard"]
    assert groups["easy"]["mIoU"] == pytest.approx(50.0)
    assert groups["easy"]["R1@0.5"] == pytest.approx(50.0)
    assert groups["easy"]["parse_failure_rate"] == pytest.approx(0.5)
    assert groups["hard"]["R1@0.3"] == 100.0 and groups["hard"]["R1@0.5"] == 0.0
    assert groups["(missing)"]["num_samples"] == 1


def test_task_score_aggregate_and_breakdown_agree():
    task = TemporalGroundingTask()
    samples = [
        Sample(id="a", video="a.mp4", duration=20.0, query="q", answer=(0.0, 10.0), metadata={"difficulty": 1.0}),
        Sample(id="b", video="b.mp4", duration=20.0, query="q", answer=(10.0, 20.0), metadata={"difficulty": 2}),
        Sample(id="c", video="c.mp4", duration=20.0, query="q", answer=(5.0, 10.0), metadata={"difficulty": 2}),
    ]
    texts = ["<answer>0.0 to 5.0</answer>", "<answer>10 to 25</answer>", "I cannot tell"]
    parsed = [task.parse(t, s) for t, s in zip(texts, samples, strict=True)]
    scores = [task.score(p, s) for p, s in zip(parsed, samples, strict=True)]
    assert [s["iou"] for s in scores] == [0.5, 1.0, 0.0]
    m = task.aggregate(scores, parsed)
    assert m["mIoU"] == pytest.approx(50.0) and m["R1@0.5"] == pytest.approx(200 / 3)
    assert m["parse_failure_rate"] == pytest.approx(1 / 3)
    by = task.metrics_by(scores, parsed, samples, "difficulty")
    assert set(by) == {"1", "2"} and by["2"]["mIoU"] == pytest.approx(50.0)
