"""``VideoTemporalInference``: a checkpoint answering "when does X happen?" for single videos.

It is evaluation on one made-up sample: the checkpoint's saved config decides frames and prompts,
:func:`~vtg_core.data.sample_frames.frames_for_sample` takes the frames, the task builds the
conversation and parses the answer, :func:`~vtg_core.evaluate.runner.generate_answers` generates.
So a prediction here and the same clip in ``vtg eval`` give the same answer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..data.sample import Sample
from ..errors import DataError


class VideoTemporalInference:
    """Load a checkpoint once; :meth:`predict` segments for (video, query) pairs.

    ``model_path``: a vtg checkpoint folder (or an exported / base model). ``task`` overrides the
    checkpoint's task; ``overrides`` are ``--set``-style ``"key=value"`` strings applied to its
    saved config (e.g. ``"video.max_frames=16"``); ``device`` (``"cpu"``, ``"cuda:1"``) defaults to
    the first GPU when there is one; ``base_model`` replaces the base a LoRA checkpoint recorded.
    """

    def __init__(self, model_path: str | os.PathLike[str], *, task: str | None = None,
                 overrides: Sequence[str] = (), device: str | None = None, max_new_tokens: int | None = None,
                 batch_size: int = 4, base_model: str | None = None):
        from ..evaluate.loading import (
            build_backend,
            checkpoint_config,
            default_max_new_tokens,
            device_map_for,
            load_model,
        )
        from ..train.run import build_task

        self.model_path = str(model_path)
        self.config, self.config_source = checkpoint_config(self.model_path, overrides, task_name=task)
        self.task = build_task(self.config)
        self.backend = build_backend(self.config)
        device_map = {"": device} if device else device_map_for(0)
        self.model, self.processor = load_model(self.backend, self.model_path, self.config, device_map=device_map,
                                                base_model=base_model)
        self.max_new_tokens = int(max_new_tokens or default_max_new_tokens(self.task, self.config))
        self.batch_size = int(batch_size)
        self.seed = int(self.config.training.seed)

    def __repr__(self) -> str:
        return f"VideoTemporalInference({self.model_path!r}, task={self.task!r})"

    def make_sample(self, video_path: str | os.PathLike[str], query: str, *, video_start: float | None = None,
                    video_end: float | None = None, duration: float | None = None) -> Sample:
        """The sample a (video, query) pair stands for; its duration is probed from the file."""
        video = os.fspath(video_path)
        if not isinstance(query, str) or not query.strip():
            raise DataError(f"the query for {video} is empty; ask about something that happens in the video")
        sample_id = f"{Path(video).name}|{query.strip()}"
        if duration is None:
            if video_end is not None:
                duration = float(video_end) - float(video_start or 0.0)
            else:
                from ..data.video import probe

                duration = probe(video, sample_id=sample_id).duration - float(video_start or 0.0)
        if not (math.isfinite(duration) and duration > 0):
            raise DataError(f"{video}: the clip's duration must be positive, got {duration!r} "
                            f"(video_start={video_start!r}, video_end={video_end!r})")
        return Sample(id=sample_id, video=video, duration=float(duration), query=query.strip(),
                      video_start=video_start, video_end=video_end)

    def predict(self, video_path: str | os.PathLike[str], query: str, *, video_start: float | None = None,
                video_end: float | None = None, duration: float | None = None) -> dict[str, Any]:
        """``{"start_time", "end_time", "raw", "parsed"}`` (+ ``"error"`` when nothing was read).

        Times are seconds from the clip's (or trim window's) start, as the model said them: a
        reversed or out-of-clip answer is returned as such (metrics and rewards treat it), never
        silently repaired. ``duration``, ``query`` and ``video`` are echoed back.
        """
        return self.predict_batch([{"video_path": video_path, "query": query, "video_start": video_start,
                                    "video_end": video_end, "duration": duration}])[0]

    def predict_batch(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`predict` for several ``{"video_path", "query", ...}`` items, generated in batches."""
        from ..evaluate.runner import generate_answers

        samples = [self.make_sample(item["video_path"], item["query"], video_start=item.get("video_start"),
                                    video_end=item.get("video_end"), duration=item.get("duration"))
                   for item in items]
        texts = generate_answers(self.model, self.processor, self.backend, self.task, samples, self.config.video,
                                 batch_size=self.batch_size, max_new_tokens=self.max_new_tokens, progress=False,
                                 seed=self.seed)
        return [self._result(s, t) for s, t in zip(samples, texts, strict=True)]

    def _result(self, sample: Sample, text: str) -> dict[str, Any]:
        parsed = self.task.parse(text, sample)
        value = parsed.value if parsed.ok else None
        pair = isinstance(value, tuple | list) and len(value) == 2
        out: dict[str, Any] = {
            "start_time": float(value[0]) if pair else None,
            "end_time": float(value[1]) if pair else None,
            "raw": text,
            "parsed": bool(parsed.ok),
            "video": sample.video,
            "query": sample.query,
            "duration": sample.duration,
        }
        if parsed.ok and not pair:
            out["answer"] = value  # another task's answer form (a letter, a number...)
        if not parsed.ok:
            out["error"] = parsed.error or "the answer could not be parsed"
        return out
