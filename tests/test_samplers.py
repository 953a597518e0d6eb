"""Samplers: coverage and sharding across ranks, determinism, budgets, drop_last, logs, plugin registration."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from collections import Counter

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtg_core import hookspecs
from vtg_core.config import DurationBatchingConfig, TokenBatchingConfig, VtgConfig, load_config
from vtg_core.data.sample import Location, Sample
from vtg_core.errors import ConfigError, DataError
from vtg_core.samplers import (
    BatchStats,
    DurationBasedBatchSampler,
    RandomBatchSampler,
    SequentialBatchSampler,
    TokenBudgetBatchSampler,
    build_duration,
    build_random,
    build_token_budget,
    pack_by_budget,
)
from vtg_core.samplers import plugin as sampler_plugin


def all_ranks(make, world_size, epoch=0):
    """Each rank's batches for ``epoch``, from one sampler per rank built by ``make(rank)``."""
    out = []
    for rank in range(world_size):
        sampler = make(rank)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        out.append(batches)
    return out


def flat(per_rank):
    return [i for batches in per_rank for batch in batches for i in batch]


def samples_of(durations):
    return [Sample(id=f"s{i}", video=f"v{i}.mp4", duration=d, query="q", source=Location("a.jsonl", i + 1))
            for i, d in enumerate(durations)]


durations_st = st.lists(st.floats(min_value=0.5, max_value=400.0, allow_nan=False), min_size=0, max_size=120)


# ---- duration batching: properties --------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(durations=durations_st, world_size=st.integers(1, 8), target=st.floats(20.0, 1500.0),
       min_bs=st.integers(1, 3), max_bs=st.one_of(st.none(), st.integers(3, 12)), seed=st.integers(0, 99),
       epoch=st.integers(0, 5))
def test_duration_sharding_properties(durations, world_size, target, min_bs, max_bs, seed, epoch):
    def make(rank):
        return DurationBasedBatchSampler(durations, target_batch_duration=target, min_batch_size=min_bs,
                                         max_batch_size=max_bs, rank=rank, world_size=world_size, seed=seed)

    per_rank = all_ranks(make, world_size, epoch)
    lengths = {len(b) for b in per_rank}
    assert len(lengths) == 1, "every rank must get the same number of batches"
    counts = Counter(flat(per_rank))
    assert set(counts) == set(range(len(durations))), "every sample is seen in the epoch"
    ref = make(0)
    if len(ref.batches) % world_size == 0:
        # Nothing had to be repeated: each sample exactly once, on exactly one rank.
        assert all(c == 1 for c in counts.values())
        rank_sets = [{i for b in batches for i in b} for batches in per_rank]
        assert sum(len(s) for s in rank_sets) == len(durations)
    else:
        assert len(ref.batches) < world_size or all(len(b) < 2 * min_bs for b in ref.batches)
    for batch in ref.batches:
        total = sum(durations[i] for i in batch)
        if max_bs is not None:
            assert len(batch) <= max_bs
        if min_bs == 1 and len(batch) > 1:
            assert total <= target + 1e-9, "target respected except by a lone oversize sample"
    assert sum(1 for b in ref.batches if len(b) < min_bs) <= 1, "only the final leftover may be short"


@settings(max_examples=60, deadline=None)
@given(durations=durations_st, world_size=st.integers(1, 6), target=st.floats(20.0, 800.0), seed=st.integers(0, 9))
def test_duration_drop_last_properties(durations, world_size, target, seed):
    def make(rank):
        return DurationBasedBatchSampler(durations, target_batch_duration=target, drop_last=True,
                                         rank=rank, world_size=world_size, seed=seed)

    per_rank = all_ranks(make, world_size, epoch=1)
    assert len({len(b) for b in per_rank}) == 1
    counts = Counter(flat(per_rank))
    assert all(c == 1 for c in counts.values()), "drop_last never repeats"
    assert not set(counts) & set(make(0).dropped)


def test_every_sample_once_with_realistic_data():
    import random

    rng = random.Random(1)
    durations = [rng.lognormvariate(4.5, 0.8) for _ in range(997)]
    for world_size in (1, 2, 3, 4, 8):
        per_rank = all_ranks(lambda r, ws=world_size: DurationBasedBatchSampler(
            durations, target_batch_duration=1200.0, rank=r, world_size=ws, seed=3), world_size, epoch=2)
        assert sorted(flat(per_rank)) == list(range(len(durations)))
        assert len({len(b) for b in per_rank}) == 1


def test_oversize_sample_gets_its_own_batch():
    sampler = DurationBasedBatchSampler([10.0, 5000.0, 20.0, 3000.0, 30.0], target_batch_duration=100.0)
    assert sorted(sorted(b) for b in sampler) == [[0, 2, 4], [1], [3]]


def test_oversize_sample_is_kept_with_drop_last():
    sampler = DurationBasedBatchSampler([10.0, 500.0], target_batch_duration=100.0, drop_last=True)
    assert sorted(sorted(b) for b in sampler) == [[0], [1]]


def test_min_and_max_batch_size():
    durations = [50.0] * 10
    packed, _ = pack_by_budget(durations, 100.0, min_batch_size=3)
    assert [len(b) for b in packed] == [3, 3, 3, 1]  # min wins over the budget; leftover stays
    packed, _ = pack_by_budget([1.0] * 10, 1000.0, max_batch_size=4)
    assert [len(b) for b in packed] == [4, 4, 2]


def test_drop_last_drops_only_the_incomplete_final_batch(caplog):
    durations = [40.0] * 7  # batches of 2 (80s) with target 100: the 7th clip is alone at 40s
    with caplog.at_level(logging.INFO, logger="vtg_core.samplers"):
        kept = DurationBasedBatchSampler(durations, target_batch_duration=100.0, drop_last=False)
        dropped = DurationBasedBatchSampler(durations, target_batch_duration=100.0, drop_last=True)
    assert len(kept) == 4 and len(dropped) == 3
    assert dropped.dropped == [6]
    assert "1 samples of the final, incomplete batch are left out" in caplog.text
    full = DurationBasedBatchSampler([50.0] * 4, target_batch_duration=100.0, drop_last=True)
    assert len(full) == 2  # the last batch reached the target: nothing dropped


def test_splitting_keeps_counts_equal_without_repeats():
    # 5 batches of 2 for 4 ranks: split to 8 batches, every sample once.
    sampler = DurationBasedBatchSampler([50.0] * 10, target_batch_duration=100.0, world_size=4)
    assert len(sampler.batches) == 8 and len(sampler) == 2


def test_fewer_samples_than_ranks_repeats_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="vtg_core.samplers"):
        per_rank = all_ranks(lambda r: DurationBasedBatchSampler([10.0, 20.0], world_size=4, rank=r), 4)
    assert [len(b) for b in per_rank] == [1, 1, 1, 1]
    assert set(flat(per_rank)) == {0, 1}
    assert "repeating 2 batch(es)" in caplog.text


def test_no_samples():
    sampler = DurationBasedBatchSampler([], world_size=2, rank=1)
    assert len(sampler) == 0 and list(sampler) == []


def test_determinism_and_epoch_order():
    import random

    rng = random.Random(0)
    durations = [rng.uniform(5, 200) for _ in range(500)]

    def order(seed, epoch, rank=0):
        s = DurationBasedBatchSampler(durations, target_batch_duration=600.0, seed=seed, rank=rank, world_size=2)
        s.set_epoch(epoch)
        return list(s)

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)
    both = order(1, 0) + order(1, 0, rank=1)
    assert sorted(map(sorted, both)) == sorted(map(sorted, order(1, 3) + order(1, 3, rank=1)))  # same batches
    assert order(1, 0) != order(1, 0, rank=1)


def test_bad_durations_are_data_errors():
    with pytest.raises(DataError, match="sample #1 has duration nan"):
        DurationBasedBatchSampler([1.0, float("nan")])
    with pytest.raises(DataError, match=r"sample 's1' \(a.jsonl:2\) has duration None"):
        build_duration(samples_of([10.0, None]))
    with pytest.raises(ConfigError, match="rank must be"):
        DurationBasedBatchSampler([1.0], rank=2, world_size=2)
    with pytest.raises(ConfigError, match="budget must be a positive number"):
        DurationBasedBatchSampler([1.0], target_batch_duration=0)


def test_init_log_lines_match_seed_format(caplog):
    # Two extremes and 998 clips around them so the average is exactly 45.2 s, as in seed 000.
    rest = (45.2 * 1000 - 10.5 - 180.3) / 998
    durations = [10.5, 180.3] + [rest] * 998
    with caplog.at_level(logging.INFO, logger="vtg_core.samplers"):
        DurationBasedBatchSampler(durations, target_batch_duration=1200.0, rank=0, world_size=4)
    lines = [r.getMessage() for r in caplog.records]
    assert ("DurationBasedBatchSampler initialized: samples=1000, target_duration=1200.0s, "
            "avg_sample_duration=45.2s, expected_batch_size=26.5") in lines
    assert "Duration range: min=10.5s, max=180.3s" in lines
    assert "Distributed training: 4 GPUs, rank 0" in lines


def test_batch_stats_lines(caplog):
    stats = BatchStats(interval=10)
    sizes = [20, 28, 24, 24, 24, 24, 24, 24, 24, 27]
    lines = []
    with caplog.at_level(logging.INFO, logger="vtg_core.samplers"):
        for step, size in enumerate(sizes, start=1):
            stats.add(list(range(size)) if step % 2 else size)
            lines.append(stats.report(step))
    assert lines[:9] == [None] * 9
    assert lines[9] == "Step 10: batch_size avg=24.3, min=20, max=28"
    assert "Step 10: batch_size avg=24.3, min=20, max=28" in caplog.text
    assert stats.report(20) is None  # nothing since the last report


# ---- token budget -------------------------------------------------------------------------


def test_token_budget_with_injected_estimator():
    samples = samples_of([10.0, 20.0, 30.0, 40.0, 400.0])
    sampler = build_token_budget(samples, config=TokenBatchingConfig(max_visual_tokens=1000),
                                 estimate_tokens=lambda s: s.duration * 10)
    assert isinstance(sampler, TokenBudgetBatchSampler)
    assert sorted(sorted(b) for b in sampler) == [[0, 1, 2, 3], [4]]
    for batch in sampler.batches:
        assert len(batch) == 1 or sum(samples[i].duration * 10 for i in batch) <= 1000


def test_token_budget_default_estimator_uses_video_config(monkeypatch):
    calls = []

    def fake_estimate(duration, *, max_frames, fps, height, width, **options):
        calls.append((duration, max_frames, fps, height, width))
        return 100

    fake = types.ModuleType("vtg_core.data.video.tokens")
    fake.estimate_sample_tokens = fake_estimate
    monkeypatch.setitem(sys.modules, "vtg_core.data.video.tokens", fake)
    cfg = load_config([], ["token_batching.max_visual_tokens=250", "video.max_frames=8", "video.fps=2"])
    sampler = build_token_budget(samples_of([5.0, 6.0, 7.0]), config=cfg)
    assert calls[0] == (5.0, 8, 2.0, 384, 384)
    assert sorted(len(b) for b in sampler) == [1, 2]


def test_token_budget_with_the_real_estimator():
    pytest.importorskip("vtg_core.data.video.tokens")
    cfg = load_config([], ["video.fps=1", "video.max_frames=64", "token_batching.max_visual_tokens=4000"])
    sampler = build_token_budget(samples_of([4.0, 8.0, 30.0, 60.0, 120.0]), config=cfg)
    assert sorted(i for b in sampler for i in b) == [0, 1, 2, 3, 4]
    assert max(sampler.costs) > min(sampler.costs)  # tokens grow with duration at a fixed fps


def test_token_budget_log_lines(caplog):
    with caplog.at_level(logging.INFO, logger="vtg_core.samplers"):
        TokenBudgetBatchSampler([100, 300], max_visual_tokens=1000)
    assert ("TokenBudgetBatchSampler initialized: samples=2, max_visual_tokens=1000, avg_sample_tokens=200, "
            "expected_batch_size=5.0") in caplog.text
    assert "Tokens range: min=100, max=300" in caplog.text


# ---- fixed-size samplers ------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 60), batch_size=st.integers(1, 9), world_size=st.integers(1, 6),
       drop_last=st.booleans(), shuffle=st.booleans(), epoch=st.integers(0, 3))
def test_fixed_size_sharding_properties(n, batch_size, world_size, drop_last, shuffle, epoch):
    cls = RandomBatchSampler if shuffle else SequentialBatchSampler
    per_rank = all_ranks(lambda r: cls(n, batch_size, rank=r, world_size=world_size, seed=5,
                                       drop_last=drop_last), world_size, epoch)
    assert len({len(b) for b in per_rank}) == 1
    counts = Counter(flat(per_rank))
    assert all(len(b) <= batch_size for batches in per_rank for b in batches)
    if drop_last:
        assert all(c == 1 for c in counts.values())
        assert all(len(b) == batch_size for batches in per_rank for b in batches)
    else:
        assert set(counts) == set(range(n))
        # Splitting can reach any batch count up to n; only past that must batches repeat.
        chunks = -(-n // batch_size)
        if -(-chunks // world_size) * world_size <= n:
            assert all(c == 1 for c in counts.values())


def test_sequential_order_and_random_epochs():
    assert list(SequentialBatchSampler(7, 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    sampler = RandomBatchSampler(50, 4, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_fixed_size_factories_take_batch_size_from_config():
    cfg = VtgConfig()
    assert build_random(range(10), config=cfg).batch_size == cfg.training.per_device_train_batch_size
    cfg = load_config([], ["dataloader.batch_size=5"])
    assert build_random(range(10), config=cfg).batch_size == 5
    assert build_random(range(10), config=cfg, batch_size=3).batch_size == 3
    with pytest.raises(ConfigError, match="batch size"):
        build_random(range(10))


def test_duration_factory_reads_config_sections():
    samples = samples_of([30.0] * 10)
    cfg = load_config([], ["duration_batching.target_batch_duration=60", "duration_batching.enabled=true"])
    sampler = build_duration(samples, config=cfg, rank=1, world_size=2, seed=4)
    assert (sampler.rank, sampler.world_size, sampler.seed) == (1, 2, 4)
    assert all(len(b) <= 2 for b in sampler)
    assert len(build_duration(samples, config=DurationBatchingConfig(target_batch_duration=90))) == 4
    assert len(build_duration([{"duration": 1.0}, {"duration": 2.0}])) == 1


# ---- plugin and torch integration ---------------------------------------------------------


def test_plugin_registers_the_four_samplers():
    pm = pluggy.PluginManager("vtg")
    pm.add_hookspecs(hookspecs)
    pm.register(sampler_plugin)
    specs = [s for group in pm.hook.vtg_register_samplers() for s in group]
    assert [s.name for s in specs] == ["sequential", "random", "duration", "token_budget"]
    samples = samples_of([10.0, 20.0, 30.0])
    for spec in specs:
        kwargs = {"estimate_tokens": lambda s: 1} if spec.name == "token_budget" else {}
        sampler = spec.load()(samples, config=VtgConfig(), rank=0, world_size=1, seed=0, **kwargs)
        assert sorted(i for b in sampler for i in b) == [0, 1, 2]
    impl = pm.hook.vtg_register_samplers.get_hookimpls()[0]
    assert impl.trylast


def test_importing_samplers_and_config_stays_light():
    code = ("import sys, vtg_core.samplers, vtg_core.samplers.plugin, vtg_core.config; "
            "print([m for m in ('torch', 'numpy', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.torch
def test_usable_as_torch_batch_sampler():
    torch = pytest.importorskip("torch")
    data = torch.arange(20).float()
    sampler = DurationBasedBatchSampler([float(i + 1) for i in range(20)], target_batch_duration=30.0, seed=2)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
    seen = sorted(int(x) for batch in loader for x in batch)
    assert seen == list(range(20)) and len(loader) == len(sampler)


# ---- rank-aligned budget batching (GRPO) ---------------------------------------------------


@given(durations=durations_st, world_size=st.integers(2, 6), target=st.floats(20.0, 800.0),
       max_bs=st.one_of(st.none(), st.integers(1, 6)), seed=st.integers(0, 9), epoch=st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_aligned_duration_batches_are_equal_per_step_and_cover_every_sample(durations, world_size, target, max_bs,
                                                                           seed, epoch):
    def make(rank):
        return DurationBasedBatchSampler(durations, target_batch_duration=target, max_batch_size=max_bs, rank=rank,
                                         world_size=world_size, seed=seed, align_ranks=True)

    per_rank = all_ranks(make, world_size, epoch)
    assert len({len(b) for b in per_rank}) == 1  # the same number of steps everywhere
    for step in zip(*per_rank, strict=True):
        assert len({len(b) for b in step}) == 1  # the same number of prompts on every rank at each step
        for batch in step:  # each batch within the budget, unless one clip alone exceeds it
            assert len(batch) == 1 or sum(durations[i] for i in batch) <= target + 1e-9
            assert max_bs is None or len(batch) <= max_bs
    seen = Counter(flat(per_rank))
    assert set(seen) == set(range(len(durations)))  # every sample at least once
    assert sum(seen.values()) - len(durations) == (-len(durations)) % world_size  # only the padding repeats


def test_aligned_drop_last_leaves_out_the_remainder_instead():
    per_rank = all_ranks(lambda r: DurationBasedBatchSampler([10.0] * 7, target_batch_duration=20.0, rank=r,
                                                             world_size=2, drop_last=True, align_ranks=True), 2)
    assert sorted(flat(per_rank)) == sorted(set(flat(per_rank))) and len(flat(per_rank)) == 6


def test_aligned_token_budget_factory_passes_through():
    samples = samples_of([4.0, 5.0, 6.0, 7.0, 8.0])
    made = [build_token_budget(samples, config=TokenBatchingConfig(max_visual_tokens=2), rank=r, world_size=2,
                               estimate_tokens=lambda s: 1.0, align_ranks=True) for r in range(2)]
    steps = list(zip(*(list(m) for m in made), strict=True))
    assert all(len(a) == len(b) == 2 for a, b in steps[:-1])
