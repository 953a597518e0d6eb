"""`vtg train` end to end on the CPU: run directory, checkpoint, held-out metrics, baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("trl")

pytestmark = pytest.mark.torch


def _run_dir(root: Path) -> Path:
    dirs = [d for d in root.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_train_command_on_given_data_and_model(tmp_path):
    from vtg_core.cli.main import cli
    from vtg_core.data.synthetic import make_grounding_dataset
    from vtg_core.testing import tiny_model_dir

    data = make_grounding_dataset(tmp_path / "data", num_train=6, num_val=3, seed=3, duration_range=(3, 4),
                                  fps=4, size=(32, 32))
    out = tmp_path / "runs"
    args = ["train", "--data", data["train"], "--val-data", data["val"], "--video-dir", data["video_dir"],
            "--model", tiny_model_dir(), "--output-dir", str(out), "--max-steps", "2",
            "--set", "model.torch_dtype=float32", "--set", "model.attn_implementation=sdpa",
            "--set", "model.gradient_checkpointing=false", "--set", "video.max_frames=4",
            "--set", "video.resolution={height: 32, width: 32}", "--set", "training.bf16=false",
            "--set", "lora.r=4", "--set", "lora.lora_alpha=8", "--set", "training.logging_steps=1"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = _run_dir(out)
    assert run.name.startswith("temporal_grounding-sft-")
    for name in ("config.yaml", "train.log", "metrics.json", "predictions.jsonl"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["num_train"] == 6 and summary["num_eval"] == 3
    assert set(summary["metrics"]) >= {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_failure_rate"}
    assert summary["baseline"]["num_samples"] == 3
    ckpt = Path(summary["checkpoint"])
    assert (ckpt / "adapter_model.safetensors").is_file() and (ckpt / "vtg_config.yaml").is_file()
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert [p["sample_id"] for p in preds] == [f"synthetic|3|val|{i:04d}" for i in range(3)]
    assert "trained model" in result.output and "constant baseline" in result.output
    # The resolved config is what was asked for, and loads back.
    from vtg_core.config import load_config

    saved = load_config([run / "config.yaml"])
    assert saved.training.max_steps == 2 and saved.lora.r == 4


def test_unknown_override_key_is_a_clean_error(tmp_path):
    from vtg_core.cli.main import cli

    result = CliRunner().invoke(cli, ["train", "--set", "training.learnin_rate=1", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "learning_rate" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # nothing half-made


@pytest.mark.slow
def test_default_demo_runs(tmp_path):
    from vtg_core.cli.main import cli

    result = CliRunner().invoke(cli, ["train", "--task", "temporal_grounding", "--output-dir", str(tmp_path),
                                      "--max-steps", "2", "--set", "training.logging_steps=1"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = _run_dir(tmp_path)
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["metrics"]["num_samples"] > 0 and summary["baseline"] is not None
    # The user's settings win over the demo's own (which sets logging_steps=10).
    from vtg_core.config import load_config

    saved = load_config([run / "config.yaml"])
    assert saved.training.logging_steps == 1 and saved.training.max_steps == 2


def _captured_config(monkeypatch, tmp_path, args):
    """The config `vtg train ARGS` hands to the run (the run itself replaced by a recorder)."""
    import vtg_core.train.run as run_module
    from vtg_core.cli.main import cli

    seen = {}

    def record(config, **kwargs):
        seen["config"] = config
        return run_module.RunResult(run_dir=str(tmp_path), checkpoint_dir=None, metrics={}, baseline=None,
                                    predictions_path=None)

    monkeypatch.setattr(run_module, "train", record)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["train", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return seen["config"], result.output


def test_data_without_val_data_holds_out_part_of_it(monkeypatch, tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    config, output = _captured_config(monkeypatch, tmp_path, ["--data", "train.jsonl"])
    # ./data/annotations/val.jsonl (the packaged default) does not exist here: hold out 10% instead
    assert config.validation.annotation_file is None
    assert config.validation.split_fraction == pytest.approx(0.1)
    assert "holding out 10% of --data" in output


def test_existing_default_val_file_and_explicit_val_data_are_kept(monkeypatch, tmp_path):
    (tmp_path / "data" / "annotations").mkdir(parents=True)
    (tmp_path / "data" / "annotations" / "val.jsonl").write_text("")
    config, _ = _captured_config(monkeypatch, tmp_path, ["--data", "train.jsonl"])
    assert config.validation.annotation_file == "./data/annotations/val.jsonl"
    config, _ = _captured_config(monkeypatch, tmp_path, ["--data", "train.jsonl", "--val-data", "v.jsonl"])
    assert config.validation.annotation_file == "v.jsonl"
    config, _ = _captured_config(monkeypatch, tmp_path / "data", ["--data", "t.jsonl", "--set",
                                                                  "validation.split_fraction=0.25"])
    assert config.validation.annotation_file is None and config.validation.split_fraction == 0.25
