"""The embedder: the packaged model offline, one copy per process, batching and the reference cache."""

from __future__ import annotations

import numpy as np
import pytest
from vtg_rewards_refusal import sbert
from vtg_rewards_refusal.testing import table_embedder

from vtg_core.errors import ConfigError


def test_packaged_model_loads_offline_and_ranks_sensibly(real_embedder):
    # real_embedder was loaded with every socket connection refused (see conftest).
    assert real_embedder.name == sbert.default_model_path()
    assert sbert.get_embedder(None, device="cpu") is real_embedder  # one copy per process
    cooking = ["a person is cooking in the kitchen", "a dog runs across the park"]
    [best] = real_embedder.best_similarity(["a person is cooking pasta"], [cooking])
    vectors = real_embedder.encode(["a person is cooking pasta", *cooking])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors[1:] @ vectors[0]
    assert best == pytest.approx(float(sims.max()), abs=1e-5) and sims[0] > 0.5 > sims[1]


def test_batching_deduplicates_and_caches_only_references():
    emb = table_embedder({"a": [1, 0], "b": [0, 1], "c": [1, 1]})
    out = emb.best_similarity(["a", "a", "b", "c"], [["b", "c"], ["b", "c"], [], ["a"]])
    assert out[0] == out[1] == pytest.approx(np.sqrt(0.5)) and out[2] is None and out[3] == pytest.approx(np.sqrt(0.5))
    assert emb.encode_calls == 2 and emb.encoded_texts == 2 + 3  # unique queries, unique references
    emb.best_similarity(["b"], [["a", "c"]])
    assert emb.encode_calls == 3 and emb.encoded_texts == 6  # references cached, the query encoded
    assert emb.best_similarity([], []) == []


def test_cache_is_bounded():
    emb = sbert.Embedder(lambda texts: np.ones((len(texts), 3)), cache_size=2)
    emb.encode(["x", "y", "z"], cache=True)
    assert list(emb._cache) == ["y", "z"]
    with pytest.raises(ConfigError):
        sbert.Embedder(lambda t: t, cache_size=-1)


def test_model_resolution(tmp_path):
    assert sbert.resolve_model(None) == sbert.resolve_model("default") == sbert.default_model_path()
    assert sbert.resolve_model("sentence-transformers/all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
    (tmp_path / "m").mkdir()
    with pytest.raises(ConfigError, match="neither modules.json nor config.json"):
        sbert.resolve_model(tmp_path / "m")
    (tmp_path / "m" / "modules.json").write_text("[]")
    assert sbert.resolve_model(str(tmp_path / "m")) == str(tmp_path / "m")
    with pytest.raises(ConfigError, match="not a model directory"):
        sbert.resolve_model(str(tmp_path / "missing"))


def test_device_follows_the_local_rank(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert sbert.default_device() == "cuda:3"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sbert.default_device() == "cpu"
