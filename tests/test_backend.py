"""The transformers backend: video inputs per family, masking, LoRA rules, checkpoints, generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vtg_core import testing  # noqa: E402
from vtg_core.backends import lora as vlora  # noqa: E402
from vtg_core.backends.families import family_of  # noqa: E402
from vtg_core.backends.transformers_backend import TransformersBackend, generate  # noqa: E402
from vtg_core.backends.video_inputs import IGNORE_INDEX, encode, video_metadata  # noqa: E402
from vtg_core.config import VtgConfig  # noqa: E402
from vtg_core.data.video import Frames  # noqa: E402
from vtg_core.errors import ConfigError  # noqa: E402
from vtg_core.train.collate import VideoCollator  # noqa: E402

pytestmark = pytest.mark.torch



MESSAGES = [
    {"role": "system", "content": "You localize events in videos."},
    {
        "role": "user",
        "content": [{"type": "video"}, {"type": "text", "text": "When does the red square appear?"}],
    },
]
ANSWER = "<answer>1.5 to 3.0</answer>"


def make_frames(
    n: int = 4, size: int = 64, fps: float = 2.0, *, start: float = 0.0, native: float = 8.0, seed: int = 0
) -> Frames:
    arr = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    ts = tuple(start + i / fps for i in range(n))
    return Frames(
        array=arr,
        timestamps=ts,
        source_timestamps=ts,
        indices=tuple(round(t * native) for t in ts),
        native_fps=native,
        sampled_fps=fps,
        decoder="synthetic",
        path="",
        duration=n / fps,
    )


def tiny_config(family: str = "qwen3_vl", **training) -> VtgConfig:
    cfg = VtgConfig()
    cfg.model.name_or_path = testing.tiny_model_dir(family)
    cfg.model.gradient_checkpointing = False
    cfg.lora.r, cfg.lora.lora_alpha, cfg.lora.lora_dropout = 4, 8, 0.0
    for key, value in training.items():
        setattr(cfg.training, key, value)
    return cfg


@pytest.fixture(scope="module")
def qwen3():
    return testing.tiny_qwen3_vl()


# -- registration -------------------------------------------------------------------------------


def test_plugin_module_is_light_and_registers_the_backend():
    code = (
        "import sys, vtg_core.backends.plugin as p; specs = p.vtg_register_backends();"
        "print(specs[0].name, specs[0].usable()[0], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["transformers", "True", "False"]
    from vtg_core.backends.plugin import vtg_register_backends

    assert vtg_register_backends()[0].load() is TransformersBackend


def test_family_table():
    assert family_of("qwen3_vl").video_input == "metadata"
    assert family_of("qwen2_5_vl").video_input == "fps"
    assert family_of("internvl").video_input == "frames"
    with pytest.raises(ConfigError, match="llava.*qwen3_vl"):
        family_of("llava")


def test_cpu_fallbacks():
    from vtg_core.backends.loading import resolve_attn_implementation, resolve_dtype

    if not torch.cuda.is_available():
        assert resolve_dtype("bfloat16") is torch.float32
        assert resolve_attn_implementation("flash_attention_2") == "sdpa"
    assert resolve_dtype("auto") == "auto"
    with pytest.raises(ConfigError, match="torch_dtype"):
        resolve_dtype("int4")


# -- video inputs -------------------------------------------------------------------------------


def test_video_metadata_reproduces_timestamps():
    ts = [0.0, 0.5, 1.0, 1.5]
    meta = video_metadata(ts, native_fps=30.0)
    assert meta["fps"] == 30.0
    assert [i / meta["fps"] for i in meta["frames_indices"]] == ts
    # transformers' sampled_fps = len(indices) / total * fps must equal the real spacing (2 fps).
    assert len(ts) / meta["total_num_frames"] * meta["fps"] == pytest.approx(2.0)
    off_grid = video_metadata([0.013, 0.413], native_fps=30.0)
    assert off_grid["fps"] == 1000.0 and off_grid["frames_indices"] == [13, 413]


@pytest.mark.parametrize("family", testing.FAMILIES)
def test_encode_supervises_only_the_answer(family):
    _, processor = testing.tiny_model(family)
    data = encode(processor, MESSAGES, make_frames(), ANSWER)
    ids, labels = data["input_ids"][0], data["labels"][0]
    assert ids.shape == labels.shape == data["attention_mask"][0].shape
    supervised = labels != IGNORE_INDEX
    # The supervised tokens are exactly the answer and the end of turn, at the very end.
    assert processor.tokenizer.decode(ids[supervised]) == ANSWER + "<|im_end|>"
    n = int(supervised.sum())
    assert bool(supervised[-n:].all()) and not bool(supervised[:-n].any())
    assert torch.equal(labels[-n:], ids[-n:])
    # System text, user text and every visual placeholder are masked.
    prompt_text = processor.tokenizer.decode(ids[~supervised])
    assert "You localize events" in prompt_text and "red square" in prompt_text
    pad_id = processor.image_token_id if family == "internvl" else processor.video_token_id
    assert int((ids == pad_id).sum()) > 0 and not bool(supervised[ids == pad_id].any())


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
def test_video_pad_count_equals_merged_visual_tokens(family):
    model, processor = testing.tiny_model(family)
    for n, size in ((4, 64), (7, 96), (1, 64)):
        data = encode(processor, MESSAGES, make_frames(n, size))
        merge = processor.video_processor.merge_size
        n_pad = int((data["input_ids"] == model.config.video_token_id).sum())
        assert n_pad == int(data["video_grid_thw"].prod(-1).sum()) // merge**2
        with torch.no_grad():
            assert model(**data).logits.shape[1] == data["input_ids"].shape[1]


def test_qwen3_prompt_carries_the_real_frame_times():
    _, processor = testing.tiny_qwen3_vl()
    # Frames starting at 1.0 s, 0.2 s apart; Qwen3-VL prints the mean time of each frame pair.
    frames = make_frames(4, fps=5.0, start=1.0, native=10.0)
    text = processor.tokenizer.decode(encode(processor, MESSAGES, frames)["input_ids"][0])
    assert "<1.1 seconds>" in text and "<1.5 seconds>" in text
    assert "<0.0 seconds>" not in text


def test_qwen2_5_temporal_spacing_follows_sampling_rate():
    _, processor = testing.tiny_model("qwen2_5_vl")
    data = encode(processor, MESSAGES, make_frames(4, fps=4.0))
    # Two frames per temporal patch at 4 fps: 0.5 s per grid step.
    assert data["second_per_grid_ts"].tolist() == [0.5]


def test_encode_refuses_a_clip_count_mismatch(qwen3):
    _, processor = qwen3
    with pytest.raises(ValueError, match="1 video part"):
        encode(processor, MESSAGES, [make_frames(), make_frames()])


# -- collation ----------------------------------------------------------------------------------


def test_collator_pads_right_and_left(qwen3):
    _, processor = qwen3
    a = encode(processor, MESSAGES, make_frames(4), ANSWER)
    b = encode(processor, MESSAGES, make_frames(6, 96), "<answer>0.0 to 1.0</answer>")
    la, lb = a["input_ids"].shape[1], b["input_ids"].shape[1]
    right = VideoCollator.for_processor(processor)([a, b])
    length = max(la, lb)
    assert right["input_ids"].shape == right["labels"].shape == (2, length)
    short = 0 if la < lb else 1
    pad = abs(la - lb)
    assert bool((right["labels"][short, length - pad :] == IGNORE_INDEX).all())
    assert bool((right["attention_mask"][short, length - pad :] == 0).all())
    assert bool((right["input_ids"][short, length - pad :] == processor.tokenizer.pad_token_id).all())
    assert torch.equal(
        right["pixel_values_videos"], torch.cat([a["pixel_values_videos"], b["pixel_values_videos"]])
    )
    assert right["video_grid_thw"].shape == (2, 3)
    left = VideoCollator.for_processor(processor, padding_side="left")([a, b])
    assert bool((left["attention_mask"][:, -1] == 1).all())
    assert bool((left["attention_mask"][short, :pad] == 0).all())


# -- LoRA, freezing, learning rates -------------------------------------------------------------


def test_unknown_lora_target_lists_the_real_module_names(qwen3):
    model, _ = qwen3
    with pytest.raises(ConfigError) as err:
        vlora.resolve_target_modules(model, ["q_proj", "query_key_value"])
    msg = str(err.value)
    assert "query_key_value" in msg
    for real in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert real in msg
    with pytest.raises(ConfigError, match="vision"):
        vlora.resolve_target_modules(model, ["qkv"])  # a Qwen3-VL vision-tower layer


def test_lora_goes_into_the_language_model_only():
    model, processor = testing.tiny_qwen3_vl()
    cfg = tiny_config()
    peft_model, _ = TransformersBackend().prepare_for_training(model, processor, cfg)
    lora_names = [n for n, _ in peft_model.named_parameters() if "lora_" in n]
    assert lora_names and not any(".visual." in n for n in lora_names)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    # Defaults (seed 002): vision tower frozen, projector trained (mm_projector_lr 1e-5).
    assert not any(".visual.blocks." in n or ".visual.patch_embed." in n for n in trainable)
    assert any(".visual.merger." in n for n in trainable)
    groups = {g["name"]: g for g in TransformersBackend().param_groups(peft_model, cfg)}
    assert groups["language_model"]["lr"] == cfg.training.learning_rate
    assert groups["projector"]["lr"] == cfg.training.mm_projector_lr
    assert not any(name.startswith("vision_tower") for name in groups)


def test_modules_to_save_and_vision_tower_learning_rates():
    model, processor = testing.tiny_qwen3_vl()
    cfg = tiny_config(vision_tower_lr=2e-5, head_lr=3e-4, mm_projector_lr=0.0)
    cfg.model.freeze_vision_tower = False
    cfg.lora.modules_to_save = ["lm_head"]
    peft_model, _ = TransformersBackend().prepare_for_training(model, processor, cfg)
    groups = TransformersBackend().param_groups(peft_model, cfg)
    by_name = {g["name"]: g["lr"] for g in groups}
    assert by_name["vision_tower"] == 2e-5 and by_name["head"] == 3e-4
    assert "projector" not in by_name and "projector_no_decay" not in by_name
    for g in groups:
        names = {n for n, p in peft_model.named_parameters() if any(p is q for q in g["params"])}
        if g["name"].startswith("head"):
            assert all("lm_head" in n for n in names)
    merger = [p for n, p in peft_model.named_parameters() if ".merger." in n]
    assert merger and not any(p.requires_grad for p in merger)
    # The fully trained vision tower (peft modules_to_save copies) still runs and gets gradients.
    peft_model.train()
    peft_model(**encode(processor, MESSAGES, make_frames(), ANSWER)).loss.backward()
    vision = [p for n, p in peft_model.named_parameters() if ".visual.blocks.0.modules_to_save." in n]
    assert vision and all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in vision if p.dim() > 1)
    cfg.lora.modules_to_save = ["lm_hed"]
    with pytest.raises(ConfigError, match="lm_hed"):
        TransformersBackend().prepare_for_training(*testing.tiny_qwen3_vl(), cfg)


def test_new_tokens_train_only_their_own_rows():
    model, processor = testing.tiny_qwen3_vl()
    cfg = tiny_config(learning_rate=1e-2, mm_projector_lr=0.0)
    cfg.temporal.use_temporal_tokens, cfg.temporal.num_bins = True, 8
    old_vocab = len(processor.tokenizer)
    peft_model, added = TransformersBackend().prepare_for_training(model, processor, cfg)
    assert added == [f"<{i}>" for i in range(8)]
    new_ids = processor.tokenizer.convert_tokens_to_ids(added)
    assert min(new_ids) == old_vocab and processor.tokenizer.tokenize("<3><5>") == ["<3>", "<5>"]
    emb = peft_model.get_input_embeddings()
    all_ids = torch.arange(len(processor.tokenizer))
    before = emb(all_ids).detach().clone()
    opt = torch.optim.AdamW(TransformersBackend().param_groups(peft_model, cfg))
    data = encode(processor, MESSAGES, make_frames(), "<answer><3><5></answer>")
    peft_model.train()
    peft_model(**data).loss.backward()
    opt.step()
    after = emb(all_ids).detach()
    changed = (after - before).abs().sum(-1) > 0
    assert set(torch.nonzero(changed).flatten().tolist()) <= set(new_ids)
    assert bool(changed[new_ids].any())


# -- checkpoints and generation -----------------------------------------------------------------


def _train_a_little(model, processor, cfg, steps: int = 2):
    opt = torch.optim.AdamW(TransformersBackend().param_groups(model, cfg))
    batch = VideoCollator.for_processor(processor)([encode(processor, MESSAGES, make_frames(), ANSWER)])
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()
    model.eval()


def test_checkpoint_is_complete_and_reloads_identically(tmp_path):
    backend = TransformersBackend()
    cfg = tiny_config(learning_rate=1e-2, mm_projector_lr=1e-2)
    cfg.temporal.use_temporal_tokens, cfg.temporal.num_bins = True, 8
    model, processor = backend.load(cfg)
    model, added = backend.prepare_for_training(model, processor, cfg)
    _train_a_little(model, processor, cfg)
    path = backend.save_checkpoint(model, processor, tmp_path / "ckpt", config=cfg, added_tokens=added)
    files = sorted(os.listdir(path))
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
        "vtg_config.yaml",
        "vtg_checkpoint.json",
    ):
        assert name in files, files
    meta = json.loads((tmp_path / "ckpt" / "vtg_checkpoint.json").read_text())
    assert meta["kind"] == "lora" and meta["family"] == "qwen3_vl" and meta["added_tokens"] == added
    adapter = json.loads((tmp_path / "ckpt" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == cfg.model.name_or_path
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp dir left behind

    data = encode(processor, MESSAGES, make_frames(), "<answer><1><4></answer>")
    with torch.no_grad():
        expected = model(**data).logits
    loaded, loaded_proc = backend.load_checkpoint(path)
    assert loaded_proc.tokenizer.convert_tokens_to_ids(added) == processor.tokenizer.convert_tokens_to_ids(
        added
    )
    reloaded = encode(loaded_proc, MESSAGES, make_frames(), "<answer><1><4></answer>")
    assert torch.equal(reloaded["input_ids"], data["input_ids"])
    with torch.no_grad():
        assert torch.equal(loaded(**reloaded).logits, expected)

    # Saving again over it replaces it atomically.
    backend.save_checkpoint(model, processor, path, config=cfg, added_tokens=added)
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]

    # Merged export: a plain transformers model that needs neither peft nor vtg to load.
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = backend.merge_and_export(path, str(tmp_path / "merged"))
    merged = AutoModelForImageTextToText.from_pretrained(out).eval()
    assert AutoProcessor.from_pretrained(out).tokenizer.convert_tokens_to_ids(added[0]) == min(
        processor.tokenizer.convert_tokens_to_ids(added)
    )
    with torch.no_grad():
        torch.testing.assert_close(merged(**reloaded).logits, expected, atol=1e-4, rtol=1e-4)


def test_full_finetune_checkpoint(tmp_path):
    backend = TransformersBackend()
    cfg = tiny_config("internvl", learning_rate=1e-3)
    cfg.lora.enabled = False
    model, processor = backend.load(cfg)
    model, _ = backend.prepare_for_training(model, processor, cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("model.vision_tower.") for n in trainable)
    assert any(n.startswith("model.language_model.") for n in trainable)
    _train_a_little(model, processor, cfg, steps=1)
    path = backend.save_checkpoint(model, processor, tmp_path / "full", config=cfg.to_dict())
    assert "model.safetensors" in os.listdir(path)
    loaded, loaded_proc = backend.load_checkpoint(path)
    data = encode(processor, MESSAGES, make_frames())
    with torch.no_grad():
        assert torch.equal(loaded(**data).logits, model(**data).logits)


def test_generate_left_pads_and_returns_new_text(qwen3):
    model, processor = qwen3
    short = encode(processor, MESSAGES, make_frames(2))
    long = encode(processor, MESSAGES, make_frames(6, 96))
    texts = generate(model, processor, [short, long], max_new_tokens=4)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    alone = generate(model, processor, [long], max_new_tokens=4)
    assert alone[0] == texts[1]
    right_padded = VideoCollator.for_processor(processor)([short, long])
    with pytest.raises(ValueError, match="left-padded"):
        generate(model, processor, right_padded)


def test_gradient_checkpointing_with_frozen_embeddings():
    model, processor = testing.tiny_qwen3_vl()
    cfg = tiny_config()
    cfg.model.gradient_checkpointing = True
    peft_model, _ = TransformersBackend().prepare_for_training(model, processor, cfg)
    base = peft_model.get_base_model()
    # transformers before 5.2x names it gradient checkpointing (unsloth's caps hold it at 5.17).
    assert getattr(base, "is_activation_checkpointing" if hasattr(base, "activation_checkpointing_enable")
                   else "is_gradient_checkpointing")
    peft_model.train()
    peft_model(**encode(processor, MESSAGES, make_frames(), ANSWER)).loss.backward()
    # lora_B starts at zero, so on a first step only lora_B receives a non-zero gradient.
    grads = [p.grad for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and bool(g.abs().sum() > 0) for g in grads)
