"""`vtg export`: a merged folder that transformers alone loads and that answers exactly like adapter +
base; an adapter folder that peft loads; a model card; atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vtg_core.cli.main import cli

pytestmark = pytest.mark.torch

TINY = ["model.torch_dtype=float32", "model.attn_implementation=sdpa", "model.gradient_checkpointing=false",
        "video.max_frames=4", "video.resolution={height: 32, width: 32}", "training.bf16=false", "lora.r=4",
        "lora.lora_alpha=8"]
MESSAGES = [{"role": "user", "content": [{"type": "video"},
                                         {"type": "text", "text": "When does the red square appear?"}]}]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A LoRA checkpoint whose adapter really changes the outputs (lora_B is zero when fresh)."""
    pytest.importorskip("peft")
    import torch

    from vtg_core.backends.transformers_backend import TransformersBackend
    from vtg_core.config import default_config
    from vtg_core.testing import tiny_model_dir

    cfg = default_config("sft", [*TINY, f"model.name_or_path={tiny_model_dir()}"])
    backend = TransformersBackend()
    model, processor = backend.load(cfg)
    model, added = backend.prepare_for_training(model, processor, cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    root = tmp_path_factory.mktemp("export")
    return backend.save_checkpoint(model, processor, root / "ckpt", config=cfg, added_tokens=added)


def _inputs(processor):
    from vtg_core.backends.video_inputs import encode

    frames = np.random.default_rng(0).integers(0, 255, size=(4, 32, 32, 3), dtype=np.uint8)
    return encode(processor, MESSAGES, frames)


def _greedy(model, processor):
    from vtg_core.backends.transformers_backend import generate

    return generate(model, processor, [_inputs(processor)], max_new_tokens=12, do_sample=False)


def test_merged_export_loads_with_transformers_alone_and_answers_like_the_adapter(checkpoint, tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vtg_core.backends.transformers_backend import TransformersBackend
    from vtg_core.testing import tiny_model_dir

    out = tmp_path / "merged"
    result = CliRunner().invoke(cli, ["export", "--checkpoint", checkpoint, "--output-dir", str(out),
                                      "--merge-lora"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "README.md", "vtg_config.yaml"} <= names
    assert "adapter_config.json" not in names and not any(n.endswith(".bin") for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]  # nothing half-written beside it

    merged = AutoModelForImageTextToText.from_pretrained(str(out)).eval()
    processor = AutoProcessor.from_pretrained(str(out))
    assert processor.chat_template and merged.generation_config.eos_token_id
    adapter, adapter_proc = TransformersBackend().load_checkpoint(checkpoint)
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir()).eval()
    with torch.no_grad():
        expected = adapter(**_inputs(adapter_proc)).logits
        torch.testing.assert_close(merged(**_inputs(processor)).logits, expected, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(base(**_inputs(processor)).logits, expected, atol=1e-2)  # the adapter matters
    texts = _greedy(merged, processor)
    assert texts == _greedy(adapter, adapter_proc) and texts[0].strip()
    assert texts != _greedy(base, processor)  # equal answers are not just the base's answers

    card = (out / "README.md").read_text()
    assert "temporal_grounding" in card and tiny_model_dir() in card and "library_name: transformers" in card
    assert "## Training configuration" in card and "r=4" in card and "max frames | 4" in card
    meta = json.loads((out / "vtg_checkpoint.json").read_text())
    assert meta["kind"] == "full" and meta["exported_from"]["merged"] is True


def test_adapter_export_loads_with_peft(checkpoint, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vtg_core.backends.transformers_backend import TransformersBackend
    from vtg_core.testing import tiny_model_dir

    out = tmp_path / "adapter"
    result = CliRunner().invoke(cli, ["export", "--checkpoint", checkpoint, "--output-dir", str(out),
                                      "--base-model", tiny_model_dir()], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "generation_config.json",
            "README.md"} <= names
    assert "library_name: peft" in (out / "README.md").read_text()
    model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(tiny_model_dir()), str(out)).eval()
    processor = AutoProcessor.from_pretrained(str(out))
    adapter, adapter_proc = TransformersBackend().load_checkpoint(checkpoint)
    with torch.no_grad():
        assert torch.equal(model(**_inputs(processor)).logits, adapter(**_inputs(adapter_proc)).logits)


def test_export_is_atomic_and_refuses_to_clobber(checkpoint, tmp_path, monkeypatch):
    from vtg_core.export import hf

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["export", "--checkpoint", checkpoint, "--output-dir", str(taken)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (taken / "keep.txt").read_text() == "mine"

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(hf, "_check_complete", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        hf.export_checkpoint(checkpoint, tmp_path / "half")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no half folder, no temporary

    monkeypatch.undo()
    assert Path(hf.export_checkpoint(checkpoint, taken, overwrite=True)).is_dir()
    assert not (taken / "keep.txt").exists() and (taken / "adapter_model.safetensors").is_file()
