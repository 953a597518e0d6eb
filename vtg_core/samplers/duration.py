"""Batches packed by a budget: total video seconds (duration) or estimated visual tokens.

With a fixed batch size, a batch of four 3-minute clips holds many times the frames of a batch of
four 10-second clips, so memory swings from batch to batch and the short-clip batches waste the
GPU. Packing by budget keeps every batch near the same load (seed 000's duration-based batching):

1. sort the samples by cost (ascending; ties by index, so the packing is the same on every rank),
2. fill a batch greedily while the next sample still fits the budget; a batch always takes at
   least ``min_batch_size`` samples and at most ``max_batch_size``; a sample costing more than the
   whole budget gets a batch of its own (it is never dropped silently),
3. shuffle the order of the batches each epoch with ``seed + epoch`` and shard them across ranks
   (see :mod:`vtg_core.samplers.basic` for how every rank gets the same number of batches).

Because neighbours in the sorted order have similar costs, a batch also pads little: the padding
benchmark (``benchmarks/bench_padding.py``) measures how much against fixed-size batches.
Batch composition is the same every epoch; only the order changes.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import ConfigError, DataError
from .basic import ShardedBatchSampler, split_to_multiple

logger = logging.getLogger(__name__)


def pack_by_budget(costs: Sequence[float], budget: float, *, min_batch_size: int = 1,
                   max_batch_size: int | None = None) -> tuple[list[list[int]], bool]:
    """Greedy packing of indices sorted by cost; returns the batches and whether the last is complete.

    The last batch is *complete* when it was closed by the budget or ``max_batch_size`` rather than
    by running out of samples; ``drop_last`` drops it only when it is not.
    """
    order = sorted(range(len(costs)), key=lambda i: (costs[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0.0
    for i in order:
        cost = costs[i]
        full = max_batch_size is not None and len(current) >= max_batch_size
        over = total + cost > budget and len(current) >= min_batch_size
        if current and (full or over):
            batches.append(current)
            current, total = [], 0.0
        current.append(i)
        total += cost
    if not current:
        return batches, True
    batches.append(current)
    last_complete = total >= budget or (max_batch_size is not None and len(current) >= max_batch_size)
    return batches, last_complete


class _BudgetBatchSampler(ShardedBatchSampler):
    """Shared logic of the duration and token samplers; subclasses name the unit for the logs."""

    unit_name = "cost"

    def __init__(self, costs: Sequence[float], budget: float, *, max_batch_size: int | None = None,
                 min_batch_size: int = 1, drop_last: bool = False, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1, seed: int = 0, ids: Sequence[str] | None = None,
                 align_ranks: bool = False):
        super().__init__(rank=rank, world_size=world_size, seed=seed, drop_last=drop_last)
        if not (isinstance(budget, int | float) and not isinstance(budget, bool) and budget > 0
                and math.isfinite(budget)):
            raise ConfigError(f"{type(self).__name__}: the budget must be a positive number, got {budget!r}")
        if not isinstance(min_batch_size, int) or min_batch_size < 1:
            raise ConfigError(f"min_batch_size must be an integer >= 1, got {min_batch_size!r}")
        if max_batch_size is not None and (not isinstance(max_batch_size, int) or max_batch_size < min_batch_size):
            raise ConfigError(f"max_batch_size must be null or an integer >= min_batch_size "
                              f"({min_batch_size}), got {max_batch_size!r}")
        self.costs = [self._check_cost(c, i, ids) for i, c in enumerate(costs)]
        self.budget = float(budget)
        self.max_batch_size = max_batch_size
        self.min_batch_size = min_batch_size
        self.shuffle = shuffle
        self.align_ranks = bool(align_ranks) and world_size > 1
        self.dropped: list[int] = []
        self.padded: list[int] = []
        if self.align_ranks:
            self.batches = self._pack_aligned()
        else:
            batches, last_complete = pack_by_budget(self.costs, self.budget, min_batch_size=min_batch_size,
                                                    max_batch_size=max_batch_size)
            if drop_last and batches and not last_complete:
                self.dropped = batches.pop()
            if not drop_last:
                batches = split_to_multiple(batches, world_size, min_batch_size=min_batch_size)
            self.batches = batches
        self._log_init()

    def _pack_aligned(self) -> list[list[int]]:
        """Batches in runs of ``world_size``, all of one run the same size (``align_ranks=True``).

        Samples sorted by cost are dealt out in tuples of ``world_size`` neighbours (similar costs);
        tuples are packed by the cost of their dearest member, and each packed run of tuples gives
        every rank one batch: rank ``r`` takes the ``r``-th sample of each tuple. So at every step
        each rank holds the same number of samples, each batch within the budget. That is what
        GRPO needs (TRL gathers the completions of all ranks into one tensor, which needs equal
        counts). When the sample count does not divide by ``world_size``, the last tuple is filled
        with the cheapest samples again (``drop_last``: left out instead).
        """
        world = self.world_size
        order = sorted(range(len(self.costs)), key=lambda i: (self.costs[i], i))
        tuples = [order[i: i + world] for i in range(0, len(order), world)]
        if tuples and len(tuples[-1]) < world:
            if self.drop_last:
                self.dropped = tuples.pop()
            else:
                self.padded = [order[i % len(order)] for i in range(world - len(tuples[-1]))]
                tuples[-1] = tuples[-1] + self.padded
        runs, _ = pack_by_budget([max(self.costs[i] for i in t) for t in tuples], self.budget,
                                 min_batch_size=self.min_batch_size, max_batch_size=self.max_batch_size)
        return [[tuples[t][r] for t in run] for run in runs for r in range(world)]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        if not self.align_ranks:
            return self._shuffled_batches(epoch)
        world = self.world_size
        runs = list(range(len(self.batches) // world))
        if self.shuffle:
            self.rng(epoch).shuffle(runs)
        return [list(self.batches[run * world + r]) for run in runs for r in range(world)]

    def _check_cost(self, cost: Any, index: int, ids: Sequence[str] | None) -> float:
        if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost) and cost >= 0:
            return float(cost)
        who = f"sample {ids[index]!r}" if ids is not None else f"sample #{index}"
        raise DataError(f"{type(self).__name__}: {who} has {self.unit_name} {cost!r}; "
                        f"it must be a finite number >= 0")

    def _shuffled_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(len(self.batches)))
        if self.shuffle:
            self.rng(epoch).shuffle(order)
        return [list(self.batches[i]) for i in order]

    # ---- logging -------------------------------------------------------------------------

    def _format(self, value: float) -> str:
        raise NotImplementedError

    def _log_init(self) -> None:
        if self.rank != 0:  # every rank packs the same batches: one report is enough
            return
        n = len(self.costs)
        avg = sum(self.costs) / n if n else 0.0
        expected = self.budget / avg if avg > 0 else float("inf")
        logger.info("%s initialized: samples=%d, %s, avg_sample_%s=%s, expected_batch_size=%.1f",
                    type(self).__name__, n, self._budget_text(), self.unit_name, self._format(avg), expected)
        if n:
            logger.info("%s range: min=%s, max=%s", self.unit_name.capitalize(),
                        self._format(min(self.costs)), self._format(max(self.costs)))
        if self.world_size > 1:
            logger.info("Distributed training: %d GPUs, rank %d", self.world_size, self.rank)
        sizes = [len(b) for b in self.batches]
        if sizes:
            logger.info("Packed %d batches (batch_size avg=%.1f, min=%d, max=%d), %d per rank",
                        len(sizes), sum(sizes) / len(sizes), min(sizes), max(sizes), len(self))
        oversize = sum(1 for c in self.costs if c > self.budget)
        if oversize:
            logger.info("%d samples exceed the budget of %s on their own and get a batch each",
                        oversize, self._format(self.budget))
        if self.dropped:
            logger.info("drop_last: %d samples of the final, incomplete batch are left out of every epoch",
                        len(self.dropped))
        if self.padded:
            logger.warning("%d samples cannot be shared evenly by %d ranks: %d sample(s) are seen twice per epoch",
                           n, self.world_size, len(self.padded))

    def _budget_text(self) -> str:
        raise NotImplementedError


class DurationBasedBatchSampler(_BudgetBatchSampler):
    """Batches whose clips add up to at most ``target_batch_duration`` seconds (seed 000).

    >>> sampler = DurationBasedBatchSampler([30.0, 40.0, 100.0, 20.0], target_batch_duration=100.0)
    >>> sorted(sorted(b) for b in sampler)
    [[0, 1, 3], [2]]
    """

    unit_name = "duration"

    def __init__(self, durations: Sequence[float], *, target_batch_duration: float = 1200.0,
                 max_batch_size: int | None = None, min_batch_size: int = 1, drop_last: bool = False,
                 shuffle: bool = True, rank: int = 0, world_size: int = 1, seed: int = 0,
                 ids: Sequence[str] | None = None, align_ranks: bool = False):
        super().__init__(durations, target_batch_duration, max_batch_size=max_batch_size,
                         min_batch_size=min_batch_size, drop_last=drop_last, shuffle=shuffle, rank=rank,
                         world_size=world_size, seed=seed, ids=ids, align_ranks=align_ranks)

    @property
    def target_batch_duration(self) -> float:
        return self.budget

    def _format(self, value: float) -> str:
        return f"{value:.1f}s"

    def _budget_text(self) -> str:
        return f"target_duration={self.budget:.1f}s"


class TokenBudgetBatchSampler(_BudgetBatchSampler):
    """Batches whose estimated visual tokens add up to at most ``max_visual_tokens``."""

    unit_name = "tokens"

    def __init__(self, tokens: Sequence[float], *, max_visual_tokens: int = 16384,
                 max_batch_size: int | None = None, min_batch_size: int = 1, drop_last: bool = False,
                 shuffle: bool = True, rank: int = 0, world_size: int = 1, seed: int = 0,
                 ids: Sequence[str] | None = None, align_ranks: bool = False):
        super().__init__(tokens, max_visual_tokens, max_batch_size=max_batch_size,
                         min_batch_size=min_batch_size, drop_last=drop_last, shuffle=shuffle, rank=rank,
                         world_size=world_size, seed=seed, ids=ids, align_ranks=align_ranks)

    @property
    def max_visual_tokens(self) -> float:
        return self.budget

    def _format(self, value: float) -> str:
        return f"{value:.0f}"

    def _budget_text(self) -> str:
        return f"max_visual_tokens={self.budget:.0f}"


class BatchStats:
    """Batch sizes over a logging interval, for lines like ``Step 10: batch_size avg=24.3, min=20, max=28``.

    Call :meth:`add` with each batch (or its size) and :meth:`report` at each step; it returns
    (and logs) the line every ``interval`` steps and starts a new interval.
    """

    def __init__(self, interval: int = 10, log: logging.Logger | None = None):
        if interval < 1:
            raise ConfigError(f"BatchStats interval must be >= 1, got {interval!r}")
        self.interval = interval
        self.log = log or logger
        self.sizes: list[int] = []

    def add(self, batch: int | Sequence[Any]) -> None:
        self.sizes.append(batch if isinstance(batch, int) else len(batch))

    def summary(self) -> str | None:
        if not self.sizes:
            return None
        return (f"batch_size avg={sum(self.sizes) / len(self.sizes):.1f}, "
                f"min={min(self.sizes)}, max={max(self.sizes)}")

    def report(self, step: int, *, force: bool = False) -> str | None:
        if not force and step % self.interval:
            return None
        summary = self.summary()
        self.sizes = []
        if summary is None:
            return None
        line = f"Step {step}: {summary}"
        self.log.info(line)
        return line


# ---- factories (registered by vtg_core.samplers.plugin) -----------------------------------


def _section(config: Any, name: str, cls: type) -> Any:
    if config is None:
        return cls()
    if isinstance(config, cls):
        return config
    if hasattr(config, name):
        return getattr(config, name)
    raise ConfigError(f"expected a VtgConfig or a {cls.__name__}, got {type(config).__name__}")


def _sample_field(sample: Any, name: str) -> Any:
    if isinstance(sample, dict):
        return sample.get(name)
    return getattr(sample, name, None)


def _describe_sample(sample: Any, index: int) -> str:
    sid = _sample_field(sample, "id")
    source = _sample_field(sample, "source")
    text = f"sample {sid!r}" if sid is not None else f"sample #{index}"
    return f"{text} ({source})" if source is not None else text


def sample_durations(samples: Iterable[Any]) -> list[float]:
    """Each sample's ``duration``; a clear :class:`DataError` for one without a usable duration."""
    out = []
    for i, sample in enumerate(samples):
        duration = _sample_field(sample, "duration")
        if not isinstance(duration, int | float) or isinstance(duration, bool) or not math.isfinite(duration) \
                or duration < 0:
            raise DataError(f"{_describe_sample(sample, i)} has duration {duration!r}; duration and token "
                            f"batching need each clip's length in seconds: add 'duration' to the annotation "
                            f"or use the 'random' sampler")
        out.append(float(duration))
    return out


def _ids(samples: Sequence[Any]) -> list[str] | None:
    ids = [_sample_field(s, "id") for s in samples]
    return None if any(i is None for i in ids) else [str(i) for i in ids]


def build_duration(samples: Sequence[Any], *, config: Any = None, rank: int = 0, world_size: int = 1,
                   seed: int = 0, align_ranks: bool = False) -> DurationBasedBatchSampler:
    """Factory of the ``duration`` sampler: ``config`` is a VtgConfig or a DurationBatchingConfig.

    ``align_ranks``: every rank gets the same number of samples at each step (GRPO needs it; see
    ``_BudgetBatchSampler._pack_aligned``)."""
    from ..config.schema import DurationBatchingConfig

    section = _section(config, "duration_batching", DurationBatchingConfig)
    return DurationBasedBatchSampler(
        sample_durations(samples), target_batch_duration=section.target_batch_duration,
        max_batch_size=section.max_batch_size, min_batch_size=section.min_batch_size,
        drop_last=section.drop_last, rank=rank, world_size=world_size, seed=seed, ids=_ids(samples),
        align_ranks=align_ranks)


def default_token_estimator(video: Any = None) -> Callable[[Any], float]:
    """``sample -> visual tokens`` from ``vtg_core.data.video.tokens.estimate_sample_tokens`` and the video section."""
    from ..config.schema import VideoConfig

    video = video or VideoConfig()
    try:
        from ..data.video.tokens import estimate_sample_tokens
    except ImportError as exc:
        raise ConfigError(f"the token_budget sampler needs vtg_core.data.video.tokens.estimate_sample_tokens "
                          f"({exc}); pass estimate_tokens= to build_token_budget instead") from exc
    # The clip's own frame size is not in a Sample; frames are resized to the configured
    # resolution anyway, so that is the size the tokens are counted at.
    estimate = functools.partial(estimate_sample_tokens, max_frames=video.max_frames, fps=video.fps,
                                 height=video.resolution.height, width=video.resolution.width,
                                 max_pixels=video.max_pixels)

    def estimate_tokens(sample: Any) -> float:
        return estimate(sample_durations([sample])[0])

    return estimate_tokens


def build_token_budget(samples: Sequence[Any], *, config: Any = None, rank: int = 0, world_size: int = 1,
                       seed: int = 0, estimate_tokens: Callable[[Any], float] | None = None,
                       align_ranks: bool = False) -> TokenBudgetBatchSampler:
    """Factory of the ``token_budget`` sampler: ``config`` is a VtgConfig or a TokenBatchingConfig.

    ``estimate_tokens(sample)`` gives a sample's visual tokens; by default it is computed from the
    sample's duration and ``config.video`` (frames, fps, resolution).
    """
    from ..config.schema import TokenBatchingConfig

    section = _section(config, "token_batching", TokenBatchingConfig)
    if estimate_tokens is None:
        estimate_tokens = default_token_estimator(getattr(config, "video", None))
    tokens = [estimate_tokens(s) for s in samples]
    return TokenBudgetBatchSampler(
        tokens, max_visual_tokens=section.max_visual_tokens, max_batch_size=section.max_batch_size,
        min_batch_size=section.min_batch_size, drop_last=section.drop_last, rank=rank,
        world_size=world_size, seed=seed, ids=_ids(samples), align_ranks=align_ranks)
