"""The unsloth backend on the CPU: what it asks of unsloth (a stand-in records it), real training
steps, complete checkpoints that either backend reloads, mode switching, and the clear failure
where unsloth cannot run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402
from vtg_backend_unsloth.availability import unsloth_usable  # noqa: E402
from vtg_backend_unsloth.backend import UnslothBackend  # noqa: E402

from vtg_core import testing  # noqa: E402
from vtg_core.backends.transformers_backend import TransformersBackend  # noqa: E402
from vtg_core.config import VtgConfig, apply_overrides  # noqa: E402
from vtg_core.data.video import Frames  # noqa: E402
from vtg_core.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.torch

MESSAGES = [
    {"role": "system", "content": "You localize events in videos."},
    {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "When does the red square appear?"}]},
]


def frames(n: int = 4, size: int = 32, seed: int = 0) -> Frames:
    arr = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    ts = tuple(i / 2.0 for i in range(n))
    return Frames(array=arr, timestamps=ts, source_timestamps=ts, indices=tuple(range(n)), native_fps=2.0,
                  sampled_fps=2.0, decoder="synthetic", path="", duration=n / 2.0)


def tiny_config(*overrides: str) -> VtgConfig:
    base = [f"model.name_or_path={testing.tiny_model_dir()}", "model.backend=unsloth", "model.torch_dtype=float32",
            "model.attn_implementation=sdpa", "lora.r=4", "lora.lora_alpha=8", "lora.lora_dropout=0.0",
            "training.learning_rate=1e-2", "training.mm_projector_lr=1e-2", "training.bf16=false"]
    return apply_overrides(VtgConfig(), [*base, *overrides])


def train_step(backend, model, processor, answer: str = "<answer>1.0 to 2.0</answer>") -> float:
    batch = backend.collate([backend.encode(processor, MESSAGES, [frames()], answer)], processor)
    optimizer = torch.optim.AdamW(backend.param_groups(model, tiny_config()))
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return float(loss.detach())


def test_load_and_prepare_ask_unsloth_for_the_mapped_settings(fake_unsloth):
    backend = UnslothBackend(fast_vision_model=fake_unsloth)
    cfg = tiny_config("temporal.use_temporal_tokens=true", "temporal.num_bins=10",
                      "model.backend_options={max_seq_length: 4096}")
    model, processor = backend.load(cfg)
    load = fake_unsloth.kwargs("from_pretrained")
    assert load["model_name"] == testing.tiny_model_dir()
    assert load["dtype"] is torch.float32 and load["attn_implementation"] == "sdpa"
    assert (load["load_in_4bit"], load["load_in_8bit"], load["full_finetuning"]) == (False, False, False)
    assert load["use_gradient_checkpointing"] == "unsloth" and load["max_seq_length"] == 4096

    model, added = backend.prepare_for_training(model, processor, cfg)
    assert added == [f"<{i}>" for i in range(10)]
    peft = fake_unsloth.kwargs("get_peft_model")
    assert peft["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (peft["finetune_vision_layers"], peft["finetune_language_layers"]) == (False, True)
    assert (peft["finetune_attention_modules"], peft["finetune_mlp_modules"]) == (True, False)
    assert (peft["r"], peft["lora_alpha"], peft["use_gradient_checkpointing"]) == (4, 8, "unsloth")
    # The projector trains in full and the new tokens' rows train, as with the transformers backend.
    assert peft["modules_to_save"] and all("visual.merger" in m or "deepstack" in m for m in peft["modules_to_save"])
    new_ids = [processor.tokenizer.convert_tokens_to_ids(t) for t in added]
    assert sorted(peft["trainable_token_indices"]["embed_tokens"]) == sorted(new_ids)
    assert fake_unsloth.names()[-1] == "for_training"
    assert fake_unsloth.kwargs("for_training") == {"use_gradient_checkpointing": "unsloth"}
    lora = [n for n, p in model.named_parameters() if "lora_" in n and p.requires_grad]
    assert lora and not any(".visual." in n for n in lora)


def test_refusals_come_before_anything_loads(fake_unsloth):
    backend = UnslothBackend(fast_vision_model=fake_unsloth)
    with pytest.raises(ConfigError, match="unsloth trains quantized weights only through LoRA"):
        backend.load(tiny_config("model.quantization=4bit", "lora.enabled=false"))
    with pytest.raises(ConfigError, match="vLLM cannot serve LoRA on vision layers"):
        backend.load(tiny_config("model.backend_options={fast_inference: true}", "model.freeze_vision_tower=false",
                                 "training.vision_tower_lr=1e-4", "training.mm_projector_lr=0"))
    assert fake_unsloth.calls == []


def test_target_names_are_checked_against_the_model(fake_unsloth):
    backend = UnslothBackend(fast_vision_model=fake_unsloth)
    cfg = tiny_config("lora.target_modules=[q_proj, qkv]")
    model, processor = backend.load(cfg)
    with pytest.raises(ConfigError, match="only names vision-tower / projector modules"):
        backend.prepare_for_training(model, processor, cfg)
    assert "get_peft_model" not in fake_unsloth.names()


def test_vision_lora_reaches_the_vision_projections(fake_unsloth):
    backend = UnslothBackend(fast_vision_model=fake_unsloth)
    cfg = tiny_config("model.freeze_vision_tower=false", "training.vision_tower_lr=1e-3",
                      "lora.target_modules=[q_proj, v_proj, gate_proj]")
    model, processor = backend.load(cfg)
    model, _ = backend.prepare_for_training(model, processor, cfg)
    peft = fake_unsloth.kwargs("get_peft_model")
    assert peft["finetune_vision_layers"] is True and peft["finetune_mlp_modules"] is True
    # Qwen3-VL's vision blocks call their projections qkv / proj / linear_fc1 / linear_fc2.
    assert set(peft["target_modules"]) == {"q_proj", "v_proj", "gate_proj", "qkv", "proj", "linear_fc1",
                                           "linear_fc2"}
    vision_lora = [n for n, p in model.named_parameters() if "lora_" in n and ".visual.blocks." in n]
    assert vision_lora
    groups = {g["name"]: g["lr"] for g in backend.param_groups(model, cfg)}
    assert groups["vision_tower"] == 1e-3 and groups["language_model"] == 1e-2


def test_full_finetuning_without_lora_keeps_the_core_freezing_rules(fake_unsloth):
    backend = UnslothBackend(fast_vision_model=fake_unsloth)
    cfg = tiny_config("lora.enabled=false", "model.gradient_checkpointing=false")
    model, processor = backend.load(cfg)
    assert fake_unsloth.kwargs("from_pretrained")["full_finetuning"] is True
    model, _ = backend.prepare_for_training(model, processor, cfg)
    assert "get_peft_model" not in fake_unsloth.names()
    assert fake_unsloth.kwargs("for_training") == {"use_gradient_checkpointing": False}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("language_model" in n for n in trainable) and any("visual.merger" in n for n in trainable)
    assert not any(".visual.blocks." in n for n in trainable)  # vision tower frozen


def test_trained_checkpoint_is_complete_and_reloads_with_either_backend(fake_unsloth, tmp_path):
    backend = UnslothBackend(fast_vision_model=fake_unsloth)
    cfg = tiny_config("temporal.use_temporal_tokens=true", "temporal.num_bins=10", "model.quantization=4bit")
    model, processor = backend.load(cfg)
    assert fake_unsloth.kwargs("from_pretrained")["load_in_4bit"] is True
    model, added = backend.prepare_for_training(model, processor, cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    first = train_step(backend, model, processor, "<answer><3> to <7></answer>")
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert any("lora_B" in n for n in changed) and any("merger" in n for n in changed)
    assert np.isfinite(first)

    ckpt = backend.save_checkpoint(model, processor, str(tmp_path / "final"), config=cfg, added_tokens=added)
    files = {p.name for p in Path(ckpt).iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja", "generation_config.json", "vtg_config.yaml", "vtg_checkpoint.json"} <= files
    meta = json.loads((Path(ckpt) / "vtg_checkpoint.json").read_text())
    assert meta["kind"] == "lora" and meta["added_tokens"] == added and meta["family"] == "qwen3_vl"

    model.eval()
    batch = backend.collate([backend.encode(processor, MESSAGES, [frames(seed=1)], "<answer><3> to <7></answer>")],
                            processor)
    with torch.no_grad():
        expected = model(**batch).logits
    fake_unsloth.calls.clear()
    again, processor2 = backend.load_checkpoint(ckpt)
    reload = fake_unsloth.kwargs("from_pretrained")
    assert reload["model_name"] == testing.tiny_model_dir() and reload["load_in_4bit"] is True  # as trained
    assert fake_unsloth.names()[-1] == "for_inference"
    assert processor2.tokenizer.convert_tokens_to_ids("<7>") == processor.tokenizer.convert_tokens_to_ids("<7>")
    with torch.no_grad():
        torch.testing.assert_close(again(**batch).logits, expected)
    plain, _ = TransformersBackend().load_checkpoint(ckpt)
    with torch.no_grad():
        torch.testing.assert_close(plain(**batch).logits, expected)


def test_generate_switches_to_inference_and_back(fake_unsloth):
    backend = UnslothBackend(fast_vision_model=fake_unsloth)
    cfg = tiny_config()
    model, processor = backend.load(cfg)
    model, _ = backend.prepare_for_training(model, processor, cfg)
    fake_unsloth.calls.clear()
    out = backend.generate(model, processor, [backend.encode(processor, MESSAGES, [frames()])], max_new_tokens=3)
    assert len(out) == 1 and isinstance(out[0], str)
    assert fake_unsloth.names() == ["for_inference", "for_training"] and model.training
    model.eval()
    fake_unsloth.calls.clear()
    backend.generate(model, processor, [backend.encode(processor, MESSAGES, [frames()])], max_new_tokens=2)
    assert fake_unsloth.names() == ["for_inference"] and not model.training


def test_sft_then_grpo_run_through_the_backend(fake_unsloth, tmp_path):
    from vtg_backend_unsloth.compare import step_overrides

    from vtg_core.config import default_config
    from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask
    from vtg_core.train.grpo import run_grpo
    from vtg_core.train.sft import run_sft

    data = make_data(tmp_path)
    task = TemporalGroundingTask()
    samples = task.load(data["train"], video_dir=data["video_dir"])[0]
    sets = [*step_overrides("unsloth", testing.tiny_model_dir(), 2, cuda=False), "model.gradient_checkpointing=false"]
    backend = UnslothBackend(fast_vision_model=fake_unsloth)
    sft = run_sft(default_config("sft", sets), task=task, train_samples=samples, output_dir=str(tmp_path / "sft"),
                  backend=backend)
    assert fake_unsloth.names()[:3] == ["from_pretrained", "get_peft_model", "for_training"]
    losses = [h["loss"] for h in sft.log_history if "loss" in h]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert (Path(sft.checkpoint) / "adapter_model.safetensors").is_file()

    from vtg_core.train.grpo_device import grpo_device_problem

    if grpo_device_problem():  # trl <= 1.15 on a CPU (the unsloth-caps CI environment)
        pytest.skip(grpo_device_problem())
    fake_unsloth.calls.clear()
    grpo = run_grpo(default_config("rl", sets), task=task, train_samples=samples, output_dir=str(tmp_path / "rl"),
                    backend=backend, sft_checkpoint=sft.checkpoint)
    # GRPO continues the SFT adapter, loaded through unsloth in training mode.
    assert fake_unsloth.names()[:2] == ["from_pretrained", "for_training"]
    assert fake_unsloth.kwargs("from_pretrained")["model_name"] == testing.tiny_model_dir()
    assert grpo.global_step == 2 and any("reward" in h for h in grpo.log_history)
    assert (Path(grpo.checkpoint_dir) / "adapter_model.safetensors").is_file()


def make_data(tmp_path):
    from vtg_core.data.synthetic import make_grounding_dataset

    return make_grounding_dataset(tmp_path / "data", num_train=4, num_val=2, seed=1, duration_range=(3, 4),
                                  fps=4, size=(32, 32))


@pytest.mark.skipif(unsloth_usable()[0], reason="unsloth can run here: the failure path is for machines where not")
def test_choosing_unsloth_where_it_cannot_run_stops_at_once():
    with pytest.raises(ConfigError) as err:
        UnslothBackend()
    assert "backend 'unsloth' cannot run on this machine" in str(err.value)
    assert "--backend transformers" in str(err.value)
    assert "unsloth" not in sys.modules


@pytest.mark.skipif(unsloth_usable()[0], reason="unsloth can run here: the failure path is for machines where not")
def test_vtg_train_with_unsloth_fails_before_making_a_run(tmp_path):
    from vtg_core.cli.main import cli

    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["train", "--backend", "unsloth", "--quantization", "--data", "missing.jsonl",
                                      "--model", "some/model", "--output-dir", str(out)])
    assert result.exit_code != 0
    assert "backend 'unsloth' cannot run on this machine" in result.output
    assert "--backend transformers" in result.output and "Traceback" not in result.output
    assert not out.exists()  # nothing half-made


def test_transformers_backend_refuses_quantization_and_names_unsloth():
    cfg = tiny_config("model.backend=transformers", "model.quantization=4bit")
    with pytest.raises(ConfigError, match="4/8-bit base weights need --backend unsloth"):
        TransformersBackend().load(cfg)
    cfg = tiny_config("model.backend=transformers", "model.backend_options={max_seq_length: 4096}")
    with pytest.raises(ConfigError, match="max_seq_length are not settings of the transformers backend"):
        TransformersBackend().load(cfg)
