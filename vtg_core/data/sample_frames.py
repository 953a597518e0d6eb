"""Frames for a sample, as the config's ``video:`` section asks: one place for SFT, GRPO and eval.

Training, GRPO rollouts and evaluation must feed a sample's clip to the model identically (same
frames, same size, same timestamps), or the numbers they report disagree. They all call
:func:`frames_for_sample`.
"""

from __future__ import annotations

import zlib
from typing import Any

from .sample import Sample


def _resolution(video_cfg: Any) -> tuple[int, int] | None:
    res = getattr(video_cfg, "resolution", None)
    if res is None or getattr(video_cfg, "max_pixels", None):
        return None  # a pixel budget keeps the aspect ratio; a fixed size does not
    return int(res.height), int(res.width)


def make_cache(video_cfg: Any) -> Any:
    """The decoded-frame cache the config asks for, or None."""
    cache_cfg = getattr(video_cfg, "cache", None)
    if cache_cfg is None or not cache_cfg.enabled:
        return None
    from .video import FrameCache

    return FrameCache(max_bytes=cache_cfg.max_bytes)


def frames_for_sample(sample: Sample, video_cfg: Any, *, cache: Any = None, seed: int | None = None,
                      task: Any = None) -> Any:
    """Decode ``sample``'s clip with the sampling settings of ``video_cfg`` (a ``VideoConfig``).

    ``seed`` only matters for the ``random`` strategy; it is mixed with the sample id so every
    sample draws its own frames, reproducibly.

    A task that takes its frames its own way (around support timestamps, from ``.npz`` arrays,
    several clips per sample) defines ``load_frames(sample, video_cfg, *, cache, seed)``; when
    ``task`` has one it is used instead, so SFT, GRPO and evaluation still share one path.
    """
    from .video import load_frames

    task_loader = getattr(task, "load_frames", None) if task is not None else None
    if callable(task_loader):
        return task_loader(sample, video_cfg, cache=cache, seed=seed)

    if sample.video is None:
        from ..errors import VideoError

        raise VideoError(f"sample {sample.id} ({sample.source}) has no video", sample_id=sample.id, reason="missing")
    strategy = getattr(video_cfg, "sampling_strategy", "uniform")
    sample_seed = None
    if strategy == "random" and seed is not None:
        sample_seed = (seed * 1_000_003 + zlib.crc32(sample.id.encode("utf-8"))) & 0x7FFFFFFF
    frames = load_frames(
        sample.video,
        strategy=strategy,
        max_frames=video_cfg.max_frames,
        fps=float(video_cfg.fps or 0.0),
        resolution=_resolution(video_cfg),
        max_pixels=getattr(video_cfg, "max_pixels", None),
        start=sample.video_start,
        end=sample.video_end,
        seed=sample_seed,
        sample_id=sample.id,
        cache=cache,
        timeout=getattr(video_cfg, "decode_timeout", None) or None,
    )
    check_length(sample, frames)
    return frames


# An annotation may round the clip's length; more than this is a different (cut, re-encoded) clip.
LENGTH_TOLERANCE = (0.5, 0.05)  # seconds, fraction


def check_length(sample: Sample, frames: Any) -> None:
    """VideoError ``too_short`` when the decoded clip (or trim window) is shorter than the annotation
    says (``duration``), beyond :data:`LENGTH_TOLERANCE`: its times would point past the video."""
    claimed = sample.duration
    if claimed is None or frames.duration is None:
        return
    seconds, fraction = LENGTH_TOLERANCE
    if claimed > frames.duration + max(seconds, fraction * claimed):
        from ..errors import VideoError

        raise VideoError(f"clip of sample {sample.id} ({sample.source}) is {frames.duration:.2f} s long but its "
                         f"annotation says duration {claimed:g} s: a cut or different file? ({sample.video})",
                         path=sample.video, sample_id=sample.id, reason="too_short")
