"""Estimate how many visual tokens a clip costs a Qwen-VL style model, from metadata alone.

Samplers (duration-based batching, token budgets) need this before any frame is decoded.
The arithmetic follows the Qwen2.5-VL / Qwen3-VL processors: each frame is resized so that height
and width are multiples of ``patch_size * merge_size`` (rounded to the nearest multiple, at least
one), optionally bounded by the processor's pixel limits; frames are grouped by
``temporal_patch_size`` (the last group padded); each group yields
``(h / patch / merge) * (w / patch / merge)`` tokens after the spatial merge.

Defaults are Qwen3-VL's (patch 16, merge 2, temporal patch 2); Qwen2.5-VL uses ``patch_size=14``.
"""

from __future__ import annotations

import math

from .sampling import output_size, planned_num_frames


def qwen_frame_size(height: int, width: int, *, factor: int, min_pixels: int | None = None,
                    max_pixels: int | None = None) -> tuple[int, int]:
    """(h, w) a Qwen processor resizes a frame to: multiples of ``factor``, within the bounds."""
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if height < factor or width < factor:
        # The processors first scale tiny frames up so the short side reaches one factor.
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if max_pixels is not None and h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif min_pixels is not None and h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def estimate_visual_tokens(num_frames: int, height: int, width: int, *, patch_size: int = 16,
                           temporal_patch_size: int = 2, merge_size: int = 2,
                           processor_min_pixels: int | None = None,
                           processor_max_pixels: int | None = None) -> int:
    """Visual tokens for ``num_frames`` frames of ``height`` x ``width`` pixels.

    ``processor_min_pixels`` / ``processor_max_pixels`` are the processor's per-frame bounds
    (Qwen2.5-VL's ``min_pixels`` / ``max_pixels``); leave them None when frames are already sized.

    >>> estimate_visual_tokens(32, 384, 384)   # 16 groups x 12 x 12
    2304
    """
    if num_frames < 1:
        return 0
    factor = patch_size * merge_size
    h, w = qwen_frame_size(height, width, factor=factor, min_pixels=processor_min_pixels,
                           max_pixels=processor_max_pixels)
    groups = math.ceil(num_frames / temporal_patch_size)
    return groups * (h // factor) * (w // factor)


def estimate_sample_tokens(duration: float, *, max_frames: int | None = 32, fps: float = 0.0,
                           height: int, width: int, native_fps: float | None = None,
                           resolution: tuple[int, int] | None = None,
                           max_pixels: int | None = None, start: float | None = None,
                           end: float | None = None, patch_size: int = 16,
                           temporal_patch_size: int = 2, merge_size: int = 2,
                           processor_min_pixels: int | None = None,
                           processor_max_pixels: int | None = None) -> int:
    """Visual tokens of one sample, planned from metadata (no decoding).

    ``duration``, ``height``, ``width`` and ``native_fps`` describe the clip (from the annotation
    or :func:`probe`); ``max_frames``, ``fps``, ``resolution``, ``max_pixels``, ``start``, ``end``
    are the :func:`load_frames` arguments. Without ``native_fps`` and with ``fps=0`` (native
    rate) the frame count is taken as ``max_frames``: an upper bound.
    """
    s = 0.0 if start is None else max(0.0, float(start))
    e = float(duration) if end is None else min(float(end), float(duration))
    window = max(0.0, e - s)
    available = None
    if native_fps:
        available = max(1, math.floor(window * native_fps + 0.5))
    n = planned_num_frames(window, max_frames=max_frames, fps=fps, available=available)
    h, w = output_size(height, width, resolution=resolution, max_pixels=max_pixels)
    return estimate_visual_tokens(n, h, w, patch_size=patch_size,
                                  temporal_patch_size=temporal_patch_size, merge_size=merge_size,
                                  processor_min_pixels=processor_min_pixels,
                                  processor_max_pixels=processor_max_pixels)
