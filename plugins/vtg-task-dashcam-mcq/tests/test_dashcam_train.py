"""End to end on the CPU with tiny models: train (seed 003 defaults, evaluation per epoch, best
checkpoint), `vtg eval` (confusion matrix table + PNG), `vtg predict --submission`, GRPO, families."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("peft")

pytestmark = pytest.mark.torch

FAST = ["--set", "model.torch_dtype=float32", "--set", "model.attn_implementation=sdpa",
        "--set", "model.gradient_checkpointing=false", "--set", "video.resolution={height: 32, width: 32}",
        "--set", "training.bf16=false", "--set", "training.per_device_train_batch_size=4",
        "--set", "training.gradient_accumulation_steps=1", "--set", "training.save_steps=1000",
        "--set", "training.logging_steps=1", "--set", "validation.batch_size=4", "--set", "dataloader.num_workers=0"]


def _invoke(args):
    from vtg_core.cli.main import cli

    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_train_internvl_keeps_the_best_epoch_then_eval_and_submission(tmp_path, roadbuddy):
    from vtg_core.testing import tiny_model_dir

    out = tmp_path / "runs"
    _invoke(["train", "--task", "dashcam_mcq", "--data", roadbuddy["train"], "--model", tiny_model_dir("internvl"),
             "--output-dir", str(out), "--set", "training.num_train_epochs=2", *FAST])
    [run] = list(out.iterdir())
    config = yaml.safe_load((run / "config.yaml").read_text())
    # Seed 003's settings came from the task; what the user said (--model, --set) won.
    assert {k: config["lora"][k] for k in ("enabled", "r", "lora_alpha", "lora_dropout")} == {
        "enabled": True, "r": 32, "lora_alpha": 64, "lora_dropout": 0.05}
    assert config["validation"] == {"annotation_file": None, "batch_size": 4, "split_fraction": 0.2}
    assert config["training"]["eval_strategy"] == "epoch" and config["training"]["num_train_epochs"] == 2
    assert config["model"]["name_or_path"] == tiny_model_dir("internvl")
    assert "data: 16 training samples, 4 held-out samples" in (run / "train.log").read_text()

    ckpts = run / "checkpoints"
    history = [json.loads(line) for line in (ckpts / "epoch_eval.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1.0, 2.0]
    assert all(h["metrics"]["num_samples"] == 4 and h["metric"] == "accuracy" for h in history)
    best = json.loads((ckpts / "best.json").read_text())
    values = [h["value"] for h in history]
    assert best["value"] == max(values) and best["epoch"] == history[values.index(max(values))]["epoch"]
    adapter = json.loads((ckpts / "best" / "adapter_config.json").read_text())
    assert adapter["r"] == 32 and adapter["lora_alpha"] == 64
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["checkpoint"] == best["checkpoint"] == str(ckpts / "best")
    assert summary["metrics"]["accuracy"] == pytest.approx(best["value"])  # same split, same code
    assert set(summary["baseline"]) == set(summary["metrics"])  # the majority-letter baseline beside it

    evaluated = _invoke(["eval", "--model", best["checkpoint"], "--data", roadbuddy["train"], "--no-progress",
                         "--output-dir", str(tmp_path / "eval"), "--plots", str(tmp_path / "plots")])
    assert "confusion matrix (rows: true answer, columns: predicted answer):" in evaluated.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    cm = metrics["tables"]["confusion_matrix"]
    assert sum(map(sum, cm["values"])) == 20 and metrics["metrics"]["num_samples"] == 20
    assert (tmp_path / "plots" / "confusion_matrix.png").stat().st_size > 1000

    sub = tmp_path / "out.csv"
    predicted = _invoke(["predict", "--model", best["checkpoint"], "--task", "dashcam_mcq", "--data",
                         roadbuddy["test"], "--submission", str(sub)])
    rows = list(csv.reader(sub.open(encoding="utf-8")))
    test_ids = [r["id"] for r in json.loads(Path(roadbuddy["test"]).read_text())["data"]]
    assert rows[0] == ["id", "answer"] and [r[0] for r in rows[1:]] == test_ids
    assert all(r[1] in "ABCD" and len(r[1]) == 1 for r in rows[1:])
    side = json.loads((tmp_path / "out.unparsed.json").read_text())
    raw = [json.loads(line) for line in (tmp_path / "out.predictions.jsonl").read_text().splitlines()]
    assert side["unparsed"] == sum(not r["parsed_ok"] for r in raw) == len(side["rows_with_fallback"])
    for r in side["rows_with_fallback"]:
        assert r["id"] in predicted.output and r["written"] == "A"


def test_a_submission_is_complete_and_names_the_rows_given_the_fallback(tmp_path, roadbuddy):
    from vtg_dashcam_mcq.task import DashcamMCQTask

    from vtg_core.predict.batch import write_submission

    task = DashcamMCQTask(fallback_letter="B")
    samples, _ = task.load(roadbuddy["test"])
    assert [len(s.inputs["letters"]) for s in samples] == [2, 2, 2, 4, 3, 3]
    # C for a two-choice question, no letter, empty, ambiguous: four rows get the fallback.
    texts = ["C", "no idea", "Đáp án: A", "", "The answer is (B)", "A or B"]
    out = write_submission(task, samples, texts, tmp_path / "sub.csv")
    rows = list(csv.reader((tmp_path / "sub.csv").open(encoding="utf-8")))
    assert rows == [["id", "answer"], *([s.id, a] for s, a in zip(samples, ["B", "B", "A", "B", "B", "B"],
                                                                    strict=True))]
    assert out.unparsed_ids == [samples[i].id for i in (0, 1, 3, 5)]
    side = json.loads(Path(out.sidecar).read_text())
    assert side["unparsed"] == 4 and side["rows_with_fallback"][1]["raw"] == "no idea"
    assert "not one of the choices AB" in side["rows_with_fallback"][0]["error"]


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl", "internvl"])
def test_support_frames_reach_each_family_and_lora_defaults_fit_it(family, roadbuddy):
    from vtg_dashcam_mcq.task import DashcamMCQTask

    from vtg_core.backends.lora import apply_lora
    from vtg_core.backends.transformers_backend import TransformersBackend
    from vtg_core.config import default_config
    from vtg_core.errors import ConfigError
    from vtg_core.evaluate.runner import evaluate
    from vtg_core.testing import tiny_model

    task = DashcamMCQTask()
    samples, _ = task.load(roadbuddy["train"])
    cfg = default_config("sft", ["video.resolution={height: 32, width: 32}"])
    model, processor = tiny_model(family)
    result = evaluate(model, processor, TransformersBackend(), task, samples[:3], cfg.video, batch_size=3,
                      max_new_tokens=3, progress=False)
    assert len(result.predictions) == 3 and result.metrics["num_samples"] == 3

    lora = DashcamMCQTask.config_defaults
    peft_model = apply_lora(model, {"r": lora["lora.r"], "lora_alpha": lora["lora.lora_alpha"],
                                    "lora_dropout": lora["lora.lora_dropout"],
                                    "target_modules": lora["lora.target_modules"]})
    adapted = {n.split(".")[-2] for n, _ in peft_model.named_modules() if n.endswith("lora_A")}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj"}
    with pytest.raises(ConfigError, match=r"'qkv_proj' matches no module.*q_proj"):  # seed 003's names
        apply_lora(tiny_model(family)[0], {"r": 4, "target_modules": ["qkv_proj", "out_proj"]})


def test_a_user_setting_beats_the_task_default():
    from vtg_core.config import default_config
    from vtg_core.config.task_defaults import apply_task_defaults

    base = default_config("sft", ["task=dashcam_mcq", "lora.r=8"])
    config = apply_task_defaults(base, (), ["task=dashcam_mcq", "lora.r=8", "validation=null"])
    assert config.lora.r == 8 and config.lora.lora_alpha == 64  # r is the user's, alpha the task's
    assert config.validation.split_fraction == 0.0  # the user named the whole section
    grounding = default_config("sft")
    assert apply_task_defaults(grounding) == grounding  # tasks without defaults are untouched


@pytest.mark.slow
def test_grpo_step_logs_the_task_rewards(tmp_path, roadbuddy):
    from vtg_core.testing import tiny_model_dir

    out = tmp_path / "runs"
    result = _invoke(["train", "--task", "dashcam_mcq", "--method", "grpo", "--data", roadbuddy["train"],
                      "--model", tiny_model_dir(), "--output-dir", str(out), "--max-steps", "1", "--no-eval",
                      *FAST, "--set", "rl.num_generations=2", "--set", "rl.max_completion_length=4",
                      "--set", "training.per_device_train_batch_size=2", "--set", "rl.max_prompt_length=null"])
    [run] = list(out.iterdir())
    log = (run / "train.log").read_text() + result.output
    for name in ("mcq_accuracy", "mcq_format"):
        assert f"rewards/{name}/mean" in log
    assert (run / "checkpoints" / "final" / "adapter_config.json").is_file()
