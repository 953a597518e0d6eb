"""Test helpers: an embedder with hand-made vectors, so similarity-dependent code is testable exactly.

Plugin tests cannot import their ``conftest.py`` (pytest's importlib mode), and users testing
their own data with this plugin need the same thing, so it lives in the package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .sbert import Embedder


def table_embedder(table: Mapping[str, Sequence[float]]) -> Embedder:
    """An :class:`Embedder` whose vectors are looked up in ``table`` (unknown text is a ``KeyError``)."""

    def encode(texts: list[str]) -> np.ndarray:
        return np.array([table[t] for t in texts], dtype=np.float32)

    return Embedder(encode, name="table")


def unit(cosine: float) -> list[float]:
    """A 2-d unit vector whose cosine similarity with ``[1, 0]`` is ``cosine``."""
    return [cosine, math.sqrt(max(0.0, 1.0 - cosine * cosine))]
