"""A map-style dataset turning ``Sample`` records into model inputs, lazily, one at a time.

Decoding happens in ``__getitem__`` (so DataLoader workers decode in parallel and memory holds
only the batches in flight): frames via ``vtg_core.data.video.load_frames`` with the config's
video settings, the conversation via the task's ``build_messages``, the answer via its
``target``, then the backend's ``encode``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from torch.utils.data import Dataset

from ..backends.video_inputs import encode as default_encode
from ..data.sample import Sample


def frame_loader_from_config(video: Any, *, cache: Any = None, task: Any = None) -> Callable[[Sample], Any]:
    """``sample -> Frames`` with the ``video`` config section's settings (trimmed to the sample).

    The one place frames are taken is :func:`vtg_core.data.sample_frames.frames_for_sample`, so
    SFT, GRPO and evaluation feed a sample to the model identically. The ``random`` strategy
    draws anew on every call (fresh frames per epoch).
    """
    from ..data.sample_frames import frames_for_sample, make_cache

    if cache is None:
        cache = make_cache(video)

    def load(sample: Sample) -> Any:
        return frames_for_sample(sample, video, cache=cache, task=task)

    return load


class VideoSampleDataset(Dataset):
    """``dataset[i]`` -> the encoded ``samples[i]`` (a dict of tensors with batch dimension 1).

    ``with_answer=False`` encodes the prompt only (for generation). ``seed`` fixes each sample's
    prompt-template draw (the same sample gets the same prompt every epoch, so a resumed run sees
    the same data). ``frame_loader`` replaces decoding (tests, pre-decoded frames).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        task: Any,
        processor: Any,
        *,
        video: Any = None,
        frame_loader: Callable[[Sample], Any] | None = None,
        encode: Callable[..., dict[str, Any]] | None = None,
        with_answer: bool = True,
        seed: int = 0,
    ):
        if frame_loader is None:
            if video is None:
                raise ValueError("VideoSampleDataset needs the video config section or a frame_loader")
            frame_loader = frame_loader_from_config(video, task=task)
        self.samples = list(samples)
        self.task = task
        self.processor = processor
        self.frame_loader = frame_loader
        self.encode = encode or default_encode
        self.with_answer = with_answer
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        frames = self.frame_loader(sample)
        messages = self.task.build_messages(sample, rng=random.Random(f"{self.seed}:{sample.id}"))
        answer = self.task.target(sample) if self.with_answer else None
        try:
            return self.encode(self.processor, messages, frames, answer)
        except ValueError as exc:
            raise ValueError(f"sample {sample.id!r} ({sample.source}): {exc}") from exc
