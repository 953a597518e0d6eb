"""Frames around a question's support timestamps, topped up with uniform frames (seed 003).

Seed 003 takes 4-6 frames per clip: frames from a window (+/-0.5 s) around each annotated
support time, then uniform frames until there are enough. Here, with :class:`FrameOptions`:

- each support time ``t`` (times past the clip's end are dropped with a note) contributes
  ``frames_per_support`` frames spread over ``[t - window, t + window]`` (clamped to the clip);
  with many support times each gets fewer, and at most ``max_frames`` support times are used
  (evenly chosen);
- the count is adaptive: the support frames, raised to ``min_frames`` by adding frames of a
  uniform pass over the whole clip (those farthest from the frames already taken first), capped
  at ``max_frames``;
- no support times (or ``use_support_frames: false``): ``max_frames`` uniform frames.

Decoding is vtg's own :func:`vtg_core.data.video.load_frames` (decord, PyAV fallback, frame
cache), one call per window; the result is one :class:`~vtg_core.data.video.Frames` in time
order whose ``timestamps`` are the decoder's, in seconds from the start of the clip, so they reach
the model as any clip's do.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import attrs
import numpy as np

from vtg_core.data.sample import Sample
from vtg_core.errors import ConfigError, VideoError

log = logging.getLogger(__name__)


def _positive_int(name: str):
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"dashcam_mcq option {name!r} must be a positive integer, got {value!r}")
    return check


def _window(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"dashcam_mcq option 'support_window' must be a number of seconds >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class FrameOptions:
    """How many frames, and where (task options of ``dashcam_mcq``)."""

    min_frames: int = attrs.field(default=4, validator=_positive_int("min_frames"))
    max_frames: int = attrs.field(default=6, validator=_positive_int("max_frames"))
    frames_per_support: int = attrs.field(default=3, validator=_positive_int("frames_per_support"))
    support_window: float = attrs.field(default=0.5, validator=_window)
    use_support_frames: bool = True

    def __attrs_post_init__(self) -> None:
        if self.min_frames > self.max_frames:
            raise ConfigError(f"dashcam_mcq: min_frames ({self.min_frames}) is above max_frames ({self.max_frames})")
        if not isinstance(self.use_support_frames, bool):
            raise ConfigError(f"dashcam_mcq option 'use_support_frames' must be true or false, "
                              f"got {self.use_support_frames!r}")


def _size_args(video_cfg: Any) -> dict[str, Any]:
    res = getattr(video_cfg, "resolution", None)
    max_pixels = getattr(video_cfg, "max_pixels", None)
    resolution = None if res is None or max_pixels else (int(res.height), int(res.width))
    return {"resolution": resolution, "max_pixels": max_pixels}


def plan_support(times: list[float], opts: FrameOptions) -> tuple[list[float], int]:
    """``(support times used, frames per support time)`` within ``max_frames``."""
    if len(times) > opts.max_frames:
        picks = np.linspace(0, len(times) - 1, opts.max_frames).round().astype(int)
        times = [times[i] for i in sorted(set(picks.tolist()))]
    per = max(1, min(opts.frames_per_support, opts.max_frames // max(1, len(times))))
    return times, per


def _merge(parts: list[Any], duration: float) -> Any:
    """One ``Frames`` of every distinct frame in ``parts``, in time order."""
    from vtg_core.data.video import Frames

    seen: dict[int, tuple[float, np.ndarray]] = {}
    for part in parts:
        for k, index in enumerate(part.indices):
            seen.setdefault(int(index), (float(part.source_timestamps[k]), part.array[k]))
    order = sorted(seen)
    array = np.stack([seen[i][1] for i in order])
    array.setflags(write=False)
    ts = tuple(seen[i][0] for i in order)
    first = parts[0]
    return Frames(array=array, timestamps=ts, source_timestamps=ts, indices=tuple(order),
                  native_fps=first.native_fps, sampled_fps=len(order) / duration if duration > 0 else 0.0,
                  decoder=first.decoder, path=first.path, duration=duration, start=0.0, end=duration)


def _farthest(candidates: list[tuple[int, float]], taken: list[float], count: int) -> list[int]:
    """Indices of ``count`` candidates, each the one farthest from everything taken so far."""
    chosen: list[int] = []
    taken = list(taken)
    pool = list(candidates)
    while pool and len(chosen) < count:
        best = max(pool, key=lambda c: (min((abs(c[1] - t) for t in taken), default=math.inf), -c[1]))
        pool.remove(best)
        chosen.append(best[0])
        taken.append(best[1])
    return chosen


def load_support_frames(sample: Sample, video_cfg: Any, opts: FrameOptions, *, cache: Any = None) -> Any:
    """The sample's frames as the module docstring describes (a ``Frames``)."""
    from vtg_core.data.video import load_frames, probe

    if sample.video is None:
        raise VideoError(f"sample {sample.id} ({sample.source}) has no video", sample_id=sample.id, reason="missing")
    common = {"sample_id": sample.id, "cache": cache, **_size_args(video_cfg)}
    times = list(sample.inputs.get("support_frames") or ()) if opts.use_support_frames else []
    if not times:
        return load_frames(sample.video, strategy="uniform", max_frames=opts.max_frames, **common)
    info = probe(sample.video, sample_id=sample.id)
    duration = info.duration
    inside = [t for t in times if t < duration]
    if len(inside) < len(times):
        log.info("sample %s (%s): support time(s) %s lie past the clip's end (%.2f s); ignored", sample.id,
                 sample.source, [t for t in times if t >= duration], duration)
    if not inside:
        return load_frames(sample.video, strategy="uniform", max_frames=opts.max_frames, **common)
    used, per = plan_support(inside, opts)
    parts = []
    for t in used:
        start = max(0.0, t - opts.support_window)
        # A zero window still takes the frame on screen at t (a window narrower than a frame does).
        end = min(duration, max(t + opts.support_window, start + 1e-3))
        parts.append(load_frames(sample.video, strategy="uniform", max_frames=per, start=start, end=end, **common))
    have = {int(i): float(ts) for p in parts for i, ts in zip(p.indices, p.source_timestamps, strict=True)}
    target = min(opts.max_frames, max(opts.min_frames, len(have)))
    need = target - len(have)
    if need > 0:
        uniform = load_frames(sample.video, strategy="uniform", max_frames=opts.max_frames + len(have), **common)
        candidates = [(k, float(ts)) for k, (i, ts) in enumerate(zip(uniform.indices, uniform.source_timestamps,
                                                                      strict=True)) if int(i) not in have]
        keep = sorted(_farthest(candidates, list(have.values()), need))
        if keep:
            parts.append(attrs.evolve(uniform, array=uniform.array[keep],
                                      indices=tuple(uniform.indices[k] for k in keep),
                                      timestamps=tuple(uniform.timestamps[k] for k in keep),
                                      source_timestamps=tuple(uniform.source_timestamps[k] for k in keep)))
    return _merge(parts, duration)
