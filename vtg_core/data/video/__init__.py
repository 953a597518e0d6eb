"""Video decoding, frame sampling, decoded-frame caching and visual-token estimates.

The public API other parts of vtg code against::

    from vtg_core.data.video import load_frames, probe, sample_indices, FrameCache

    info = probe("clip.mp4")                         # VideoInfo: frames, fps, duration, size
    frames = load_frames("clip.mp4", max_frames=16, fps=2.0, start=3.0, end=9.0,
                         max_pixels=448 * 448, cache=FrameCache(max_bytes=2**30))
    frames.array          # uint8 T x H x W x 3, read-only
    frames.timestamps     # seconds from the trim start, from the decoder

Importing this package imports neither decord nor torch (nor PyAV): decoders load on first use.
"""

from __future__ import annotations

from .cache import FrameCache
from .decode import DECODERS, Frames, VideoInfo, load_frames, probe
from .sampling import STRATEGIES, output_size, sample_indices
from .tokens import estimate_sample_tokens, estimate_visual_tokens

__all__ = [
    "DECODERS",
    "STRATEGIES",
    "FrameCache",
    "Frames",
    "VideoInfo",
    "estimate_sample_tokens",
    "estimate_visual_tokens",
    "load_frames",
    "output_size",
    "probe",
    "sample_indices",
]
