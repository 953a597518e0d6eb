"""Turn a conversation + decoded frames (+ the answer) into model inputs, per model family.

vtg samples frames itself (``vtg_core.data.video.load_frames``), so the processors must not sample
again (``do_sample_frames=False``) but still need to know *when* each frame was taken:

- Qwen3-VL writes ``<t seconds>`` before every temporal patch from ``video_metadata``
  (``frames_indices / fps``, averaged over the two frames of a patch);
- Qwen2.5-VL spaces its M-RoPE temporal positions by ``second_per_grid_ts``, which transformers
  5.x derives from ``video_metadata`` too (``temporal_patch_size / sampled_fps``);
- InternVL only takes the frames ("Frame1: <img>...</img>").

:func:`video_metadata` builds metadata whose frame indices reproduce the real timestamps, and
:func:`encode` is the one place that calls the processor. Labels mask everything but the answer:
the prompt is encoded exactly as at inference time (chat template with the generation prompt) and
the answer tokens are appended, so what SFT trains is what generation continues.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .families import FamilyLayout, family_of

log = logging.getLogger(__name__)

IGNORE_INDEX = -100

# Timestamps on a millisecond grid when frames do not sit on the native frame grid (or the native
# rate is unknown); Qwen3-VL prints them with one decimal, so this is exact for display.
_FALLBACK_TIME_BASE = 1000.0


def _frames_fields(frames: Any) -> tuple[np.ndarray, list[float] | None, float | None, float | None]:
    """(array THWC uint8, timestamps, sampled_fps, native_fps) from a ``Frames`` or a bare array."""
    if isinstance(frames, np.ndarray):
        return frames, None, None, None
    array = frames.array
    timestamps = getattr(frames, "timestamps", None)
    return (
        np.asarray(array),
        None if timestamps is None else [float(t) for t in timestamps],
        getattr(frames, "sampled_fps", None),
        getattr(frames, "native_fps", None),
    )


def video_metadata(
    timestamps: Sequence[float], *, native_fps: float | None = None, sampled_fps: float | None = None
) -> dict[str, Any]:
    """``video_metadata`` for the processor such that ``frames_indices / fps`` are ``timestamps``.

    Uses the native frame rate when every timestamp falls on a native frame (what a decoder
    returns), else a millisecond grid. ``total_num_frames`` is chosen so transformers'
    ``sampled_fps`` equals the real spacing of the frames, which is what Qwen2.5-VL's
    ``second_per_grid_ts`` needs.
    """
    ts = [float(t) for t in timestamps]
    if not ts:
        raise ValueError("video_metadata needs at least one timestamp")
    base = _FALLBACK_TIME_BASE
    if native_fps and native_fps > 0 and all(abs(t * native_fps - round(t * native_fps)) < 1e-3 for t in ts):
        base = float(native_fps)
    indices = [int(round(t * base)) for t in ts]
    # Real spacing between consecutive frames; a single frame has none, so take what we were told.
    if len(ts) > 1 and ts[-1] > ts[0]:
        rate = (len(ts) - 1) / (ts[-1] - ts[0])
    else:
        rate = sampled_fps if sampled_fps and sampled_fps > 0 else 1.0
    total = max(len(ts), int(round(len(ts) * base / rate)))
    return {"fps": base, "frames_indices": indices, "total_num_frames": total}


_turn_end_cache: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def assistant_turn_end(processor: Any) -> str:
    """The text the chat template puts after an assistant answer (``"<|im_end|>"`` for Qwen).

    Read from the template itself rather than assumed, so a checkpoint with another template still
    learns to stop the way its template ends a turn. Falls back to the tokenizer's EOS token.
    """
    try:
        return _turn_end_cache[processor]
    except (KeyError, TypeError):
        pass
    sentinel = "\u2063VTG_ANSWER\u2063"
    user = [{"role": "user", "content": [{"type": "text", "text": "q"}]}]
    result = None
    try:
        prompt = processor.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
        full = processor.apply_chat_template(
            user + [{"role": "assistant", "content": [{"type": "text", "text": sentinel}]}], tokenize=False
        )
        if full.startswith(prompt) and sentinel in full:
            result = full.split(sentinel, 1)[1].rstrip()
    except Exception as exc:  # a template that cannot render this is handled by the fallback
        log.debug("could not read the turn end from the chat template: %s", exc)
    if not result:
        result = processor.tokenizer.eos_token or ""
    with contextlib.suppress(TypeError):  # an object without weakref support is just not cached
        _turn_end_cache[processor] = result
    return result


def _visual_parts(messages: Sequence[dict[str, Any]]) -> list[str]:
    """``"video"`` / ``"image"`` for each visual part of ``messages``, in order of appearance."""
    kinds = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            kinds.extend(part["type"] for part in content
                         if isinstance(part, dict) and part.get("type") in ("video", "image"))
    return kinds


def _count_video_parts(messages: Sequence[dict[str, Any]]) -> int:
    return _visual_parts(messages).count("video")


def _image_array(item: Any) -> np.ndarray:
    """One image part's pixels: an HWC array, or a ``Frames`` / THWC array holding a single frame."""
    array = np.asarray(item.array if hasattr(item, "array") else item)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"an image part needs one HWC RGB frame, got shape {array.shape}")
    return array if array.flags.writeable else array.copy()


def encode(
    processor: Any,
    messages: Sequence[dict[str, Any]],
    frames: Any,
    answer: str | None = None,
    *,
    family: FamilyLayout | str | None = None,
    videos_kwargs: dict[str, Any] | None = None,
) -> dict[str, torch.Tensor]:
    """Model inputs for one conversation: a dict of tensors with a batch dimension of 1.

    ``frames`` is one ``Frames`` (or a THWC uint8 array) per ``{"type": "video"}`` part of
    ``messages``, or a single one; a conversation with ``{"type": "image"}`` parts (multi-image
    mode) takes one HWC frame per image part, the list following the parts' order. With ``answer`` the answer and the template's end-of-turn are
    appended and ``labels`` supervise exactly those tokens (the prompt, system text and video
    placeholders are ``-100``). Keys: ``input_ids``, ``attention_mask``, ``mm_token_type_ids``
    (Qwen), ``pixel_values_videos`` + ``video_grid_thw`` (+ ``second_per_grid_ts`` for
    Qwen2.5-VL), ``pixel_values`` + ``image_grid_thw`` for image parts, or ``pixel_values``
    (InternVL), and ``labels`` when an answer is given.
    """
    layout = family if isinstance(family, FamilyLayout) else family_of(family or _model_type(processor))
    frame_list = list(frames) if isinstance(frames, (list, tuple)) else [frames]
    kinds = _visual_parts(messages)
    n_parts = kinds.count("video")
    if len(kinds) != len(frame_list):
        what = "video part(s)" if n_parts == len(kinds) else f"visual part(s) ({n_parts} video, {len(kinds) - n_parts} image)"
        raise ValueError(
            f"the conversation has {len(kinds)} {what} but {len(frame_list)} clip(s) of frames were "
            "given; pass one Frames per {'type': 'video'} part and one frame per {'type': 'image'} part, in order"
        )
    # Several images (multi-image mode) go to the processor as images, in the order of their parts.
    images = [_image_array(f) for f, kind in zip(frame_list, kinds, strict=True) if kind == "image"] or None
    frame_list = [f for f, kind in zip(frame_list, kinds, strict=True) if kind == "video"]
    prompt = processor.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)

    kwargs: dict[str, Any] = {"return_tensors": "pt"}
    if images is not None:
        kwargs["images"] = images
    videos = None
    if frame_list:
        videos, metadata = [], []
        tps = int(getattr(processor.video_processor, "temporal_patch_size", 1) or 1)
        for clip in frame_list:
            array, timestamps, sampled_fps, native_fps = _frames_fields(clip)
            if array.ndim != 4 or array.shape[-1] != 3:
                raise ValueError(f"frames must be a THWC RGB array, got shape {array.shape}")
            if timestamps is None:
                rate = sampled_fps or 1.0
                timestamps = [i / rate for i in range(len(array))]
            if len(array) < tps and layout.video_input != "frames":
                # Qwen's video processors refuse clips shorter than one temporal patch; repeating the
                # last frame is what their own padding does for odd lengths.
                pad = tps - len(array)
                array = np.concatenate([array, np.repeat(array[-1:], pad, axis=0)])
                timestamps = timestamps + [timestamps[-1]] * pad
            # Decoded frames may be read-only (cached); torch.from_numpy in the processor warns on those.
            videos.append(array if array.flags.writeable else array.copy())
            metadata.append(video_metadata(timestamps, native_fps=native_fps, sampled_fps=sampled_fps))
        kwargs["do_sample_frames"] = False
        if layout.video_input in ("metadata", "fps"):
            kwargs["video_metadata"] = metadata
        kwargs.update(videos_kwargs or {})

    out = processor(text=[prompt], videos=videos, **kwargs)
    data: dict[str, torch.Tensor] = {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
    if "second_per_grid_ts" in out and not isinstance(out["second_per_grid_ts"], torch.Tensor):
        data["second_per_grid_ts"] = torch.tensor(out["second_per_grid_ts"], dtype=torch.float32)
    _check_placeholders(processor, layout, data, len(frame_list))
    if images is not None and layout.video_input != "frames":
        _check_image_placeholders(processor, data)

    if answer is not None:
        tokenizer = processor.tokenizer
        answer_ids = tokenizer(answer + assistant_turn_end(processor), add_special_tokens=False)["input_ids"]
        ans = torch.tensor([answer_ids], dtype=data["input_ids"].dtype)
        n_prompt = data["input_ids"].shape[1]
        data["input_ids"] = torch.cat([data["input_ids"], ans], dim=1)
        data["attention_mask"] = torch.cat(
            [data["attention_mask"], torch.ones_like(ans, dtype=data["attention_mask"].dtype)], dim=1
        )
        if "mm_token_type_ids" in data:
            data["mm_token_type_ids"] = torch.cat(
                [data["mm_token_type_ids"], torch.zeros_like(ans, dtype=data["mm_token_type_ids"].dtype)],
                dim=1,
            )
        labels = torch.full_like(data["input_ids"], IGNORE_INDEX)
        labels[:, n_prompt:] = ans
        data["labels"] = labels
    return data


def _model_type(processor: Any) -> str:
    # Processors do not record their model type; the class name does (Qwen3VLProcessor, ...).
    name = type(processor).__name__
    for prefix, model_type in (
        ("Qwen3VL", "qwen3_vl"),
        ("Qwen2_5_VL", "qwen2_5_vl"),
        ("Qwen2VL", "qwen2_vl"),
        ("InternVL", "internvl"),
    ):
        if name.startswith(prefix):
            return model_type
    return name


def _check_image_placeholders(processor: Any, data: dict[str, torch.Tensor]) -> None:
    grid = data.get("image_grid_thw")
    merge = int(processor.image_processor.merge_size)
    expected = 0 if grid is None else int(grid.prod(-1).sum()) // (merge * merge)
    found = int((data["input_ids"] == processor.image_token_id).sum())
    if found != expected:
        raise RuntimeError(
            f"{type(processor).__name__}: the prompt has {found} image placeholder tokens but the images "
            f"give {expected} visual tokens; the chat template or tokenizer does not match the processor"
        )


def _check_placeholders(
    processor: Any, layout: FamilyLayout, data: dict[str, torch.Tensor], n_videos: int
) -> None:
    """Fail loudly when the text's video placeholders disagree with the visual tokens.

    A mismatch otherwise surfaces deep in the model as a shape error, or not at all when a
    tokenizer merges placeholder text into other tokens.
    """
    ids = data["input_ids"]
    if layout.video_input == "frames":
        if n_videos == 0:
            return
        expected = int(data["pixel_values"].shape[0]) * int(processor.image_seq_length)
        found = int((ids == processor.image_token_id).sum())
    else:
        grid = data.get("video_grid_thw")
        if grid is None:
            return
        merge = int(processor.video_processor.merge_size)
        expected = int(grid.prod(-1).sum()) // (merge * merge)
        found = int((ids == processor.video_token_id).sum())
    if found != expected:
        raise RuntimeError(
            f"{type(processor).__name__}: the prompt has {found} video placeholder tokens but the frames "
            f"give {expected} visual tokens; the chat template or tokenizer does not match the processor"
        )
