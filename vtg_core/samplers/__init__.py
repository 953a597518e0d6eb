"""Built-in batch samplers: sequential, random, duration-based and visual-token-budget batching.

Each is an iterable of index lists with ``len()`` and ``set_epoch()``, usable as a
``torch.utils.data.DataLoader`` ``batch_sampler`` without this package importing torch. They are
registered as plugins in :mod:`vtg_core.samplers.plugin`; build one by name through the registry,
or directly with the factories here.
"""

from __future__ import annotations

from .basic import (
    RandomBatchSampler,
    SequentialBatchSampler,
    ShardedBatchSampler,
    build_random,
    build_sequential,
)
from .duration import (
    BatchStats,
    DurationBasedBatchSampler,
    TokenBudgetBatchSampler,
    build_duration,
    build_token_budget,
    pack_by_budget,
    sample_durations,
)

__all__ = [
    "BatchStats",
    "DurationBasedBatchSampler",
    "RandomBatchSampler",
    "SequentialBatchSampler",
    "ShardedBatchSampler",
    "TokenBudgetBatchSampler",
    "build_duration",
    "build_random",
    "build_sequential",
    "build_token_budget",
    "pack_by_budget",
    "sample_durations",
]
