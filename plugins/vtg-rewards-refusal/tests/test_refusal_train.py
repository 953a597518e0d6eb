"""End to end on the CPU: `vtg train --task refusal_grounding --method grpo`, then `vtg eval` on its checkpoint.

Tiny model, four generated clips, one GRPO step with two generations: the point is that every
seed 001 reward reaches TRL's logs under its own name and the task's metrics come out of `vtg eval`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("trl")

pytestmark = pytest.mark.torch

REWARDS = ("format", "refuse_iou", "explain_correction")

CONFIG = {
    "task": "refusal_grounding",
    "model": {"torch_dtype": "float32", "attn_implementation": "sdpa", "gradient_checkpointing": False},
    "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
    "video": {"max_frames": 4, "resolution": {"height": 32, "width": 32}},
    "training": {"bf16": False, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                 "logging_steps": 1, "save_steps": 1000, "learning_rate": 1.0e-3},
    "rl": {"num_generations": 2, "max_completion_length": 8, "max_prompt_length": None, "kl_coef": 0.0,
           "temperature": 1.0},
    "rewards": [{"name": name, "weight": 1.0} for name in REWARDS],
}


def test_grpo_run_logs_every_reward_and_vtg_eval_reports_the_metrics(tmp_path, monkeypatch):
    from vtg_rewards_refusal import plugin
    from vtg_rewards_refusal.synthetic import make_riq_dataset

    from vtg_core.cli.main import cli
    from vtg_core.testing import fresh_registry, tiny_model_dir
    from vtg_core.train import grpo

    fresh_registry(("rewards_refusal", plugin))  # what `vtg` sees, installed or not
    data = make_riq_dataset(tmp_path / "data", num_train=4, num_val=2, seed=0, duration_range=(2.0, 3.0))
    config = tmp_path / "refusal.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")

    runs = []
    real_run_grpo = grpo.run_grpo

    def keep_result(*args, **kwargs):
        runs.append(real_run_grpo(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(grpo, "run_grpo", keep_result)
    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, [
        "train", "--task", "refusal_grounding", "--method", "grpo", "-c", str(config), "--data", data["train"],
        "--val-data", data["val"], "--video-dir", data["video_dir"], "--model", tiny_model_dir(),
        "--output-dir", str(out), "--max-steps", "1", "--no-eval"], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    [run] = runs
    assert run.global_step == 1 and run.reward_names == REWARDS
    step = run.log_history[0]
    for name in REWARDS:  # TRL logs each reward under the seed's name
        assert f"rewards/{name}/mean" in step and f"rewards/{name}/std" in step
    # One prompt x two generations per step (per_device_train_batch_size counts completions).
    records = [json.loads(line) for line in Path(run.completions_path).read_text().splitlines()]
    assert len(records) == 2 and all(set(r["rewards"]) == set(REWARDS) for r in records)
    assert all(r["rewards"]["refuse_iou"] is not None for r in records)  # every row is refusal-aware

    evaluated = CliRunner().invoke(cli, [
        "eval", "--model", run.checkpoint_dir, "--data", data["val"], "--video-dir", data["video_dir"],
        "--by", "difficulty", "--output-dir", str(tmp_path / "eval"), "--no-progress"], catch_exceptions=False)
    assert evaluated.exit_code == 0, evaluated.output
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert summary["task"] == "refusal_grounding"
    assert {"refusal_accuracy", "refusal_precision", "refusal_recall", "refusal_f1", "R1@0.3", "R1@0.5", "R1@0.7",
            "mIoU", "correction_similarity", "parse_failure_rate"} <= set(summary["metrics"])
    assert summary["metrics"]["num_samples"] == 2 and "difficulty" in summary["by"]


def test_sft_runs_with_the_curriculum_sampler(tmp_path):
    from vtg_rewards_refusal import plugin
    from vtg_rewards_refusal.synthetic import make_riq_dataset

    from vtg_core.cli.main import cli
    from vtg_core.testing import fresh_registry, tiny_model_dir

    fresh_registry(("rewards_refusal", plugin))
    data = make_riq_dataset(tmp_path / "data", num_train=6, num_val=1, seed=1, duration_range=(2.0, 3.0))
    sft = {key: CONFIG[key] for key in ("task", "model", "lora", "video", "training")}
    sft["dataloader"] = {"sampler": "refusal_curriculum", "num_workers": 0}
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump(sft), encoding="utf-8")
    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, [
        "train", "--task", "refusal_grounding", "--method", "sft", "-c", str(config), "--data", data["train"],
        "--val-data", data["val"], "--video-dir", data["video_dir"], "--model", tiny_model_dir(),
        "--output-dir", str(out), "--max-steps", "2", "--no-eval"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [run] = list(out.iterdir())
    log = (run / "train.log").read_text()
    assert "refusal curriculum: 3 answerable, 3 refusable samples" in log


def test_offline_demo_runs_grpo_with_the_task_rewards(tmp_path):
    """`vtg train --task refusal_grounding --method grpo` with no data: generated RIQ set, seed 001 rewards."""
    from vtg_rewards_refusal import plugin

    from vtg_core.cli.main import cli
    from vtg_core.plugins import set_registry
    from vtg_core.testing import fresh_registry

    fresh_registry(("rewards_refusal", plugin))
    try:
        result = CliRunner().invoke(cli, ["train", "--task", "refusal_grounding", "--method", "grpo",
                                          "--max-steps", "1", "--output-dir", str(tmp_path)], catch_exceptions=False)
    finally:
        set_registry(None)
    assert result.exit_code == 0, result.output
    [run_dir] = list(tmp_path.iterdir())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    # The task's own rewards, not the grounding rewards of the packaged rl_config.yaml.
    assert [r["name"] for r in config["rewards"]] in ([], list(REWARDS))
    log = (run_dir / "train.log").read_text()
    for name in REWARDS:
        assert f"rewards/{name}/mean" in log or f"'rewards/{name}/mean'" in result.output
    assert "refusal_accuracy" in result.output and (run_dir / "checkpoints" / "final").is_dir()
