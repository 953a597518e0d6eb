"""A catalogue of bad videos, each with its documented outcome (tests and the benchmark).

:func:`make_catalogue` returns ``kind -> (Sample, expected)`` where ``expected`` is
``("ok", decoder)`` (the frames come from that decoder: ``pyav`` where decord cannot read the file)
or ``("skip", reason)`` (a :class:`~vtg_core.errors.VideoError` with that reason: training leaves
the sample out and counts it, see :mod:`vtg_core.train.bad_samples`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vtg_core.data.sample import Sample

SHARED = Path(os.environ.get("VTG_SHARED_VIDEOS", Path(__file__).resolve().parents[3] / "shared" / "videos"))


def _av1(path: Path) -> str:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libsvtav1", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"preset": "12"}
        for k in range(16):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 12 * k, np.uint8), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def make_catalogue(directory: Path) -> dict[str, tuple[Sample, tuple[str, str]]]:
    from vtg_core.data.synthetic import make_damaged_files

    d = make_damaged_files(directory)
    cat: dict[str, tuple[Sample, tuple[str, str]]] = {}

    def add(kind: str, video: str, expected: tuple[str, str], duration: float = 4.0) -> None:
        cat[kind] = (Sample(id=f"bad-{kind}", video=video, duration=duration, query="when?", answer=(1.0, 2.0)),
                     expected)

    add("intact", d["source"], ("ok", "decord"))
    add("missing", d["missing"], ("skip", "missing"))
    add("zero_byte", d["empty"], ("skip", "empty"))
    # Cut in its second key frame: the decoders see a 1 s clip; 4 frames of it decode, and the
    # annotation's 4 s give it away (32 frames would fail to decode: "corrupt").
    add("truncated", d["truncated"], ("skip", "too_short"))
    add("index_lost", d["no_index"], ("skip", "corrupt"))
    add("not_a_video", d["not_video"], ("skip", "unsupported"))
    add("av1_decord_cannot_read", _av1(directory / "av1.mp4"), ("ok", "pyav"), duration=2.0)
    add("shorter_than_annotation", d["source"], ("skip", "too_short"), duration=30.0)
    if SHARED.is_dir():
        add("corrupted_mp4", str(SHARED / "corrupted.mp4"), ("skip", "corrupt"), duration=5.0)
        # x265 open GOP: decord would return wrong frames without an error, so PyAV decodes it.
        add("hevc_open_gop", str(SHARED / "h265_video.mp4"), ("ok", "pyav"), duration=1.0)
        # A real decode takes longer than 1 ms: the limit is what stops it.
        add("decode_timeout", str(SHARED / "nasa_13013.mp4"), ("skip", "timeout"), duration=13.0)
    return cat


def outcome(sample: Sample, video_cfg: Any, timeout: float | None = None) -> tuple[str, str]:
    """``("ok", decoder)`` or ``("skip", reason)`` of decoding ``sample`` the way training does."""
    import attrs

    from vtg_core.data.sample_frames import frames_for_sample
    from vtg_core.errors import VideoError

    if timeout is not None:
        video_cfg = attrs.evolve(video_cfg, decode_timeout=timeout)
    try:
        frames = frames_for_sample(sample, video_cfg)
    except VideoError as exc:
        return "skip", exc.reason
    return "ok", frames.decoder
