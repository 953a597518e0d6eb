"""Fixed-size batch samplers (sequential, random) and the sharding every vtg sampler shares.

A vtg sampler is a *batch* sampler: iterating it yields lists of sample indices, ``len()`` is the
number of batches this rank gets per epoch, and ``set_epoch(epoch)`` changes the order. That is
the duck type ``torch.utils.data.DataLoader(batch_sampler=...)`` accepts, so nothing here imports
torch.

Distributed training: every rank builds the same list of batches for an epoch (same samples, same
seed), then takes every ``world_size``-th batch starting at its rank. Each rank must get the same
number of batches, or the ranks that finish early wait forever in the next collective. When the
count does not divide evenly:

- ``drop_last=False`` (default): the largest batches are split in two until it does, so every
  sample is still seen exactly once per epoch. Only when there is nothing left to split (fewer
  samples than ranks, or ``min_batch_size`` forbids smaller batches) are batches repeated from the
  start of the epoch's order, as ``torch.utils.data.DistributedSampler`` pads; a warning says so.
- ``drop_last=True``: the surplus batches at the end of the epoch's (shuffled) order are dropped,
  so different samples are left out in different epochs.

A sampler used with accelerate must not be sharded a second time: pass ``rank`` / ``world_size``
here and keep accelerate from splitting the batch sampler again (or pass ``world_size=1`` and let
accelerate shard).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ConfigError

logger = logging.getLogger(__name__)


def split_to_multiple(batches: list[list[int]], world_size: int, *, min_batch_size: int = 1) -> list[list[int]]:
    """Split the largest batches in two until ``len(batches)`` is a multiple of ``world_size``.

    Deterministic (same input, same output on every rank). Stops early when no batch has at least
    ``2 * min_batch_size`` items; the caller pads what is left.
    """
    out = [list(b) for b in batches]
    if world_size <= 1:
        return out
    need = (-len(out)) % world_size
    while need:
        sizes = [len(b) for b in out]
        largest = max(range(len(out)), key=lambda i: (sizes[i], -i), default=None)
        if largest is None or sizes[largest] < 2 * max(1, min_batch_size):
            break
        batch = out[largest]
        half = len(batch) // 2
        out[largest: largest + 1] = [batch[:half], batch[half:]]
        need -= 1
    return out


def equalize(batches: list[list[int]], world_size: int, *, drop_last: bool) -> list[list[int]]:
    """Make ``len(batches)`` a multiple of ``world_size``: drop the surplus at the end, or repeat from the start."""
    if world_size <= 1 or not batches:
        return batches
    surplus = len(batches) % world_size
    if not surplus:
        return batches
    if drop_last:
        return batches[: len(batches) - surplus]
    need = world_size - surplus
    return batches + [list(batches[i % len(batches)]) for i in range(need)]


def check_rank(rank: int, world_size: int) -> None:
    if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
        raise ConfigError(f"world_size must be a positive integer, got {world_size!r}")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < world_size:
        raise ConfigError(f"rank must be an integer in [0, {world_size}), got {rank!r}")


class ShardedBatchSampler:
    """Base of vtg's batch samplers: subclasses say how an epoch's batches look, this shards them.

    Subclasses implement :meth:`epoch_batches`, which must return the same list on every rank for
    a given epoch and a count that does not depend on the epoch (``__len__`` is computed once).
    """

    def __init__(self, *, rank: int = 0, world_size: int = 1, seed: int = 0, drop_last: bool = False):
        check_rank(rank, world_size)
        self.rank = rank
        self.world_size = world_size
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._len: int | None = None
        self._padding_warned = False

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (call it before each epoch, as with ``DistributedSampler``)."""
        self.epoch = int(epoch)

    def rng(self, epoch: int) -> random.Random:
        # seed + epoch, as DistributedSampler does: every rank draws the same order.
        return random.Random(self.seed + epoch)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of ``epoch`` across all ranks, in order, before sharding."""
        raise NotImplementedError

    def global_batches(self, epoch: int | None = None) -> list[list[int]]:
        """The epoch's batches for all ranks, with the count made a multiple of ``world_size``."""
        epoch = self.epoch if epoch is None else epoch
        batches = self.epoch_batches(epoch)
        balanced = equalize(batches, self.world_size, drop_last=self.drop_last)
        if len(balanced) > len(batches) and not self._padding_warned:
            self._padding_warned = True
            logger.warning(
                "%s: %d batches cannot be shared evenly by %d ranks and none can be split further; "
                "repeating %d batch(es) each epoch so every rank gets %d",
                type(self).__name__, len(batches), self.world_size, len(balanced) - len(batches),
                len(balanced) // self.world_size,
            )
        return balanced

    def rank_batches(self, epoch: int | None = None) -> list[list[int]]:
        """The batches this rank gets in ``epoch`` (default: the current one)."""
        return self.global_batches(epoch)[self.rank:: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.rank_batches()

    def __len__(self) -> int:
        if self._len is None:
            self._len = len(self.rank_batches(0))
        return self._len


class _FixedSizeBatchSampler(ShardedBatchSampler):
    def __init__(self, num_samples: int, batch_size: int, *, shuffle: bool, rank: int = 0,
                 world_size: int = 1, seed: int = 0, drop_last: bool = False):
        super().__init__(rank=rank, world_size=world_size, seed=seed, drop_last=drop_last)
        if not isinstance(num_samples, int) or num_samples < 0:
            raise ConfigError(f"num_samples must be a non-negative integer, got {num_samples!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(self.num_samples))
        if self.shuffle:
            self.rng(epoch).shuffle(order)
        batches = [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if not self.drop_last:
            batches = split_to_multiple(batches, self.world_size)
        return batches


class SequentialBatchSampler(_FixedSizeBatchSampler):
    """Batches of ``batch_size`` in index order (evaluation, debugging); rank r gets batches r, r+W, ..."""

    def __init__(self, num_samples: int, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, drop_last: bool = False):
        super().__init__(num_samples, batch_size, shuffle=False, rank=rank, world_size=world_size,
                         seed=seed, drop_last=drop_last)


class RandomBatchSampler(_FixedSizeBatchSampler):
    """Batches of ``batch_size`` from a fresh shuffle each epoch (``seed + epoch``)."""

    def __init__(self, num_samples: int, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, drop_last: bool = False):
        super().__init__(num_samples, batch_size, shuffle=True, rank=rank, world_size=world_size,
                         seed=seed, drop_last=drop_last)


def _batch_size_from(config: Any, batch_size: int | None) -> int:
    if batch_size is not None:
        return batch_size
    if config is None:
        raise ConfigError("a fixed-size sampler needs a batch size: pass config or batch_size")
    if isinstance(config, int) and not isinstance(config, bool):
        return config
    if hasattr(config, "train_batch_size"):  # VtgConfig
        return config.train_batch_size
    if getattr(config, "batch_size", None) is not None:  # DataloaderConfig / ValidationConfig
        return config.batch_size
    if getattr(config, "per_device_train_batch_size", None) is not None:  # TrainingConfig
        return config.per_device_train_batch_size
    raise ConfigError(f"cannot tell the batch size from {type(config).__name__}; pass batch_size=")


def build_sequential(samples: Sequence[Any], *, config: Any = None, rank: int = 0, world_size: int = 1,
                     seed: int = 0, batch_size: int | None = None, drop_last: bool = False) -> SequentialBatchSampler:
    """Factory of the ``sequential`` sampler (registered by :mod:`vtg_core.samplers.plugin`)."""
    return SequentialBatchSampler(len(samples), _batch_size_from(config, batch_size), rank=rank,
                                  world_size=world_size, seed=seed, drop_last=drop_last)


def build_random(samples: Sequence[Any], *, config: Any = None, rank: int = 0, world_size: int = 1,
                 seed: int = 0, batch_size: int | None = None, drop_last: bool = False) -> RandomBatchSampler:
    """Factory of the ``random`` sampler (registered by :mod:`vtg_core.samplers.plugin`)."""
    return RandomBatchSampler(len(samples), _batch_size_from(config, batch_size), rank=rank,
                              world_size=world_size, seed=seed, drop_last=drop_last)
