"""Built-in rewards: ``temporal_iou``, ``segment_overlap``, ``step_consistency`` and ``composite``.

Each is a factory returning a callable with TRL's reward signature; they are registered by
:mod:`vtg_core.rewards.plugin` and looked up by name from a config's ``rewards:`` list. Nothing
here imports torch.
"""

from __future__ import annotations

from .composite import WeightedReward, build_rewards, composite
from .temporal import completion_text, segment_overlap, step_consistency, temporal_iou

__all__ = [
    "WeightedReward",
    "build_rewards",
    "completion_text",
    "composite",
    "segment_overlap",
    "step_consistency",
    "temporal_iou",
]
