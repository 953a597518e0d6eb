"""The tiny offline models of ``vtg_core.testing``: build, determinism, save / reload, video tokens."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vtg_core import testing  # noqa: E402

pytestmark = pytest.mark.torch



MESSAGES = [
    {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "When does a red square move?"}]}
]


def _frames(n: int = 4, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_importing_testing_does_not_import_torch():
    code = "import sys, vtg_core.testing; print(any(m in sys.modules for m in ('torch', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("family", testing.FAMILIES)
def test_tiny_model_is_small_and_deterministic(family):
    model, processor = testing.tiny_model(family, seed=0)
    again, _ = testing.tiny_model(family, seed=0)
    other, _ = testing.tiny_model(family, seed=1)
    n_params = sum(p.numel() for p in model.parameters())
    assert 50_000 < n_params < 1_000_000
    same = [
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    ]
    assert all(same)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True)
    )
    # Every id the model config names exists in the tokenizer.
    assert model.config.get_text_config().vocab_size >= len(processor.tokenizer)


def test_tokenizer_is_stable_and_lossless():
    tok = testing.tiny_tokenizer()
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    text = "From 12.5 to 15.0 seconds: a red square moves left. Ünïcode ✓"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.get_vocab() == testing.tiny_tokenizer().get_vocab()


def test_chat_template_renders_video_like_qwen():
    _, processor = testing.tiny_qwen3_vl()
    text = processor.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>When does a red square move?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_save_and_reload_with_auto_classes(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor = testing.tiny_qwen3_vl(tmp_path / "m")
    assert model.name_or_path == str(tmp_path / "m")
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "m")
    loaded_proc = AutoProcessor.from_pretrained(tmp_path / "m")
    assert type(loaded) is type(model)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert loaded_proc.chat_template == processor.chat_template
    assert loaded_proc.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert loaded_proc.video_processor.do_sample_frames is False


def test_tiny_model_dir_is_cached_per_process():
    assert testing.tiny_model_dir() == testing.tiny_model_dir()


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="qwen3_vl"):
        testing.tiny_model("llava")


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen2_5_vl"])
def test_video_pad_count_matches_grid(family):
    """The classic silent bug: placeholders in the text must equal the merged visual tokens."""
    model, processor = testing.tiny_model(family)
    text = processor.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    frames = _frames(6, 96)
    out = processor(
        text=[text],
        videos=[frames],
        do_sample_frames=False,
        return_tensors="pt",
        video_metadata=[{"fps": 2.0, "frames_indices": list(range(6)), "total_num_frames": 6}],
    )
    merge = processor.video_processor.merge_size
    n_pad = int((out["input_ids"] == model.config.video_token_id).sum())
    assert n_pad == int(out["video_grid_thw"].prod(-1).sum()) // merge**2 > 0
    with torch.no_grad():
        logits = model(**out).logits
    assert logits.shape[:2] == out["input_ids"].shape


def test_internvl_context_tokens_per_frame():
    model, processor = testing.tiny_model("internvl")
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "When?"}]}]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    out = processor(text=[text], videos=[_frames(3, 48)], do_sample_frames=False, return_tensors="pt")
    n_ctx = int((out["input_ids"] == model.config.image_token_id).sum())
    assert out["pixel_values"].shape[0] == 3
    assert n_ctx == 3 * processor.image_seq_length
    with torch.no_grad():
        assert model(**out).logits.shape[:2] == out["input_ids"].shape


def test_internvl_images_render_as_context_tokens_the_processor_expands():
    # Multi-image conversations (robot_vqa's --use_multi_image): the template's image placeholder must
    # be the tokenizer's context_image_token, or the processor leaves the images without tokens.
    from vtg_core.backends.video_inputs import encode

    model, processor = testing.tiny_model("internvl")
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "1 or 2?"}]}]
    frames = [_frames(1, 32)[0], _frames(1, 32)[0]]
    out = encode(processor, msgs, frames, "1", family="internvl")
    assert out["pixel_values"].shape[0] == 2
    assert int((out["input_ids"] == model.config.image_token_id).sum()) == 2 * processor.image_seq_length
    with torch.no_grad():
        assert torch.isfinite(model(**out).loss)
