"""Fixtures of the refusal plugin's tests: an isolated registry, a table embedder, the real SBERT model.

The core's ``tests/conftest.py`` does not reach this folder, so the isolation it gives core
tests (fresh registry, no user VTG_* variables, one torch thread) is repeated here.
"""

from __future__ import annotations

import socket
import sys

import pytest


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch):
    from vtg_core import plugins

    for var in ("VTG_STRICT_PLUGINS", "VTG_DISABLE_PLUGINS", "VTG_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    plugins.set_registry(None)
    yield
    plugins.set_registry(None)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tiny models gain nothing from threads, and on a shared 2-core machine spin-waits cost a lot.
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _NoNetwork(RuntimeError):
    pass


@pytest.fixture(scope="session")
def real_embedder():
    """The packaged all-MiniLM-L6-v2, loaded once per session with every network connection refused.

    Refusing ``socket.connect`` proves the default model loads from the package's files alone,
    whatever HF_HUB_OFFLINE says. Later users of :func:`get_embedder` (the GRPO run) share it.
    """
    pytest.importorskip("sentence_transformers")
    from vtg_rewards_refusal.sbert import get_embedder

    def refuse(self, *args, **kwargs):
        raise _NoNetwork(f"network access while loading the SBERT model: {args}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        embedder = get_embedder(None, device="cpu")
        embedder.encode(["warm up"])
    return embedder
