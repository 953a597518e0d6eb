"""Inference on single videos: the Python API of seed 002, without its script.

>>> from vtg_core.predict import VideoTemporalInference, visualize_temporal_grounding  # doctest: +SKIP
>>> engine = VideoTemporalInference("runs/.../checkpoints/final")                     # doctest: +SKIP
>>> result = engine.predict(video_path="clip.mp4", query="the person opens the door")  # doctest: +SKIP
>>> result["start_time"], result["end_time"], result["parsed"], result["raw"]          # doctest: +SKIP
>>> visualize_temporal_grounding("clip.mp4", predictions=[result], ground_truths=[(10.0, 15.0)],
...                              output_path="viz.png")                                # doctest: +SKIP

Names resolve lazily (module ``__getattr__``): importing this package imports neither torch nor
matplotlib; the first use of a name loads what it needs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VideoTemporalInference", "visualize_temporal_grounding"]


def __getattr__(name: str) -> Any:
    if name == "VideoTemporalInference":
        from .inference import VideoTemporalInference

        return VideoTemporalInference
    if name == "visualize_temporal_grounding":
        from ..visualize.timeline import visualize_temporal_grounding

        return visualize_temporal_grounding
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
