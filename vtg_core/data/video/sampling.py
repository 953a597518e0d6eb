"""Which frames to decode: pure functions on decoded frame timestamps.

Nothing here opens a file. :func:`sample_indices` turns the per-frame start times a decoder
reported (plus the clip duration and, when known, the key-frame indices) into the frame indices
to decode, for the three strategies of the ``video.sampling_strategy`` config key:

- ``uniform``: the trim window is cut into ``n`` equal runs of frames and the middle frame of
  each run is taken, so the first and last frames are never over-represented.
- ``random``: one frame drawn at random inside each run (TSN-style), deterministic given ``seed``.
- ``keyframe``: like ``uniform``, but inside each run a key frame is taken instead of the middle
  frame when the run has one (key frames decode without their neighbours and are never
  half-predicted). Without key-frame information this falls back to ``uniform`` and logs a note.

``n`` is ``max_frames`` when ``fps`` is 0 (native rate), else ``round(window * fps)`` capped by
``max_frames``; never more than the frames inside the window. Runs are counted in frames, which is
uniform in time for constant-frame-rate video (the common case); the timestamps returned with the
frames are always the real ones.

:func:`output_size` is the other half of "what to produce": the frame size after ``resolution`` /
``max_pixels``, shared with the token estimate so planning and decoding agree.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import VideoError

if TYPE_CHECKING:
    from .decode import VideoInfo

logger = logging.getLogger(__name__)

STRATEGIES = ("uniform", "random", "keyframe")

#: How far past the decoded end a requested ``end`` may reach (on top of one frame interval)
#: before it counts as "too short": annotation tools round, and container durations often
#: include a longer audio track.
END_TOLERANCE_S = 0.05

# Decord reports timestamps as float32; this absorbs its rounding when comparing with a window
# edge given in seconds (0.1 arrives as 0.10000000149).
_EPS = 1e-5

_noted_keyframe_fallback = False


def _where(path: str | None, sample_id: str | None) -> str:
    where = str(path) if path else "video"
    return f"{where} (sample {sample_id})" if sample_id is not None else where


def resolve_window(duration: float, start: float | None, end: float | None, *,
                   frame_interval: float = 0.0, path: str | None = None,
                   sample_id: str | None = None) -> tuple[float, float]:
    """Check a trim window against the decoded duration and return it clamped to the clip.

    ``start``/``end`` are seconds in the file (``video_start``/``video_end``); ``None`` means the
    clip's own start/end. Raises :class:`VideoError` with reason ``too_short`` when the window
    reaches past the decoded length (more than one frame interval plus
    :data:`END_TOLERANCE_S`), and ``bad_window`` when it is negative, inverted or not a number.
    """
    where = _where(path, sample_id)
    s = 0.0 if start is None else float(start)
    e = float(duration) if end is None else float(end)
    if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or (end is not None and e <= s):
        raise VideoError(
            f"{where}: invalid trim window video_start={start!r}, video_end={end!r}; start must be "
            f">= 0 and before end. Fix the annotation row.",
            path=path, sample_id=sample_id, reason="bad_window")
    tolerance = max(frame_interval, 0.0) + END_TOLERANCE_S
    if e > duration + tolerance:
        raise VideoError(
            f"{where}: annotation asks for video up to {e:.3f}s but the decoded video is only "
            f"{duration:.3f}s long; fix video_end/duration in the annotation or re-export the clip.",
            path=path, sample_id=sample_id, reason="too_short")
    if s >= duration:
        raise VideoError(
            f"{where}: video_start={s:.3f}s is at or past the end of the decoded video "
            f"({duration:.3f}s long); fix video_start in the annotation.",
            path=path, sample_id=sample_id, reason="too_short")
    return s, min(e, float(duration))


def planned_num_frames(window: float, *, max_frames: int | None, fps: float,
                       available: int | None = None) -> int:
    """How many frames a window of ``window`` seconds yields (>= 1).

    ``fps`` > 0 asks for that sampling rate; 0 means the native rate, i.e. every frame, up to
    ``max_frames``. ``available`` (frames inside the window) caps the count when known.
    """
    if fps > 0:
        n = max(1, math.floor(window * fps + 0.5))
    else:
        n = available if available is not None else (max_frames or 1)
    if max_frames is not None:
        n = min(n, max_frames)
    if available is not None:
        n = min(n, available)
    return max(1, n)


def output_size(height: int, width: int, *, resolution: tuple[int, int] | None = None,
                max_pixels: int | None = None) -> tuple[int, int]:
    """The (height, width) frames come out at.

    ``resolution`` (h, w) wins when given. Otherwise frames larger than ``max_pixels`` are
    scaled down, keeping the aspect ratio; smaller frames are never scaled up.
    """
    if resolution is not None:
        return int(resolution[0]), int(resolution[1])
    if max_pixels is not None and height * width > max_pixels:
        scale = math.sqrt(max_pixels / (height * width))
        return max(1, math.floor(height * scale)), max(1, math.floor(width * scale))
    return int(height), int(width)


def check_params(strategy: str, max_frames: int | None, fps: float) -> None:
    """Raise ValueError for a strategy / max_frames / fps a config cannot mean."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if max_frames is not None and (int(max_frames) != max_frames or max_frames < 1):
        raise ValueError(f"max_frames must be a positive integer or None, got {max_frames!r}")
    if fps is None or not math.isfinite(fps) or fps < 0:
        raise ValueError(f"fps must be >= 0 (0 = native rate), got {fps!r}")


def select_frames(starts: np.ndarray, duration: float, *, key_indices: Sequence[int] | None,
                  strategy: str, max_frames: int | None, fps: float, start: float | None,
                  end: float | None, seed: Any, path: str | None = None,
                  sample_id: str | None = None) -> tuple[list[int], float, float]:
    """Core of :func:`sample_indices`; also returns the resolved (start, end) window.

    ``starts`` are the frames' start times in seconds, ascending, as the decoder reported them.
    """
    check_params(strategy, max_frames, fps)
    total = len(starts)
    if total == 0:
        raise VideoError(f"{_where(path, sample_id)}: the decoder found no frames",
                         path=path, sample_id=sample_id, reason="corrupt")
    interval = duration / total if duration > 0 else 0.0
    w0, w1 = resolve_window(duration, start, end, frame_interval=interval, path=path,
                            sample_id=sample_id)
    lo = int(np.searchsorted(starts, w0 - _EPS, side="left"))
    hi = int(np.searchsorted(starts, w1 - _EPS, side="left"))
    if hi <= lo:
        # The window is narrower than one frame: take the frame on screen at its start.
        only = max(0, int(np.searchsorted(starts, w0 + _EPS, side="right")) - 1)
        return [only], w0, w1
    available = hi - lo
    n = planned_num_frames(w1 - w0, max_frames=max_frames, fps=fps, available=available)
    # Run k covers frames [lo + bounds[k], lo + bounds[k+1]); every run holds >= 1 frame, and
    # its middle frame lies inside it, so picks never repeat.
    bounds = [(k * available) // n for k in range(n + 1)]
    centres = [lo + (bounds[k] + bounds[k + 1]) // 2 for k in range(n)]
    if strategy == "uniform":
        return centres, w0, w1
    if strategy == "random":
        rng = random.Random(seed)
        return [lo + rng.randrange(bounds[k], bounds[k + 1]) for k in range(n)], w0, w1
    keys = sorted(int(k) for k in key_indices) if key_indices else []
    if not keys:
        global _noted_keyframe_fallback
        if not _noted_keyframe_fallback:
            # Once per process: a data set without key-frame info would otherwise log per sample.
            logger.info("keyframe sampling: no key-frame indices for %s; using uniform sampling",
                        _where(path, sample_id))
            _noted_keyframe_fallback = True
        return centres, w0, w1
    picked = []
    for k in range(n):
        a, b = lo + bounds[k], lo + bounds[k + 1]
        i, j = bisect.bisect_left(keys, a), bisect.bisect_left(keys, b)
        if i < j:
            picked.append(min(keys[i:j], key=lambda x, c=centres[k]: (abs(x - c), x)))
        else:
            picked.append(centres[k])
    return picked, w0, w1


def sample_indices(info_or_timestamps: VideoInfo | Sequence[float], *, strategy: str = "uniform",
                   max_frames: int | None = 32, fps: float = 0.0, start: float | None = None,
                   end: float | None = None, seed: Any = None, duration: float | None = None,
                   key_indices: Sequence[int] | None = None) -> list[int]:
    """Frame indices to decode, ascending and without repeats.

    ``info_or_timestamps`` is a :class:`~vtg_core.data.video.decode.VideoInfo` (from
    :func:`probe`) or the frames' start times in seconds. With plain timestamps, ``duration``
    defaults to the last timestamp plus the median frame interval and ``key_indices`` to none.
    ``start``/``end`` trim the clip (seconds in the file); ``fps`` > 0 is a target rate capped by
    ``max_frames`` (``None`` = no cap). Same inputs and ``seed`` give the same indices.

    Raises :class:`VideoError` (``too_short`` / ``bad_window``) for a window outside the clip and
    ValueError for an unknown strategy or a negative ``fps``.
    """
    path = None
    if hasattr(info_or_timestamps, "timestamps"):
        info = info_or_timestamps
        starts = np.asarray(info.timestamps, dtype=np.float64)
        duration = info.duration if duration is None else duration
        key_indices = info.key_indices if key_indices is None else key_indices
        path = info.path
    else:
        starts = np.asarray(list(info_or_timestamps), dtype=np.float64)
        if duration is None:
            if len(starts) < 2:
                raise ValueError("pass duration= when giving fewer than two timestamps")
            duration = float(starts[-1] + np.median(np.diff(starts)))
    if len(starts) > 1 and np.any(np.diff(starts) < 0):
        raise ValueError("timestamps must be in presentation order (ascending)")
    indices, _, _ = select_frames(starts, float(duration), key_indices=key_indices,
                                  strategy=strategy, max_frames=max_frames, fps=fps, start=start,
                                  end=end, seed=seed, path=path)
    return indices
