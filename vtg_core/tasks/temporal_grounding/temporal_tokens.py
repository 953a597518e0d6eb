"""Temporal tokens: ``<0>``..``<N-1>`` added to the vocabulary so a time is one token.

The clip is mapped onto ``num_bins`` evenly spaced points, both ends included: bin ``i`` is the
time ``i / (num_bins - 1) * duration``. Including both ends lets a segment that starts at 0 or
runs to the end of the clip be written exactly, which centre-of-bin schemes cannot. The
resolution is ``duration / (num_bins - 1)``.

Torch is imported inside :func:`init_temporal_embeddings` only.
"""

from __future__ import annotations

import math
from typing import Any

MAX_BINS = 100_000  # a sanity bound: more tokens than this is a config mistake, not a resolution


def _check_bins(num_bins: Any) -> int:
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or not 2 <= num_bins <= MAX_BINS:
        raise ValueError(f"num_bins must be an integer in [2, {MAX_BINS}], got {num_bins!r}")
    return num_bins


def temporal_token_strings(num_bins: int) -> list[str]:
    """``["<0>", "<1>", ..., "<num_bins-1>"]``."""
    return [f"<{i}>" for i in range(_check_bins(num_bins))]


def time_to_bin(seconds: float, duration: float, num_bins: int) -> int:
    """The nearest bin of a time, clamped to the clip."""
    _check_bins(num_bins)
    if not (duration > 0 and math.isfinite(duration)):
        raise ValueError(f"duration must be a positive finite number, got {duration!r}")
    fraction = min(max(seconds / duration, 0.0), 1.0)
    return round(fraction * (num_bins - 1))


def bin_to_time(index: int, duration: float, num_bins: int) -> float:
    """The time of bin ``index`` (``0`` -> 0 s, ``num_bins - 1`` -> ``duration``)."""
    _check_bins(num_bins)
    return index / (num_bins - 1) * duration


def _text_tokenizer(tokenizer: Any) -> Any:
    # A processor wraps its tokenizer; the tokens belong to the latter.
    inner = getattr(tokenizer, "tokenizer", None)
    return inner if inner is not None and hasattr(inner, "add_tokens") else tokenizer


def add_temporal_tokens(tokenizer: Any, num_bins: int) -> list[int]:
    """Add ``<0>``..``<N-1>`` as whole tokens; return their ids in bin order.

    Works with a ``tokenizers.Tokenizer``, a transformers tokenizer, or a processor holding one.
    Tokens are added as *non-special* added tokens with ``normalized=False``: they are never split
    by the model's pre-tokenizer, and ``decode(skip_special_tokens=True)`` keeps them, so the
    parser can read generated answers. Adding twice is harmless (same ids). The caller resizes the
    model's embeddings (``model.resize_token_embeddings(len(tokenizer))``) and may initialise them
    with :func:`init_temporal_embeddings`.
    """
    from tokenizers import AddedToken

    tok = _text_tokenizer(tokenizer)
    strings = temporal_token_strings(num_bins)
    tok.add_tokens([AddedToken(s, single_word=False, lstrip=False, rstrip=False, normalized=False) for s in strings])
    if hasattr(tok, "convert_tokens_to_ids"):
        ids = tok.convert_tokens_to_ids(strings)
    else:
        ids = [tok.token_to_id(s) for s in strings]
    unk = getattr(tok, "unk_token_id", None)
    missing = [s for s, i in zip(strings, ids, strict=True) if i is None or (unk is not None and i == unk)]
    if missing:
        raise RuntimeError(f"tokenizer did not add temporal tokens {missing[:3]}...")
    return list(ids)


STRATEGIES = ("sinusoidal", "mean", "random")


def init_temporal_embeddings(embedding_weight: Any, token_ids: list[int], strategy: str = "sinusoidal",
                             *, seed: int = 0) -> None:
    """Initialise the rows ``token_ids`` of an embedding matrix (``(vocab, dim)``) in place.

    Statistics come from the other rows, so the new rows sit where the model's embeddings live:

    - ``mean``: every new row is the mean embedding (the usual choice for added tokens).
    - ``sinusoidal``: the mean plus a sinusoidal position code of the bin index, scaled to the
      embeddings' per-dimension standard deviation: neighbouring bins start similar and ordered,
      yet distinguishable.
    - ``random``: normal draws with the embeddings' mean and standard deviation (``seed``).
    """
    import torch

    if strategy not in STRATEGIES:
        raise ValueError(f"embedding_init_strategy must be one of {STRATEGIES}, got {strategy!r}")
    weight = embedding_weight
    vocab, dim = weight.shape
    ids = torch.as_tensor(list(token_ids), dtype=torch.long)
    if ids.numel() == 0:
        return
    if int(ids.max()) >= vocab or int(ids.min()) < 0:
        raise ValueError(f"token id {int(ids.max())} outside the embedding matrix ({vocab} rows); "
                         "resize the model's token embeddings first")
    with torch.no_grad():
        keep = torch.ones(vocab, dtype=torch.bool, device=weight.device)
        keep[ids.to(weight.device)] = False
        base = weight[keep].float() if bool(keep.any()) else weight.float()
        mean = base.mean(dim=0)
        std = base.std(dim=0) if base.shape[0] > 1 else torch.ones_like(mean)
        n = ids.numel()
        if strategy == "mean":
            rows = mean.expand(n, dim).clone()
        elif strategy == "random":
            gen = torch.Generator().manual_seed(seed)
            rows = torch.randn(n, dim, generator=gen).to(mean.device) * std + mean
        else:
            position = torch.arange(n, dtype=torch.float32).unsqueeze(1)
            freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
            code = torch.zeros(n, dim)
            code[:, 0::2] = torch.sin(position * freq)
            code[:, 1::2] = torch.cos(position * freq[: dim // 2])
            rows = mean + code.to(mean.device) * std
        weight[ids.to(weight.device)] = rows.to(weight.dtype)
