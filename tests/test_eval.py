"""`vtg eval`: hand-checked metrics from stored predictions, a tiny trained checkpoint end to end,
the manifest, reproducibility, and split (multi-process) evaluation equal to a single process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vtg_core.cli.main import cli
from vtg_core.evaluate.breakdown import group_values, quantile_edges
from vtg_core.evaluate.manifest import REQUIRED_KEYS

# duration 10; (ground truth, prediction, IoU worked out by hand, difficulty)
HAND_ROWS = [
    ((2.0, 4.0), (2.0, 4.0), 1.0, "easy"),          # exact
    ((2.0, 4.0), (3.0, 5.0), 1 / 3, "easy"),        # overlap 1 of union 3
    ((0.0, 10.0), (0.0, 5.0), 0.5, "hard"),         # half the clip
    ((1.0, 2.0), (5.0, 6.0), 0.0, "hard"),          # disjoint
    ((4.0, 8.0), (-2.0, 6.0), 0.25, "hard"),        # clipped to [0, 6]: overlap 2 of union 8
]


def _write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _hand_file(tmp_path: Path) -> str:
    rows = [{"video": f"clip{i}.mp4", "duration": 10.0, "timestamp": list(gt), "sentence": f"event {i}",
             "qid": f"q{i}", "difficulty": diff, "pred": list(pred)}
            for i, (gt, pred, _, diff) in enumerate(HAND_ROWS)]
    return _write_rows(tmp_path / "preds.jsonl", rows)


def _metrics(ious: list[float]) -> dict[str, float]:
    n = len(ious)
    return {"R1@0.3": 100 * sum(v >= 0.3 for v in ious) / n, "R1@0.5": 100 * sum(v >= 0.5 for v in ious) / n,
            "R1@0.7": 100 * sum(v >= 0.7 for v in ious) / n, "mIoU": 100 * sum(ious) / n}


def test_stored_predictions_score_as_computed_by_hand(tmp_path):
    data = _hand_file(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["eval", "--data", data, "--from-pred", "--by", "difficulty",
                                      "--output-dir", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "metrics.json").read_text())
    m = summary["metrics"]
    # R1@0.3: IoUs 1, 1/3, 0.5 -> 3 of 5; R1@0.5: 1, 0.5 -> 2 of 5; R1@0.7: 1 of 5; mIoU 2.0833/5.
    assert m["R1@0.3"] == pytest.approx(60.0) and m["R1@0.5"] == pytest.approx(40.0)
    assert m["R1@0.7"] == pytest.approx(20.0) and m["mIoU"] == pytest.approx(100 * (1 + 1 / 3 + 0.5 + 0.25) / 5)
    assert m["parse_failure_rate"] == 0.0 and m["num_samples"] == 5
    groups = summary["by"]["difficulty"]["groups"]
    assert summary["by"]["difficulty"]["binning"] == "value" and set(groups) == {"easy", "hard"}
    for name, idx in (("easy", [0, 1]), ("hard", [2, 3, 4])):
        expected = _metrics([HAND_ROWS[i][2] for i in idx])
        assert {k: groups[name][k] for k in expected} == pytest.approx(expected)
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["sample_id"] for p in preds] == [f"q{i}" for i in range(5)]
    assert [p["iou"] for p in preds] == pytest.approx([r[2] for r in HAND_ROWS])
    assert preds[4]["parsed"] == [-2.0, 6.0] and preds[4]["ground_truth"] == [4.0, 8.0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "stored_predictions" and manifest["code"]["parser"]["version"] == 1
    assert "difficulty" in result.output and "easy" in result.output

    # Without --model and with 'pred' on every row, scoring the file is what eval does anyway.
    again = CliRunner().invoke(cli, ["eval", "--data", data, "--output-dir", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["metrics"] == m


def test_missing_pred_is_an_error_naming_the_row(tmp_path):
    rows = [json.loads(line) for line in Path(_hand_file(tmp_path)).read_text().splitlines()]
    del rows[3]["pred"]
    data = _write_rows(tmp_path / "gaps.jsonl", rows)
    result = CliRunner().invoke(cli, ["eval", "--data", data, "--from-pred", "--output-dir", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "gaps.jsonl:4" in result.output and "q3" in result.output
    assert not (tmp_path / "o").exists()
    # No --model and no --from-pred: the same file is refused with what to do.
    result = CliRunner().invoke(cli, ["eval", "--data", data])
    assert result.exit_code == 2 and "--model" in result.output


def test_numeric_fields_are_binned_into_quantiles():
    from vtg_core.data.sample import Sample

    def samples(values):
        return [Sample(id=str(i), video=None, duration=1.0, query="q", metadata={"d": v} if v is not None else {})
                for i, v in enumerate(values)]

    assert quantile_edges([1, 2, 3, 4, 5, 6, 7, 8, 9], 4) == [1, 3, 5, 7, 9]
    groups, info = group_values(samples([1.5, 9.0, 3.2, 7.7, 5.0, 2.2, 8.1, 6.4, None]), "d", bins=4)
    assert info["binning"] == "quantile" and info["bins"] == 4
    assert groups[-1] is None  # missing stays missing
    assert groups[0].startswith("q1 [") and groups[1].startswith("q4 [") and groups[1].endswith("]")
    counts = {g: groups.count(g) for g in set(groups) if g}
    assert sorted(counts.values()) == [2, 2, 2, 2]
    # A few distinct integers (a 1-3 rating) are categories, not bins; so are strings.
    assert group_values(samples([1, 2, 3, 1, 2]), "d", bins=4) == ([1, 2, 3, 1, 2], {"binning": "value"})
    assert group_values(samples(["a", "b"]), "d")[1] == {"binning": "value"}


# -- a tiny trained checkpoint ------------------------------------------------------------------

TINY = ["model.torch_dtype=float32", "model.attn_implementation=sdpa", "model.gradient_checkpointing=false",
        "video.max_frames=4", "video.resolution={height: 32, width: 32}", "training.bf16=false", "lora.r=4",
        "lora.lora_alpha=8", "training.max_steps=2", "training.logging_steps=1", "validation.batch_size=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint from `vtg train`'s own code path (2 SFT steps), and a held-out file with difficulty."""
    pytest.importorskip("trl")
    from vtg_core.config import default_config
    from vtg_core.data.synthetic import make_grounding_dataset
    from vtg_core.testing import tiny_model_dir
    from vtg_core.train.run import train

    root = tmp_path_factory.mktemp("eval")
    data = make_grounding_dataset(root / "data", num_train=4, num_val=5, seed=5, duration_range=(3, 4), fps=4,
                                  size=(32, 32))
    config = default_config("sft", [*TINY, f"model.name_or_path={tiny_model_dir()}",
                                    f"dataset.annotation_file={data['train']}", f"dataset.video_dir={data['video_dir']}",
                                    "validation.annotation_file=null"])
    run = train(config, output_dir=str(root / "runs"), evaluate_after=False, progress=False)
    rows = [json.loads(line) for line in Path(data["val"]).read_text().splitlines()]
    for i, row in enumerate(rows):
        row["difficulty"] = [24.65, 3.1, 11.0, 17.9, 30.2][i]  # floats, as in seed 000
    val = _write_rows(root / "val.jsonl", rows)
    return {"checkpoint": run.checkpoint_dir, "val": val, "video_dir": data["video_dir"]}


def _eval_args(trained, out, *extra):
    return ["eval", "--model", trained["checkpoint"], "--data", trained["val"], "--video-dir", trained["video_dir"],
            "--output-dir", str(out), "--no-progress", *extra]


@pytest.fixture(scope="module")
def single(trained, tmp_path_factory):
    """One single-process `vtg eval` of the checkpoint, shared by the tests that compare with it."""
    out = tmp_path_factory.mktemp("single")
    result = CliRunner().invoke(cli, _eval_args(trained, out / "run", "--by", "difficulty", "--bins", "2",
                                                "--plots", str(out / "plots")), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.torch
def test_eval_checkpoint_end_to_end_reproducible_with_complete_manifest(trained, single, tmp_path):
    runner = CliRunner()
    again = runner.invoke(cli, _eval_args(trained, tmp_path / "b", "--by", "difficulty", "--bins", "2"),
                          catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "by difficulty (quantile bins)" in again.output
    a, b = single / "run", tmp_path / "b"
    for name in ("metrics.json", "predictions.jsonl", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name  # same manifest, same numbers

    manifest = json.loads((a / "manifest.json").read_text())
    assert all(k in manifest for k in REQUIRED_KEYS)
    ckpt = manifest["source"]["checkpoint"]
    assert ckpt["kind"] == "lora" and len(ckpt["sha256"]) == 64
    assert "adapter_model.safetensors" in ckpt["files"] and "model.safetensors" in ckpt["base_model"]["files"]
    assert manifest["source"]["config"].endswith("vtg_config.yaml")
    assert manifest["data"]["num_samples"] == 5 and len(manifest["data"]["sha256"]) == 64
    assert len(manifest["prompts"]["templates"]) >= 1 and manifest["prompts"]["rendered_sha256"]
    assert manifest["prompts"]["time_format"] == "relative"  # from the checkpoint's config
    assert manifest["frame_sampling"] == {"max_frames": 4, "sampling_strategy": "uniform",
                                          "resolution": {"height": 32, "width": 32}, "fps": 0.0, "max_pixels": None,
                                          "decode_timeout": 120.0}
    assert manifest["code"]["parser"]["version"] == 1 and manifest["code"]["parser"]["sha256"]
    assert {"torch", "transformers", "peft", "trl", "vtg-core"} <= set(manifest["packages"])
    assert manifest["seed"] == 42
    assert manifest["generation"] == {"greedy": True, "do_sample": False, "max_new_tokens": 32, "batch_size": 2,
                                      "world_size": 1, "backend": "transformers"}
    assert manifest["runtime"] == {"device": "cpu", "dtype": "float32"}

    summary = json.loads((a / "metrics.json").read_text())
    assert summary["manifest_id"] == manifest["id"]
    assert set(summary["metrics"]) >= {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_failure_rate"}
    by = summary["by"]["difficulty"]
    assert by["binning"] == "quantile" and sum(g["num_samples"] for g in by["groups"].values()) == 5
    rows = [json.loads(line) for line in (a / "predictions.jsonl").read_text().splitlines()]
    assert [r["sample_id"] for r in rows] == [f"synthetic|5|val|{i:04d}" for i in range(5)]
    assert all({"raw", "parsed", "parsed_ok", "iou"} <= set(r) for r in rows)
    plots = sorted(p.name for p in (single / "plots").iterdir())
    assert "iou_histogram.png" in plots and sum(p.startswith("timeline_") for p in plots) == 3

    # A frame-sampling override is honoured and changes the manifest.
    third = runner.invoke(cli, _eval_args(trained, tmp_path / "c", "--set", "video.max_frames=2"),
                          catch_exceptions=False)
    assert third.exit_code == 0, third.output
    changed = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert changed["frame_sampling"]["max_frames"] == 2 and changed["id"] != manifest["id"]


@pytest.mark.torch
def test_split_evaluation_equals_single_process(trained, single, tmp_path):
    from vtg_core.errors import VtgError
    from vtg_core.evaluate.pipeline import run_evaluation

    common = {"model": trained["checkpoint"], "video_dir": trained["video_dir"], "progress": False}
    out = tmp_path / "split"
    # Rank 1 writes its shard and hands back nothing; rank 0 merges it with its own in order.
    assert run_evaluation(trained["val"], output_dir=str(out), rank=1, world_size=2, **common) is None
    assert len(list(out.glob(".parts-*/rank-00001-of-00002.jsonl"))) == 1
    merged = run_evaluation(trained["val"], output_dir=str(out), rank=0, world_size=2, shard_timeout=5, **common)
    expected = json.loads((single / "run" / "metrics.json").read_text())["metrics"]
    assert merged.metrics == expected
    assert (out / "predictions.jsonl").read_bytes() == (single / "run" / "predictions.jsonl").read_bytes()
    assert merged.manifest["generation"]["world_size"] == 2
    assert not list(out.glob(".parts-*"))  # merged parts are cleaned up

    # Rank 0 alone waits for the missing shard, then says which one is missing.
    with pytest.raises(VtgError, match="rank-00001-of-00002"):
        run_evaluation(trained["val"], output_dir=str(tmp_path / "lonely"), rank=0, world_size=2,
                       shard_timeout=0.2, **common)


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.skipif(not (Path(sys.executable).parent / "torchrun").exists(), reason="torchrun not installed")
def test_torchrun_two_processes_match_single_process(trained, single, tmp_path):
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["-m", "vtg_core.cli.main", *_eval_args(trained, tmp_path / "tr", "--by", "difficulty", "--bins", "2")]
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", *args], capture_output=True,
                          text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tr = json.loads((tmp_path / "tr" / "metrics.json").read_text())
    one = json.loads((single / "run" / "metrics.json").read_text())
    assert tr["metrics"] == one["metrics"] and tr["by"] == one["by"]
    assert (tmp_path / "tr" / "predictions.jsonl").read_bytes() == (single / "run" / "predictions.jsonl").read_bytes()
    assert json.loads((tmp_path / "tr" / "manifest.json").read_text())["generation"]["world_size"] == 2
