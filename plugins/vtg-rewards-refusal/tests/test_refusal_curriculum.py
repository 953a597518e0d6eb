"""The refusal curriculum sampler: easy refusals first, widening per epoch, constant length, sharding."""

from __future__ import annotations

import pytest
from vtg_rewards_refusal.curriculum import RefusalCurriculumSampler, build_curriculum
from vtg_rewards_refusal.schema import Truth
from vtg_rewards_refusal.testing import table_embedder, unit

from vtg_core.config.schema import VtgConfig
from vtg_core.data.sample import Sample
from vtg_core.errors import ConfigError, DataError


def samples(similarities, answerable=4, field="refusal_similarity"):
    out = [Sample(id=f"a{i}", video=None, duration=5.0, query=f"a{i}", answer=Truth("answerable", [(1.0, 2.0)]),
                  metadata={}) for i in range(answerable)]
    for i, sim in enumerate(similarities):
        meta = {} if sim is None else {field: sim}
        out.append(Sample(id=f"r{i}", video=None, duration=5.0, query=f"r{i}",
                          answer=Truth("refusable", [], [f"ref{i}"]), metadata=meta))
    return out


SIMS = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2]  # refusable indices 4..9; easiest (lowest) first: 5, 9, 7, 6, 8, 4


def test_stages_unlock_the_easiest_first_and_keep_the_length():
    data = samples(SIMS)
    sampler = build_curriculum(data, batch_size=3, seed=1)
    assert sampler.pool == [5, 9, 7, 6, 8, 4]
    seen = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        items = [i for batch in sampler for i in batch]
        assert len(items) == 10 and len(sampler) == 4  # same count every epoch
        assert sorted(i for i in items if i < 4) == [0, 1, 2, 3]  # every answerable sample once
        seen.append({i for i in items if i >= 4})
    assert seen[0] == {5, 9}          # epoch 0: the easiest third
    assert seen[1] == {5, 9, 7, 6}    # epoch 1: two thirds
    assert seen[2] == seen[3] == {5, 9, 7, 6, 8, 4}  # then all, and the last stage repeats
    sampler.set_epoch(0)
    assert list(sampler) == list(build_curriculum(data, batch_size=3, seed=1))  # reproducible


def test_high_similarity_mode_and_custom_stages_from_the_config():
    config = VtgConfig(task="refusal_grounding",
                       task_options={"curriculum": {"stages": [0.5, 1.0], "easy": "high_similarity"}})
    config.training.per_device_train_batch_size = 5
    sampler = build_curriculum(samples(SIMS), config=config, seed=0)
    assert sampler.batch_size == 5 and sampler.pool == [4, 8, 6, 7, 9, 5]
    assert set(i for b in sampler for i in b if i >= 4) == {4, 8, 6}


def test_sharding_gives_every_rank_the_same_number_of_batches():
    data = samples(SIMS, answerable=5)
    ranks = [build_curriculum(data, batch_size=2, rank=r, world_size=2, seed=3) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    batches = [list(s) for s in ranks]
    assert sum(len(b) for r in batches for b in r) == 11


def test_scores_come_from_sbert_when_the_field_is_missing():
    data = samples([None, None, None], answerable=1)
    table = {"r0": [1.0, 0.0], "r1": [1.0, 0.0], "r2": [1.0, 0.0],
             "ref0": unit(0.9), "ref1": unit(0.1), "ref2": unit(0.5)}
    sampler = build_curriculum(data, batch_size=2, embedder=table_embedder(table))
    assert sampler.pool == [2, 3, 1]


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="must end at 1.0"):
        build_curriculum(samples(SIMS), batch_size=2, options={"stages": [0.5]})
    with pytest.raises(ConfigError, match="unknown key"):
        build_curriculum(samples(SIMS), batch_size=2, options={"stage": [1.0]})
    with pytest.raises(ConfigError, match="easy"):
        build_curriculum(samples(SIMS), batch_size=2, options={"easy": "hardest"})
    with pytest.raises(ConfigError, match="batch size"):
        build_curriculum(samples(SIMS))
    grounding = [Sample(id="g", video=None, duration=1.0, query="q", answer=(0.0, 1.0))]
    with pytest.raises(DataError, match="refusal_grounding"):
        build_curriculum(grounding, batch_size=2)
    with pytest.raises(DataError, match="difficulty score"):
        RefusalCurriculumSampler([True], [None], 1)


def test_registered_as_a_sampler():
    from vtg_rewards_refusal import plugin

    from vtg_core.testing import fresh_registry

    registry = fresh_registry(("rewards_refusal", plugin))
    factory = registry.get("sampler", "refusal_curriculum").load()
    config = VtgConfig(task="refusal_grounding")
    config.training.per_device_train_batch_size = 4
    sampler = factory(samples(SIMS), config=config, rank=0, world_size=1, seed=0)
    assert len(sampler) == 3
