"""Batch encoded video conversations: pad the token sequences, stack the visual tensors.

Each example is what :func:`vtg_core.backends.video_inputs.encode` returns (tensors with a batch
dimension of 1). Visual tensors of a Qwen batch are concatenated along their first dimension,
since the models take all videos' patches as one flat sequence plus ``video_grid_thw`` saying
where each video's patches are; InternVL's ``pixel_values`` (one row per frame) likewise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

IGNORE_INDEX = -100

# Per-token sequences and the value that pads each.
_SEQUENCE_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "labels", "token_type_ids")
# Per-video / per-image tensors, concatenated across the batch in example order.
_VISUAL_KEYS = (
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
    "pixel_values",
    "image_grid_thw",
)


class VideoCollator:
    """Callable that pads a list of encoded examples into one batch.

    ``padding_side="right"`` for training (labels line up with inputs either way, but right
    padding keeps position ids of real tokens identical to the unpadded example);
    ``"left"`` for generation, so every prompt ends at the last column.
    """

    def __init__(
        self, pad_token_id: int, *, padding_side: str = "right", pad_to_multiple_of: int | None = None
    ):
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.pad_token_id = int(pad_token_id)
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of

    @classmethod
    def for_processor(cls, processor: Any, **kwargs: Any) -> VideoCollator:
        """A collator padding with the processor's pad token (EOS when it has none)."""
        tok = processor.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if pad is None:
            raise ValueError("the tokenizer has neither a pad nor an EOS token to pad with")
        return cls(pad, **kwargs)

    def _pad_value(self, key: str) -> int:
        if key == "input_ids":
            return self.pad_token_id
        if key == "labels":
            return IGNORE_INDEX
        return 0

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        rows = [{k: _as_2d(v) if k in _SEQUENCE_KEYS else v for k, v in ex.items()} for ex in examples]
        length = max(r["input_ids"].shape[1] for r in rows)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            length = (length + m - 1) // m * m
        batch: dict[str, torch.Tensor] = {}
        seq_keys = [k for k in _SEQUENCE_KEYS if k in rows[0]]
        for key in seq_keys:
            padded = []
            for r in rows:
                if key not in r:
                    raise ValueError(f"example is missing {key!r} while others have it")
                t = r[key]
                pad = torch.full((1, length - t.shape[1]), self._pad_value(key), dtype=t.dtype)
                padded.append(torch.cat([t, pad] if self.padding_side == "right" else [pad, t], dim=1))
            batch[key] = torch.cat(padded, dim=0)
        for key in _VISUAL_KEYS:
            parts = [r[key] for r in rows if key in r and r[key] is not None]
            if parts:
                batch[key] = torch.cat([torch.as_tensor(p) for p in parts], dim=0)
        return batch


def _as_2d(t: Any) -> torch.Tensor:
    t = torch.as_tensor(t)
    return t.unsqueeze(0) if t.dim() == 1 else t
