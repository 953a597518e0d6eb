"""End to end on the CPU: `vtg train --task robot_vqa --data DATASET_DIR` with seed 004's training options,
then `vtg robot-vqa evaluate --save_predictions` on the checkpoint, and the offline demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

pytestmark = [pytest.mark.torch, pytest.mark.slow]

CONFIG = {
    "task": "robot_vqa",
    "model": {"torch_dtype": "float32", "attn_implementation": "sdpa", "gradient_checkpointing": False},
    "video": {"resolution": {"height": 32, "width": 32}},
    "dataloader": {"num_workers": 0},
    "training": {"bf16": False, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                 "logging_steps": 1, "save_steps": 1000, "learning_rate": 1.0e-3, "weight_decay": 0.0},
}


@pytest.fixture(scope="module")
def splits(trajectories, tmp_path_factory):
    from vtg_robot_vqa.generate import GenerationConfig, generate_dataset

    root = tmp_path_factory.mktemp("vqa")
    for name, n, seed in (("train", 8, 0), ("val", 4, 1)):
        generate_dataset(trajectories["index"], root / name, GenerationConfig(num_samples=n, seed=seed, max_frames=4),
                         save_batch_size=-1)
    return {"train": str(root / "train"), "val": str(root / "val")}


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


def _train(cli, tmp_path, splits, *extra):
    config = tmp_path / "robot.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    from vtg_core.testing import tiny_model_dir

    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["train", "--task", "robot_vqa", "-c", str(config), "--data", splits["train"],
                                      "--val-data", splits["val"], "--model", tiny_model_dir(), "--output-dir",
                                      str(out), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [run] = list(out.iterdir())
    return run, result.output


def test_full_finetune_with_frozen_vision_tower_and_scheduler_options(vtg_cli, tmp_path, splits):
    """Seed 004's `--lora_rank 0 --freeze_vision_tower --lr_scheduler_type --warmup_ratio` as vtg settings."""
    from vtg_core.testing import tiny_model_dir

    run, output = _train(vtg_cli, tmp_path, splits, "--max-steps", "4", "--set", "lora.r=0",
                         "--set", "model.freeze_vision_tower=true",
                         "--set", "training.lr_scheduler_type=constant_with_warmup",
                         "--set", "training.warmup_ratio=0.5")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["lora"]["enabled"] is False and saved["lora"]["r"] == 0
    final = run / "checkpoints" / "final"
    assert not (final / "adapter_config.json").exists()  # rank 0: full weights, no adapter
    before, after = _weights(tiny_model_dir()), _weights(final)
    vision = [k for k in before if k.startswith("model.visual.") and "merger" not in k]
    language = [k for k in before if k.startswith("model.language_model.layers.")]
    assert vision and all(before[k].equal(after[k]) for k in vision)  # frozen vision tower
    assert sum(not before[k].equal(after[k]) for k in language) > len(language) // 2  # full fine-tuning

    [state] = list((run / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    lrs = [row["learning_rate"] for row in json.loads(state.read_text())["log_history"] if "learning_rate" in row]
    # Two warm-up steps (0.5 x 4) from 0, then constant (the first parameter group's rate is logged).
    assert len(lrs) == 4 and lrs[0] < lrs[1] < lrs[2] == lrs[3] and lrs[1] == pytest.approx(lrs[2] / 2)

    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert metrics["num_preference"] + metrics["num_progress"] == 4
    assert {"preference_accuracy", "progress_mae", "progress_rmse", "parse_failures"} <= set(metrics)
    predictions = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 4 and all("raw" in p and "ground_truth" in p for p in predictions)
    assert "preference_accuracy" in output


def test_multi_image_lora_training_then_evaluate_with_saved_predictions(vtg_cli, tmp_path, splits):
    run, _ = _train(vtg_cli, tmp_path, splits, "--max-steps", "1", "--no-eval",
                    "--set", "task_options={use_multi_image: true}", "--set", "lora.r=4", "--set", "lora.lora_alpha=8")
    final = run / "checkpoints" / "final"
    assert (final / "adapter_config.json").exists()
    assert yaml.safe_load((final / "vtg_config.yaml").read_text())["task_options"] == {"use_multi_image": True}

    out = tmp_path / "eval" / "eval_results.json"
    result = CliRunner().invoke(vtg_cli, ["robot-vqa", "evaluate", "--model_path", str(final), "--dataset_path",
                                          splits["val"], "--output_path", str(out), "--batch_size", "2",
                                          "--save_predictions", "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["use_multi_image"] is True and report["total_samples"] == 4
    assert sum(report["sample_types"].values()) == 4
    assert set(report["preference"]) == {"count", "correct", "accuracy", "parse_failures"}
    assert set(report["progress"]) == {"count", "mae", "rmse", "parse_failures"}
    rows = [json.loads(line) for line in Path(report["predictions_path"]).read_text().splitlines()]
    assert len(rows) == 4 and {r["ground_truth"] for r in rows} <= {str(n) for n in range(101)}

    # The core's `vtg eval` takes the data set folder too, with the same metrics and a manifest.
    core = tmp_path / "core-eval"
    result = CliRunner().invoke(vtg_cli, ["eval", "--task", "robot_vqa", "--model", str(final), "--data",
                                          splits["val"], "--output-dir", str(core)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((core / "metrics.json").read_text())
    flat = metrics.get("metrics", metrics)
    assert flat["num_preference"] + flat["num_progress"] == 4 and "preference_accuracy" in flat
    manifest = json.loads((core / "manifest.json").read_text())
    assert manifest["data"]["num_samples"] == 4 and len(manifest["data"]["sha256"]) == 64


def test_offline_demo_trains_without_data(vtg_cli, tmp_path):
    result = CliRunner().invoke(vtg_cli, ["train", "--task", "robot_vqa", "--max-steps", "1", "--output-dir",
                                          str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [run] = list(tmp_path.iterdir())
    assert (run / "data" / "train" / "generation_config.json").is_file()
    assert (run / "checkpoints" / "final").is_dir() and "preference_accuracy" in result.output


def test_grpo_uses_the_task_rewards_on_two_video_prompts(vtg_cli, tmp_path, splits, monkeypatch):
    """One GRPO step per sample type: each reward scores its own rows and is None on the others."""
    from vtg_core.train import grpo

    runs = []
    real_run_grpo = grpo.run_grpo

    def keep_result(*args, **kwargs):
        runs.append(real_run_grpo(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(grpo, "run_grpo", keep_result)
    CONFIG_RL = {**CONFIG, "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj"]},
                 "rl": {"num_generations": 2, "max_completion_length": 4, "max_prompt_length": None,
                        "kl_coef": 0.0, "temperature": 1.0}}
    config = tmp_path / "grpo.yaml"
    config.write_text(yaml.safe_dump(CONFIG_RL), encoding="utf-8")
    from vtg_core.testing import tiny_model_dir

    result = CliRunner().invoke(vtg_cli, ["train", "--task", "robot_vqa", "--method", "grpo", "-c", str(config),
                                          "--data", splits["train"], "--val-data", splits["val"], "--model",
                                          tiny_model_dir(), "--output-dir", str(tmp_path / "runs"), "--max-steps",
                                          "2", "--no-eval"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [run] = runs
    assert run.reward_names == ("robot_preference", "robot_progress")
    records = [json.loads(line) for line in Path(run.completions_path).read_text().splitlines()]
    assert len(records) == 4
    for record in records:
        rewards = record["rewards"]
        assert (rewards["robot_preference"] is None) != (rewards["robot_progress"] is None)
        assert all(v is None or 0.0 <= v <= 1.0 for v in rewards.values())
    scored = {name for record in records for name, v in record["rewards"].items() if v is not None}
    assert scored == {"robot_preference", "robot_progress"}  # a two-video preference prompt and a progress one
