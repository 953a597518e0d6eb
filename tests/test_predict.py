"""`vtg predict` and `VideoTemporalInference`: seed 002's result fields, the CLI's output, clean errors,
and a light `import vtg_core.predict`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from vtg_core.cli.main import cli

QUERY = "when does the red square appear?"
TINY = ["model.torch_dtype=float32", "model.attn_implementation=sdpa", "model.gradient_checkpointing=false",
        "video.max_frames=4", "video.resolution={height: 32, width: 32}", "training.bf16=false", "lora.r=4",
        "lora.lora_alpha=8"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A LoRA checkpoint saved by the backend (as training saves it) and a 4 s clip."""
    pytest.importorskip("peft")
    from vtg_core.backends.transformers_backend import TransformersBackend
    from vtg_core.config import default_config
    from vtg_core.data.synthetic import Event, make_clip
    from vtg_core.testing import tiny_model_dir

    root = tmp_path_factory.mktemp("predict")
    cfg = default_config("sft", [*TINY, f"model.name_or_path={tiny_model_dir()}"])
    backend = TransformersBackend()
    model, processor = backend.load(cfg)
    model, added = backend.prepare_for_training(model, processor, cfg)
    ckpt = backend.save_checkpoint(model, processor, root / "ckpt", config=cfg, added_tokens=added)
    clip = make_clip(root / "clip.mp4", duration=4.0, fps=8, size=(32, 32), events=[Event(start=1.0, end=2.5)])
    return {"checkpoint": ckpt, "clip": str(clip), "root": root}


@pytest.mark.torch
def test_predict_api_returns_the_seed_fields(setup):
    from vtg_core.data.video import probe
    from vtg_core.predict import VideoTemporalInference

    engine = VideoTemporalInference(setup["checkpoint"])
    assert engine.config.video.max_frames == 4  # the checkpoint's own frame sampling
    result = engine.predict(video_path=setup["clip"], query=QUERY)
    assert {"start_time", "end_time", "raw", "parsed"} <= set(result)
    assert isinstance(result["raw"], str) and isinstance(result["parsed"], bool)
    assert result["duration"] == pytest.approx(probe(setup["clip"]).duration)
    # Whatever the untrained model says, the task's parser decides, and the result agrees with it.
    parsed = engine.task.parse(result["raw"], engine.make_sample(setup["clip"], QUERY))
    assert result["parsed"] == parsed.ok
    if parsed.ok:
        assert (result["start_time"], result["end_time"]) == parsed.value
    else:
        assert result["start_time"] is None and result["end_time"] is None and result["error"]
    assert engine.predict(video_path=setup["clip"], query=QUERY)["raw"] == result["raw"]  # greedy: repeatable


@pytest.fixture
def answers(monkeypatch):
    """The model answers "0.25 to 0.75" (fractions: the checkpoint writes relative times)."""
    from vtg_core.backends.transformers_backend import TransformersBackend

    def fake_generate(self, model, processor, batch, **kwargs):
        return ["<answer>0.25 to 0.75</answer>"] * len(batch)

    monkeypatch.setattr(TransformersBackend, "generate", fake_generate)


@pytest.mark.torch
def test_parsed_answer_in_api_and_cli(setup, answers, tmp_path):
    from vtg_core.predict import VideoTemporalInference

    result = VideoTemporalInference(setup["checkpoint"]).predict(video_path=setup["clip"], query=QUERY)
    assert result["parsed"] is True and "error" not in result
    assert (result["start_time"], result["end_time"]) == pytest.approx((1.0, 3.0))  # of a 4 s clip

    png = tmp_path / "viz.png"
    out = CliRunner().invoke(cli, ["predict", "--model", setup["checkpoint"], "--video", setup["clip"], "--query",
                                   QUERY, "--output", str(png), "--ground-truth", "1.0", "2.5"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "start: 1.00 s" in out.output and "end:   3.00 s" in out.output and str(png) in out.output
    assert png.is_file() and png.stat().st_size > 10_000

    out = CliRunner().invoke(cli, ["predict", "--model", setup["checkpoint"], "--video", setup["clip"], "--query",
                                   QUERY, "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["start_time"] == pytest.approx(1.0) and data["raw"] == "<answer>0.25 to 0.75</answer>"


@pytest.mark.torch
def test_unparsable_answer_exits_1_and_missing_video_is_a_clean_error(setup, monkeypatch, tmp_path):
    from vtg_core.backends.transformers_backend import TransformersBackend

    monkeypatch.setattr(TransformersBackend, "generate", lambda self, m, p, batch, **kw: ["no idea"] * len(batch))
    out = CliRunner().invoke(cli, ["predict", "--model", setup["checkpoint"], "--video", setup["clip"],
                                   "--query", QUERY])
    assert out.exit_code == 1 and "no segment" in out.output and "no idea" in out.output

    out = CliRunner().invoke(cli, ["predict", "--model", setup["checkpoint"], "--video", str(tmp_path / "gone.mp4"),
                                   "--query", QUERY])
    assert out.exit_code == 2 and "gone.mp4" in out.output and "Traceback" not in out.output


def test_predict_visualize_export_and_eval_import_light():
    code = ("import sys, vtg_core.predict, vtg_core.visualize, vtg_core.export, vtg_core.evaluate.pipeline\n"
            "print([m for m in ('torch', 'transformers', 'peft', 'matplotlib', 'decord') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
