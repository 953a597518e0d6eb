"""The ``refusal_curriculum`` batch sampler: easy refusable queries first, widening every epoch.

Seed 001's curriculum trains on easy refusable samples in the first epoch, a wider pool in the
second and all of them from the third. Here a refusable sample's difficulty is the similarity of
its query to its references (the answerable queries it should be corrected to):

- ``easy: low_similarity`` (default): a query far from anything in the video ("a person plays
  basketball" in a cooking clip) is easy to refuse; a near miss ("the red circle" where there is a
  red square) is hard. The seed's code comment says "Easy samples (high similarity)", which reads
  the other way round; ``easy: high_similarity`` follows that comment literally.
- The score is the metadata field ``score_field`` (default ``refusal_similarity``) when every
  refusable sample has a number there, else the best SBERT cosine of the query to its references
  (one batched pass, the model the rewards use).

Epoch ``e`` unlocks the easiest ``stages[e]`` share of the refusable samples (the last stage
repeats; default ``[1/3, 2/3, 1]``). Every epoch has the same number of items, which samplers
must keep constant (``__len__``): every answerable sample once, and as many refusable slots as
there are refusable samples, filled by cycling through the unlocked ones in a seeded order, so
early epochs see the easy refusals more than once rather than fewer samples in total.

Options live in ``task_options.curriculum`` (the core has no per-sampler options)::

    task: refusal_grounding
    task_options:
      curriculum: {stages: [0.34, 0.67, 1.0], easy: low_similarity}
    dataloader:
      sampler: refusal_curriculum

Sharding, ``set_epoch`` and ``drop_last`` follow the core's samplers
(:class:`~vtg_core.samplers.basic.ShardedBatchSampler`). Nothing here imports torch; the SBERT
model loads only when scores must be computed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from vtg_core.errors import ConfigError, DataError
from vtg_core.samplers.basic import ShardedBatchSampler, split_to_multiple

log = logging.getLogger(__name__)

EASY_MODES = ("low_similarity", "high_similarity")
DEFAULT_STAGES = (1 / 3, 2 / 3, 1.0)


@attrs.frozen
class CurriculumOptions:
    """``task_options.curriculum``: ``stages``, ``easy``, ``score_field``, ``sbert_model``, ``shuffle``."""

    stages: tuple[float, ...] = DEFAULT_STAGES
    easy: str = "low_similarity"
    score_field: str = "refusal_similarity"
    sbert_model: str | None = None
    shuffle: bool = True

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any] | None) -> CurriculumOptions:
        """Validated options; ``None`` gives the defaults. Errors name ``task_options.curriculum.<key>``."""
        if value is None:
            return cls()
        if isinstance(value, CurriculumOptions):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"task_options.curriculum must be a mapping, got {value!r}")
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"task_options.curriculum: unknown key(s) {unknown}; known: {sorted(known)}")
        opts = dict(value)
        stages = opts.get("stages", DEFAULT_STAGES)
        if isinstance(stages, str | bytes) or not isinstance(stages, Sequence) or not stages:
            raise ConfigError(f"task_options.curriculum.stages must be a non-empty list of fractions, got {stages!r}")
        checked = []
        for i, s in enumerate(stages):
            if isinstance(s, bool) or not isinstance(s, int | float) or not (0 < s <= 1):
                raise ConfigError(f"task_options.curriculum.stages[{i}] must be a number in (0, 1], got {s!r}")
            if checked and s < checked[-1]:
                raise ConfigError(f"task_options.curriculum.stages must not shrink: {list(stages)}")
            checked.append(float(s))
        if checked[-1] != 1.0:
            raise ConfigError(f"task_options.curriculum.stages must end at 1.0 (every refusable sample "
                              f"eventually), got {list(stages)}")
        opts["stages"] = tuple(checked)
        if opts.get("easy", "low_similarity") not in EASY_MODES:
            raise ConfigError(f"task_options.curriculum.easy must be one of {EASY_MODES}, got {opts['easy']!r}")
        field = opts.get("score_field", "refusal_similarity")
        if not isinstance(field, str) or not field:
            raise ConfigError(f"task_options.curriculum.score_field must be a field name, got {field!r}")
        if not isinstance(opts.get("shuffle", True), bool):
            raise ConfigError(f"task_options.curriculum.shuffle must be true or false, got {opts['shuffle']!r}")
        model = opts.get("sbert_model")
        if model is not None and not isinstance(model, str):
            raise ConfigError(f"task_options.curriculum.sbert_model must be a path, a model id or null, got {model!r}")
        return cls(**opts)


class RefusalCurriculumSampler(ShardedBatchSampler):
    """Fixed-size batches; refusable samples unlocked easiest first (see the module docstring).

    ``refusable[i]``: whether sample ``i`` is refusable; ``scores[i]``: its similarity (ignored for
    answerable samples).
    """

    def __init__(self, refusable: Sequence[bool], scores: Sequence[float | None], batch_size: int, *,
                 stages: Sequence[float] = DEFAULT_STAGES, easy: str = "low_similarity", shuffle: bool = True,
                 rank: int = 0, world_size: int = 1, seed: int = 0, drop_last: bool = False):
        super().__init__(rank=rank, world_size=world_size, seed=seed, drop_last=drop_last)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if len(refusable) != len(scores):
            raise ValueError(f"{len(refusable)} samples but {len(scores)} scores")
        options = CurriculumOptions.from_mapping({"stages": list(stages), "easy": easy, "shuffle": shuffle})
        self.batch_size = batch_size
        self.stages = options.stages
        self.easy = options.easy
        self.shuffle = shuffle
        self.answerable = [i for i, r in enumerate(refusable) if not r]
        pool = [i for i, r in enumerate(refusable) if r]
        for i in pool:
            s = scores[i]
            if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s):
                raise DataError(f"refusable sample #{i} has no finite difficulty score ({s!r})")
        sign = 1.0 if self.easy == "low_similarity" else -1.0
        # Ties keep file order, so the same data gives the same curriculum everywhere.
        self.pool = sorted(pool, key=lambda i: (sign * float(scores[i]), i))
        log.info("refusal curriculum: %d answerable, %d refusable samples; stages %s (%s is easy)",
                 len(self.answerable), len(self.pool), [round(s, 3) for s in self.stages], self.easy)

    def unlocked(self, epoch: int) -> list[int]:
        """The refusable samples open in ``epoch``, easiest first."""
        if not self.pool:
            return []
        share = self.stages[min(max(epoch, 0), len(self.stages) - 1)]
        return self.pool[: max(1, math.ceil(share * len(self.pool) - 1e-9))]

    def epoch_order(self, epoch: int) -> list[int]:
        """Every item of ``epoch`` in order, before batching (refusable indices may repeat)."""
        rng = self.rng(epoch)
        open_ = self.unlocked(epoch)
        fill: list[int] = []
        while open_ and len(fill) < len(self.pool):
            cycle = list(open_)
            if self.shuffle:
                rng.shuffle(cycle)
            fill.extend(cycle)
        items = self.answerable + fill[: len(self.pool)]
        if self.shuffle:
            rng.shuffle(items)
        return items

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = self.epoch_order(epoch)
        batches = [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if not self.drop_last:
            batches = split_to_multiple(batches, self.world_size)
        return batches


def _truth(sample: Any, index: int) -> Any:
    from .schema import Truth

    truth = getattr(sample, "answer", None)
    if not isinstance(truth, Truth):
        raise DataError(f"refusal_curriculum: sample #{index} ({getattr(sample, 'id', '?')!r}) was not read by "
                        "the refusal_grounding task; use this sampler with --task refusal_grounding")
    return truth


def difficulty_scores(samples: Sequence[Any], options: CurriculumOptions, embedder: Any = None) -> list[float | None]:
    """Each refusable sample's similarity score (``None`` for answerable ones); see the module docstring."""
    truths = [_truth(s, i) for i, s in enumerate(samples)]
    refusable = [i for i, t in enumerate(truths) if t.refusable]
    out: list[float | None] = [None] * len(samples)
    given = [samples[i].metadata.get(options.score_field) for i in refusable]
    if all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in given):
        for i, v in zip(refusable, given, strict=True):
            out[i] = float(v)
        return out
    if any(v is not None for v in given):
        log.warning("refusal_curriculum: %r is missing or not a number on some refusable samples; "
                    "scoring all of them with SBERT instead", options.score_field)
    if embedder is None:
        from .sbert import get_embedder

        embedder = get_embedder(options.sbert_model)
    sims = embedder.best_similarity([samples[i].query for i in refusable],
                                    [list(truths[i].references) for i in refusable])
    for i, sim in zip(refusable, sims, strict=True):
        if sim is None:
            raise DataError(f"refusal_curriculum: refusable sample {samples[i].id!r} has no references to score")
        out[i] = sim
    return out


def _batch_size(config: Any, batch_size: int | None) -> int:
    if batch_size is not None:
        return batch_size
    if config is not None and hasattr(config, "train_batch_size"):
        return int(config.train_batch_size)
    raise ConfigError("refusal_curriculum needs a batch size: pass config (a VtgConfig) or batch_size=")


def build_curriculum(samples: Sequence[Any], *, config: Any = None, rank: int = 0, world_size: int = 1,
                     seed: int = 0, batch_size: int | None = None, options: Mapping[str, Any] | None = None,
                     drop_last: bool = False, embedder: Any = None) -> RefusalCurriculumSampler:
    """Factory of the ``refusal_curriculum`` sampler (the core's sampler factory signature).

    Options come from ``options`` or ``config.task_options["curriculum"]``.
    """
    if options is None and config is not None:
        options = (getattr(config, "task_options", None) or {}).get("curriculum")
    opts = CurriculumOptions.from_mapping(options)
    scores = difficulty_scores(samples, opts, embedder)
    refusable = [s is not None for s in scores]
    return RefusalCurriculumSampler(refusable, scores, _batch_size(config, batch_size), stages=opts.stages,
                                    easy=opts.easy, shuffle=opts.shuffle, rank=rank, world_size=world_size,
                                    seed=seed, drop_last=drop_last)
