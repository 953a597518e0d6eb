"""Synthetic video clips with exactly known events, for tests and the offline demo.

:func:`make_clip` encodes a real video file with PyAV (H.264 through libx264 where PyAV has it,
else MPEG-4 Part 2; yuv420p) in which coloured shapes appear and vanish on a plain background.
An :class:`Event` is on screen in frame ``k`` exactly when ``start <= k / fps < end``.

:func:`make_grounding_dataset` writes a small temporal-grounding data set in the JSONL format of
the configuration guide (``video``, ``duration``, ``timestamp``, ``sentence``, ``qid``): each
query asks when one shape appears, and its ``timestamp`` is exactly when that shape is visible
(event edges sit on frame boundaries, so nothing is rounded). Same seed, same rows, same frames.

:func:`make_damaged_files` makes the broken inputs the decoder must reject cleanly.

PyAV is imported inside functions, so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import attrs
import numpy as np

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (30, 190, 40),
    "blue": (40, 70, 235),
    "yellow": (240, 220, 30),
    "magenta": (220, 40, 210),
    "cyan": (30, 210, 220),
    "white": (245, 245, 245),
}
SHAPES = ("square", "circle", "triangle", "diamond")

#: Background: dark grey, far from every colour above, so a pixel test cannot confuse them.
BACKGROUND = (48, 48, 48)

# Positions a dataset clip may use: centres of a 3x3 grid, as fractions of width and height.
_GRID = tuple((x, y) for y in (0.22, 0.5, 0.78) for x in (0.22, 0.5, 0.78))


@attrs.frozen
class Event:
    """A shape on screen from ``start`` (inclusive) to ``end`` (exclusive), in seconds.

    ``position`` is the shape's centre as fractions (x, y) of the frame; ``size`` its extent as a
    fraction of the frame's shorter side.
    """

    shape: str = "square"
    color: str = "red"
    start: float = 1.0
    end: float = 3.0
    position: tuple[float, float] = (0.5, 0.5)
    size: float = 0.3

    def __attrs_post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; choose one of {', '.join(SHAPES)}")
        if self.color not in COLORS:
            raise ValueError(f"unknown colour {self.color!r}; choose one of {', '.join(COLORS)}")
        if not self.end > self.start >= 0:
            raise ValueError(f"event needs 0 <= start < end, got {self.start}..{self.end}")

    def visible_at(self, t: float) -> bool:
        return self.start <= t < self.end

    def mask(self, height: int, width: int) -> np.ndarray:
        """Boolean H x W mask of the shape's pixels."""
        side = max(2.0, self.size * min(height, width))
        cx, cy = self.position[0] * width, self.position[1] * height
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
        dx, dy = (xx - cx) / (side / 2), (yy - cy) / (side / 2)
        if self.shape == "square":
            return (np.abs(dx) <= 1) & (np.abs(dy) <= 1)
        if self.shape == "circle":
            return dx * dx + dy * dy <= 1
        if self.shape == "diamond":
            return np.abs(dx) + np.abs(dy) <= 1
        # triangle, apex up: the half-width grows from 0 at the top to 1 at the bottom
        return (dy >= -1) & (dy <= 1) & (np.abs(dx) <= (dy + 1) / 2)


def _encoder() -> str:
    import av

    for name in ("libx264", "mpeg4"):
        try:
            av.Codec(name, "w")
        except Exception:  # not built into this PyAV wheel
            continue
        return name
    raise RuntimeError("PyAV has neither libx264 nor mpeg4 encoders; cannot make clips")


def render_frame(events: Sequence[Event], t: float, *, size: tuple[int, int],
                 background: tuple[int, int, int] = BACKGROUND,
                 masks: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The RGB frame (H x W x 3 uint8) shown at time ``t``: later events draw on top.

    ``masks`` are the events' precomputed :meth:`Event.mask` (a clip reuses them every frame).
    """
    h, w = size
    frame = np.empty((h, w, 3), dtype=np.uint8)
    frame[:] = background
    for i, event in enumerate(events):
        if event.visible_at(t):
            mask = masks[i] if masks is not None else event.mask(h, w)
            frame[mask] = COLORS[event.color]
    return frame


def make_clip(path: str | os.PathLike, *, duration: float, fps: int = 8,
              size: tuple[int, int] = (64, 64), events: Sequence[Event] = (), seed: int = 0,
              keyframe_interval: float = 1.0, faststart: bool = False) -> Path:
    """Encode a clip of ``round(duration * fps)`` frames showing ``events``; return its path.

    ``size`` is (height, width), even numbers (yuv420p). ``seed`` tints the background slightly,
    so clips from different seeds differ even with the same events. A key frame every
    ``keyframe_interval`` seconds keeps seeking cheap and gives the keyframe strategy something to
    find. ``faststart`` puts the mp4 index first (a truncated copy then still opens).
    """
    import av

    path = Path(path)
    h, w = size
    if h % 2 or w % 2 or h < 16 or w < 16:
        raise ValueError(f"size must be even and at least 16x16 (yuv420p), got {size}")
    num_frames = max(1, round(duration * fps))
    tint = random.Random(seed).randint(-8, 8)
    background = tuple(int(c + tint) for c in BACKGROUND)
    masks = [e.mask(h, w) for e in events]
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = _encoder()
    container = av.open(str(path), "w", options={"movflags": "+faststart"} if faststart else {})
    try:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        gop = max(1, round(keyframe_interval * fps))
        if codec == "libx264":
            # One thread and no B-frames: byte-identical output for the same seed, simple GOPs.
            stream.options = {"preset": "ultrafast", "crf": "12", "g": str(gop),
                              "keyint_min": str(gop), "bf": "0", "threads": "1",
                              "x264-params": "scenecut=0"}
        else:
            stream.codec_context.gop_size = gop
            stream.codec_context.qscale = 2
            stream.options = {"threads": "1"}
        time_base = Fraction(1, 1) / Fraction(fps).limit_denominator(1001)
        for k in range(num_frames):
            rgb = render_frame(events, k / fps, size=size, background=background, masks=masks)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = k, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path


def _segment(rng: random.Random, num_frames: int, fps: int) -> tuple[int, int]:
    """A run of frames [a, b) lasting from one second to half the clip."""
    shortest = min(num_frames, max(2, fps))
    longest = max(shortest, num_frames // 2)
    length = rng.randint(shortest, longest)
    a = rng.randint(0, num_frames - length)
    return a, a + length


def _clip_rows(split: str, i: int, seed: int, duration_range: tuple[float, float], fps: int,
               size: tuple[int, int], max_distractors: int = 2,
               shape_size: float = 0.3) -> tuple[dict, list[Event], float, int]:
    rng = random.Random(f"vtg-synthetic:{seed}:{split}:{i}")
    num_frames = max(2 * fps, round(rng.uniform(*duration_range) * fps))
    duration = num_frames / fps
    # Every event of a clip gets its own shape and its own colour, so "the red square" names
    # one event and a pixel's colour says which event it belongs to.
    shapes = rng.sample(SHAPES, 3)
    colors = rng.sample([c for c in COLORS if c != "white"], 3)
    cells = rng.sample(_GRID, 3)
    events = []
    for j in range(rng.randint(1, 1 + max_distractors)):  # the target, then its distractors
        shape, color = shapes[j], colors[j]
        a, b = _segment(rng, num_frames, fps)
        events.append(Event(shape=shape, color=color, start=a / fps, end=b / fps,
                            position=cells[j], size=shape_size))
    target = events[0]
    name = f"{split}_{i:04d}.mp4"
    row = {
        "video": name,
        "duration": duration,
        "timestamp": [target.start, target.end],
        "sentence": f"when does the {target.color} {target.shape} appear?",
        "qid": f"synthetic|{seed}|{split}|{i:04d}",
    }
    return row, events, duration, rng.randrange(2**31)


def make_grounding_dataset(out_dir: str | os.PathLike, *, num_train: int = 48, num_val: int = 12,
                           seed: int = 0, duration_range: tuple[float, float] = (4, 12),
                           fps: int = 8, size: tuple[int, int] = (64, 64),
                           max_distractors: int = 2, shape_size: float = 0.3) -> dict[str, str]:
    """Write clips and ``train.jsonl`` / ``val.jsonl`` under ``out_dir``.

    Returns ``{"train": ..., "val": ..., "video_dir": ..., "root": ...}`` (paths as strings).
    Rows name their clip relative to ``video_dir``. Each clip has one target shape (asked about)
    and up to two distractors of other shapes and other colours; every event starts and ends on
    a frame boundary, so ``timestamp`` is exact. About 60 clips take well under two seconds.
    ``max_distractors`` (0 to 2) caps the distractors per clip; 0 leaves the target alone on screen.
    ``shape_size`` is each shape's extent as a fraction of the frame.
    """
    if not 0 <= max_distractors <= 2:
        raise ValueError(f"max_distractors must be 0, 1 or 2, got {max_distractors}")
    if duration_range[0] <= 0 or duration_range[1] < duration_range[0]:
        raise ValueError(f"duration_range must be (low, high) with 0 < low <= high, got {duration_range}")
    root = Path(out_dir)
    video_dir = root / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    out = {"root": str(root), "video_dir": str(video_dir)}
    for split, count in (("train", num_train), ("val", num_val)):
        rows = []
        for i in range(count):
            row, events, duration, clip_seed = _clip_rows(split, i, seed, duration_range, fps, size,
                                                          max_distractors, shape_size)
            make_clip(video_dir / row["video"], duration=duration, fps=fps, size=size,
                      events=events, seed=clip_seed)
            rows.append(row)
        jsonl = root / f"{split}.jsonl"
        with open(jsonl, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        out[split] = str(jsonl)
    return out


def _cut_point(path: Path) -> int:
    """Byte offset in the middle of the second key frame's packet (else the file's middle).

    A cut inside a packet is what a failed download leaves; a cut exactly between packets would
    only look like a shorter clip.
    """
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = [(p.pos, p.size) for p in container.demux(stream)
                if p.size and p.is_keyframe and p.pos is not None]
    if len(keys) >= 2:
        pos, size = keys[1]
        return pos + max(1, size // 2)
    return path.stat().st_size // 2


def make_damaged_files(directory: str | os.PathLike, *, source: str | os.PathLike | None = None,
                       ) -> dict[str, str]:
    """Broken inputs for tests; returns name -> path.

    - ``empty``: a zero-byte ``.mp4``;
    - ``not_video``: a text file named ``.mp4``;
    - ``truncated``: a clip whose index is at the front, cut in the middle of its second key
      frame (opens; the first second decodes, then the data is broken);
    - ``no_index``: the first half of a clip whose index is at the end (the index is lost);
    - ``missing``: a path that does not exist;
    - ``source``: the intact clip the damaged ones were cut from.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if source is None:
        source = make_clip(d / "intact.mp4", duration=4.0, fps=8, size=(64, 64), faststart=True,
                           events=[Event(start=1.0, end=3.0)])
    source = Path(source)
    data = source.read_bytes()
    out = {"source": str(source)}
    (d / "empty.mp4").write_bytes(b"")
    out["empty"] = str(d / "empty.mp4")
    (d / "not_video.mp4").write_text("this is a text file, not a video\n" * 20, encoding="utf-8")
    out["not_video"] = str(d / "not_video.mp4")
    (d / "truncated.mp4").write_bytes(data[: _cut_point(source)])
    out["truncated"] = str(d / "truncated.mp4")
    tail_index = make_clip(d / "_tail_index.mp4", duration=4.0, fps=8, size=(64, 64),
                           events=[Event(start=1.0, end=3.0)])
    (d / "no_index.mp4").write_bytes(tail_index.read_bytes()[: len(tail_index.read_bytes()) // 2])
    tail_index.unlink()
    out["no_index"] = str(d / "no_index.mp4")
    out["missing"] = str(d / "does_not_exist.mp4")
    return out

