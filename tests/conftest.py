"""Shared test fixtures: the real clip folder, a fresh registry per test, and a CLI runner."""

from __future__ import annotations

import os
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
def _isolated_registry(monkeypatch):
    """No test sees another test's plugins, nor the user's VTG_* plugin variables."""
    from vtg_core import plugins

    for var in ("VTG_STRICT_PLUGINS", "VTG_DISABLE_PLUGINS", "VTG_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    plugins.set_registry(None)
    yield
    plugins.set_registry(None)
