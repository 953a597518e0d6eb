"""Shared test fixtures: the real clip folder, a fresh registry per test, and a CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = Path(os.environ.get("VTG_SHARED_VIDEOS", REPO_ROOT.parent / "shared" / "videos"))


@pytest.fixture
def shared_videos() -> Path:
    """The real clips of ``../shared/videos``; tests that need them skip where it is absent."""
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"{SHARED_VIDEOS} not present (real-clip tests need ../shared/videos)")
    return SHARED_VIDEOS


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests that use torch run it on one thread.

    The tiny models gain nothing from intra-op threads, and on a shared 2-core machine the
    threads' spin-waits made training steps up to 10x slower. Only applied once a test module
    has imported torch, so the light tests stay light.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch):
    """No test sees another test's plugins, nor the user's VTG_* plugin variables."""
    from vtg_core import plugins

    for var in ("VTG_STRICT_PLUGINS", "VTG_DISABLE_PLUGINS", "VTG_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    plugins.set_registry(None)
    yield
    plugins.set_registry(None)


@pytest.fixture
def grpo_steps_here():
    """Skip a test that takes GRPO steps where the installed TRL cannot (trl <= 1.15 without a GPU,
    as in the CI environment resolved within unsloth's caps; see vtg_core.train.grpo_device)."""
    pytest.importorskip("trl")
    from vtg_core.train.grpo_device import grpo_device_problem

    problem = grpo_device_problem()
    if problem:
        pytest.skip(problem)
