"""Refusal-aware metrics by hand, through the core's scorer and through `vtg eval`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from vtg_rewards_refusal.schema import Truth
from vtg_rewards_refusal.task import RefusalGroundingTask
from vtg_rewards_refusal.testing import table_embedder, unit

from vtg_core.data.sample import Sample
from vtg_core.evaluate.runner import score_answers

ANSWER = "<think>t</think> <answer>{}</answer> <correction>{}</correction>"
REFS = ("a person is cooking in the kitchen", "a person stirs a pot")


def sample(i, truth, difficulty=None):
    metadata = {"task_type": truth.task_type}
    if difficulty:
        metadata["difficulty"] = difficulty
    return Sample(id=f"s{i}", video=None, duration=100.0, query="q", answer=truth, metadata=metadata)


def six():
    ans = Truth("answerable", [(20.0, 40.0)])
    ref = Truth("refusable", [], REFS)
    samples = [sample(1, ans, "easy"), sample(2, ans, "hard"), sample(3, ans),
               sample(4, ref, "easy"), sample(5, ref, "hard"), sample(6, ref)]
    answers = [
        ANSWER.format("20.0 to 40.0", "NIL"),                        # exact: IoU 1, correct
        ANSWER.format("30.0 to 50.0", "NIL"),                        # IoU 10/30, correct
        ANSWER.format("No such event.", "NIL"),                      # refused an answerable query: false positive
        ANSWER.format("No such event.", "a person is cooking pasta"),  # refused, corrected (0.85): true positive
        ANSWER.format("1.0 to 2.0", "NIL"),                          # timestamp on a refusable query: false negative
        "",                                                          # parse failure on a refusable query: false negative
    ]
    return samples, answers


def task_with_table():
    task = RefusalGroundingTask()
    emb = table_embedder({"a person is cooking pasta": [1.0, 0.0], REFS[0]: unit(0.85), REFS[1]: unit(0.2)})
    task._embedder_fn = lambda: emb  # the metric's model, replaced by exact vectors
    return task


def test_metrics_by_hand():
    samples, answers = six()
    task = task_with_table()
    result = score_answers(task, samples, answers)
    m = result.metrics
    # TP = 1 (#4), FP = 1 (#3), FN = 2 (#5, #6); correct decisions: #1, #2, #4.
    assert m["refusal_accuracy"] == pytest.approx(100 * 3 / 6)
    assert m["refusal_precision"] == pytest.approx(50.0)
    assert m["refusal_recall"] == pytest.approx(100 / 3)
    assert m["refusal_f1"] == pytest.approx(2 * 50 * (100 / 3) / (50 + 100 / 3))  # 40
    # Refusal-aware IoUs: [1, 1/3, 0, 1 (correct refusal), 0, 0].
    assert m["R1@0.3"] == pytest.approx(50.0)
    assert m["R1@0.5"] == m["R1@0.7"] == pytest.approx(100 / 3)
    assert m["mIoU"] == pytest.approx(100 * (2 + 1 / 3) / 6)
    # Corrections over the 3 refusable samples: 0.85, NIL (0), failure (0).
    assert m["correction_similarity"] == pytest.approx(0.85 / 3, abs=1e-6)
    assert m["correction_rate"] == pytest.approx(1 / 3)
    assert m["format_rate"] == pytest.approx(5 / 6) and m["parse_failure_rate"] == pytest.approx(1 / 6)
    assert m["num_samples"] == 6 and m["num_refusable"] == 3
    assert result.predictions[3].scores["correction_similarity"] == pytest.approx(0.85, abs=1e-6)
    json.dumps([p.to_dict() for p in result.predictions])

    by = task.metrics_by([p.scores for p in result.predictions], [p.parsed for p in result.predictions],
                         samples, "difficulty")
    assert list(by) == ["(missing)", "easy", "hard"]
    assert by["easy"]["refusal_accuracy"] == 100.0 and by["easy"]["mIoU"] == 100.0
    assert by["hard"]["refusal_recall"] == 0.0 and by["hard"]["R1@0.3"] == pytest.approx(50.0)
    assert by["(missing)"]["refusal_accuracy"] == 0.0
    by_type = task.metrics_by([p.scores for p in result.predictions], [p.parsed for p in result.predictions],
                              samples, "task_type")
    assert by_type["refusable"]["refusal_recall"] == pytest.approx(100 / 3)


def test_edge_cases_and_the_metric_switch():
    task = RefusalGroundingTask(correction_metric=False)
    assert task.aggregate([], []) == {**{k: 0.0 for k in task.aggregate([], [])}, "num_samples": 0,
                                      "num_refusable": 0}
    samples, answers = six()
    m = score_answers(task, samples, answers).metrics
    assert "correction_similarity" not in m and m["correction_rate"] == pytest.approx(1 / 3)


def test_vtg_eval_scores_stored_predictions(tmp_path, real_embedder):
    """`vtg eval --task refusal_grounding --from-pred`: raw answers stored in the rows' `pred` field."""
    from vtg_core.cli.main import cli

    rows = [
        {"video": "a.mp4", "duration": 100, "problem": "a person is cooking pasta", "task_type": "answerable",
         "gt_answers": [{"answer": [20, 40]}], "difficulty": "easy", "pred": ANSWER.format("22.0 to 38.0", "NIL")},
        {"video": "b.mp4", "duration": 100, "problem": "a person is playing basketball", "task_type": "refusable",
         "gt_answers": [[-1, -1]], "refusable_queries": list(REFS), "difficulty": "hard",
         "pred": ANSWER.format("The query does not match the video.", "a person is cooking in the kitchen")},
        {"video": "c.mp4", "duration": 100, "problem": "a cat sleeps", "task_type": "refusable",
         "gt_answers": [[-1, -1]], "refusable_queries": list(REFS), "difficulty": "hard", "pred": [-1, -1]},
    ]
    data = tmp_path / "preds.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli, ["eval", "--task", "refusal_grounding", "--data", str(data), "--from-pred",
                                      "--by", "difficulty", "--output-dir", str(out), "--no-progress"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "metrics.json").read_text())
    m = summary["metrics"]
    assert m["refusal_accuracy"] == 100.0 and m["refusal_f1"] == 100.0 and m["num_refusable"] == 2
    assert m["mIoU"] == pytest.approx(100 * (0.8 + 1 + 1) / 3)
    # The correction is a reference itself (similarity 1); the stored [-1, -1] has none (0).
    assert m["correction_similarity"] == pytest.approx(0.5, abs=1e-4) and m["correction_rate"] == 0.5
    assert set(summary["by"]["difficulty"]["groups"]) == {"easy", "hard"}
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert preds[1]["ground_truth"]["task_type"] == "refusable" and preds[1]["refused"] == 1.0
    assert "refusal_accuracy" in result.output
