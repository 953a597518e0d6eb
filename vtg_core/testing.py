"""Helpers for tests and plugin authors: a tiny offline model, and (soon) a fresh plugin manager.

``tiny_model()`` builds a vision-language model of a few hundred thousand parameters from a
config, with a processor whose tokenizer is trained on the spot with the ``tokenizers`` library.
Nothing is downloaded. The model is a real transformers class (Qwen3-VL by default, Qwen2.5-VL
and InternVL3 too), so the code paths that serve multi-billion-parameter checkpoints (processor
video expansion, M-RoPE, LoRA, saving, generation) run unchanged on it.

Importing this module imports no torch: the heavy imports sit inside the functions.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import Any

__all__ = [
    "FAMILIES",
    "fresh_plugin_manager",
    "fresh_registry",
    "QWEN_CHAT_TEMPLATE",
    "save_tiny_model",
    "tiny_model",
    "tiny_model_dir",
    "tiny_qwen3_vl",
    "tiny_tokenizer",
]

FAMILIES = ("qwen3_vl", "qwen2_5_vl", "internvl")

# Qwen's special tokens, in Qwen's order, so ids are stable across builds. The vision ones are the
# placeholders the processors expand; the rest keep the chat template and generation working.
_QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# InternVL wraps image/video patches in these; they are harmless extra tokens for the Qwen families.
_INTERNVL_SPECIAL_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>", "<video>")
_INTERNVL_NAMED_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
# Plain added (non-special) tokens Qwen3 ships; kept so decode(skip_special_tokens=True) keeps them.
_QWEN_ADDED_TOKENS = ("<think>", "</think>")

# Words the prompts, answers and synthetic queries use; the BPE is trained on them so sequences
# stay short (fast tests) while any byte string still encodes (byte-level alphabet, no <unk>).
_CORPUS_WORDS = """
system user assistant You are a helpful assistant that localizes events in videos.
Given the video and the query, find the start and end time of the segment in seconds.
When does the following happen in the video? Answer with the start and end time.
Answer format: <start> to <end> seconds. The event happens from 1.5 to 3.0 seconds.
query: a red square moves left to right. a blue circle appears. a green triangle disappears.
the white ball bounces. the black box slides up. a yellow star flashes. an orange bar grows.
the purple disk shrinks. the camera pans. a person opens the door. the dog runs across.
red green blue yellow white black orange purple gray pink cyan magenta
square circle triangle rectangle star disk ball box bar shape object frame background
moves appears disappears flashes bounces slides grows shrinks rotates changes color fades
left right up down top bottom center middle corner across into out of on off in at to from
the a an is are was were and or not no yes none cannot found there which what when where
start end begin finish time seconds second segment event video clip query answer option
0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 25 30 40 50 60 90 100
0.0 0.5 1.0 1.5 2.0 2.5 3.0 3.5 4.0 4.5 5.0 7.5 10.0 12.5 15.0 20.0 30.0
A B C D E ( ) [ ] , . : ; - ? ! " ' / < > = % + *
The video is 8.0 seconds long. When does the following happen: "when does the red square appear?"
Find the segment of this 6.5-second video that matches the description: the cyan diamond appears.
Query: when does the magenta circle appear? Video length: 10.0 seconds.
Locate the segment of the video the query describes. In which part of the video does this happen?
The video lasts 12.0 seconds. Give the start and end time in seconds, between 0 and 12.0,
as <answer>start to end</answer>. Give the start and end as fractions of the video length,
between 0 and 1. The video is divided into 100 evenly spaced time points <0> to <99>.
Answer with the start and end points as <answer><start><end></answer>. <answer>2.5 to 6.0</answer>
First reason step by step inside <think></think>, then give the answer.
square circle triangle diamond red green blue yellow magenta cyan white
progress task robot step completed percent preference better worse first second dashcam car
road pedestrian vehicle traffic light stop turn lane brake accident collision
"""

# Renders a conversation the way Qwen's templates do: video parts become
# <|vision_start|><|video_pad|><|vision_end|> (the processor expands <|video_pad|>), images
# likewise with <|image_pad|>. ``add_generation_prompt`` opens the assistant turn.
QWEN_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}"
    "{{- message['content'] }}"
    "{%- else %}"
    "{%- for part in message['content'] %}"
    "{%- if part['type'] == 'video' or 'video' in part %}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'image' or 'image' in part %}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' %}"
    "{{- part['text'] }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

# InternVL's template renders a video as the <video> placeholder the processor expands per frame, and
# an image as <IMG_CONTEXT> (the tokenizer's context_image_token, which the processor expands), as the
# released InternVL3 "-hf" templates do.
INTERNVL_CHAT_TEMPLATE = QWEN_CHAT_TEMPLATE.replace(
    "<|vision_start|><|video_pad|><|vision_end|>", "<video>\\n"
).replace("<|vision_start|><|image_pad|><|vision_end|>", "<IMG_CONTEXT>\\n")

_VOCAB_SIZE = 1024  # trained BPE size incl. the 256 byte symbols; tiny embeddings, short sequences

_cache_lock = threading.Lock()
_saved_dirs: dict[tuple[str, int], str] = {}


def tiny_tokenizer(*, family: str = "qwen3_vl") -> Any:
    """A byte-level BPE tokenizer trained in-process, wrapped as a transformers fast tokenizer.

    Deterministic: the corpus and trainer settings are fixed and the special tokens come first, so
    ids never change between builds (``<|endoftext|>`` = 0, ``<|im_start|>`` = 1, ...).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(_QWEN_SPECIAL_TOKENS) + list(_INTERNVL_SPECIAL_TOKENS)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        min_frequency=1,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeating the corpus makes every word frequent enough to be merged whole.
    tok.train_from_iterator([line for line in _CORPUS_WORDS.splitlines() if line.strip()] * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=32768,
        padding_side="right",
        # InternVL's processor reads its placeholders as named tokenizer attributes
        # (``tokenizer.context_image_token_id`` ...), which named extra special tokens provide.
        extra_special_tokens=_INTERNVL_NAMED_TOKENS if family == "internvl" else None,
    )
    fast.add_tokens(list(_QWEN_ADDED_TOKENS), special_tokens=False)
    return fast


def _token_ids(tokenizer: Any) -> dict[str, int]:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _QWEN_SPECIAL_TOKENS + _INTERNVL_SPECIAL_TOKENS}
    assert all(isinstance(i, int) and i >= 0 for i in ids.values()), ids
    return ids


def _padded_vocab(tokenizer: Any) -> int:
    # Round up like real checkpoints do (their vocab is larger than the tokenizer's), which also
    # leaves rows free so tests can add temporal tokens without a resize surprise.
    return (len(tokenizer) + 63) // 64 * 64


def _build_qwen3_vl(seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer = tiny_tokenizer()
    ids = _token_ids(tokenizer)
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": _padded_vocab(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            # M-RoPE splits head_dim/2 = 8 rotary frequencies between time, height and width.
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
            "pad_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 64,
            "num_position_embeddings": 64,  # 8x8 learned grid, interpolated to the input size
            # Deepstack taps vision layers and adds them to the first LLM layers; with one vision
            # layer the only valid tap is layer 0 (and the LLM needs at least as many layers).
            "deepstack_visual_indexes": [0],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    _set_generation_config(model, tokenizer)

    # Small pixel budgets: a 4-frame 64x64 clip becomes 2x4x4 patches -> 8 video tokens.
    image_processor = Qwen2VLImageProcessor(
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 32 * 32, "longest_edge": 128 * 128},
    )
    video_processor = Qwen3VLVideoProcessor(
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 32 * 32 * 2, "longest_edge": 128 * 128 * 8},
        do_sample_frames=False,
        cap_pixels_per_frame=False,
        min_frames=2,
        fps=2,
    )
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    return model, processor


def _build_qwen2_5_vl(seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = tiny_tokenizer()
    ids = _token_ids(tokenizer)
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": _padded_vocab(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2]},
            "pad_token_id": ids["<|endoftext|>"],
            # The class defaults are the real vocabulary's ids, out of range here.
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 64,
            "window_size": 56,
            "fullatt_block_indexes": [0],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    _set_generation_config(model, tokenizer)
    image_processor = Qwen2VLImageProcessor(
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 28 * 28, "longest_edge": 112 * 112},
    )
    video_processor = Qwen2VLVideoProcessor(
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 28 * 28 * 2, "longest_edge": 112 * 112 * 8},
        do_sample_frames=False,
        cap_pixels_per_frame=False,
        min_frames=2,
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    return model, processor


def _build_internvl(seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
    )

    tokenizer = tiny_tokenizer(family="internvl")
    ids = _token_ids(tokenizer)
    image_size = 32
    config = InternVLConfig(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": [image_size, image_size],
            "patch_size": [8, 8],
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": _padded_vocab(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "pad_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "bos_token_id": None,
            "tie_word_embeddings": False,
        },
        image_token_id=ids["<IMG_CONTEXT>"],
        downsample_ratio=0.5,
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config).eval()
    _set_generation_config(model, tokenizer)
    # (32 / 8)^2 patches * 0.5^2 pixel-shuffle = 4 context tokens per frame.
    image_seq_length = int((image_size // 8) ** 2 * 0.5**2)
    image_processor = GotOcr2ImageProcessor(
        size={"height": image_size, "width": image_size},
        crop_to_patches=False,
    )
    video_processor = InternVLVideoProcessor(
        size={"height": image_size, "width": image_size},
        do_sample_frames=False,
    )
    processor = InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        image_seq_length=image_seq_length,
        chat_template=INTERNVL_CHAT_TEMPLATE,
    )
    return model, processor


_BUILDERS = {"qwen3_vl": _build_qwen3_vl, "qwen2_5_vl": _build_qwen2_5_vl, "internvl": _build_internvl}


def _set_generation_config(model: Any, tokenizer: Any) -> None:
    # Stop on end-of-turn as Qwen's shipped generation_config does; greedy by default so tests
    # that compare generations are deterministic.
    gc = model.generation_config
    gc.eos_token_id = [
        tokenizer.convert_tokens_to_ids("<|im_end|>"),
        tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    ]
    gc.pad_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    gc.bos_token_id = None
    gc.do_sample = False


def tiny_model(
    family: str = "qwen3_vl", *, seed: int = 0, tmp_dir: str | os.PathLike[str] | None = None
) -> tuple[Any, Any]:
    """Build ``(model, processor)`` for ``family`` ("qwen3_vl", "qwen2_5_vl" or "internvl").

    The model is in eval mode, float32, on the CPU; the same ``seed`` gives the same weights.
    With ``tmp_dir`` the pair is also saved there (``save_pretrained``) and the returned model's
    ``name_or_path`` points at it, as if loaded from a local checkpoint.
    """
    if family not in _BUILDERS:
        raise ValueError(f"unknown tiny model family {family!r}; choose one of {', '.join(FAMILIES)}")
    model, processor = _BUILDERS[family](seed)
    if tmp_dir is not None:
        path = os.fspath(tmp_dir)
        model.save_pretrained(path)
        processor.save_pretrained(path)
        model.name_or_path = path
        model.config._name_or_path = path
    return model, processor


def tiny_qwen3_vl(tmp_dir: str | os.PathLike[str] | None = None, *, seed: int = 0) -> tuple[Any, Any]:
    """Tiny Qwen3-VL ``(model, processor)``; see :func:`tiny_model`."""
    return tiny_model("qwen3_vl", seed=seed, tmp_dir=tmp_dir)


def save_tiny_model(path: str | os.PathLike[str], *, family: str = "qwen3_vl", seed: int = 0) -> str:
    """Save a tiny model + processor to ``path`` (loadable by ``AutoModelForImageTextToText`` /
    ``AutoProcessor.from_pretrained``) and return the path as a string."""
    path = os.fspath(path)
    tiny_model(family, seed=seed, tmp_dir=path)
    return path


def tiny_model_dir(family: str = "qwen3_vl", *, seed: int = 0) -> str:
    """A directory holding the saved tiny model, built once per process and reused.

    Treat it as read-only: it is shared by every caller in the process. It lives in a temporary
    directory removed at interpreter exit.
    """
    key = (family, seed)
    with _cache_lock:
        path = _saved_dirs.get(key)
        if path is None or not os.path.isdir(path):
            holder = tempfile.TemporaryDirectory(prefix=f"vtg-tiny-{family}-")
            _tmp_holders.append(holder)  # keep alive until exit, then cleaned up
            path = save_tiny_model(os.path.join(holder.name, "model"), family=family, seed=seed)
            _saved_dirs[key] = path
        return path


_tmp_holders: list[tempfile.TemporaryDirectory] = []


# ---------------------------------------------------------------------------------------------
# Plugins: a registry with only the built-ins and the plugins a test names.
# ---------------------------------------------------------------------------------------------


def fresh_registry(
    *plugins: tuple[str, Any], entry_points: bool = False, install: bool = True, strict: bool = True
) -> Any:
    """A :class:`vtg_core.plugins.Registry` of the built-ins plus ``plugins``, as ``(name, module)`` pairs.

    Installed entry points are left out unless ``entry_points=True``, so a test sees the same
    plugins on every machine. ``install=True`` makes it the process-wide registry (what
    ``vtg train`` and the reward lookups use) until the next call or
    ``vtg_core.plugins.set_registry(None)``. ``strict`` (default on in tests) turns any plugin
    error into an exception instead of a warning.
    """
    from .plugins import build_registry, set_registry

    registry = build_registry(entry_points=entry_points, extra=plugins, strict=strict, environ={})
    if install:
        set_registry(registry)
    return registry


def fresh_plugin_manager(*plugins: tuple[str, Any], entry_points: bool = False) -> Any:
    """The pluggy manager of :func:`fresh_registry` (for calling hooks directly)."""
    return fresh_registry(*plugins, entry_points=entry_points).pm
