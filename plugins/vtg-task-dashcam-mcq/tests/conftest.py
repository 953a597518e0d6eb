"""Fixtures of the dashcam plugin's tests: an isolated registry with this plugin, one torch thread,
and a generated Road Buddy-style data set shared by the session (clips take a moment to encode).

The core's ``tests/conftest.py`` does not reach this folder, so the isolation it gives core tests
(fresh registry, no user VTG_* variables, one torch thread) is repeated here.
"""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch):
    from vtg_dashcam_mcq import plugin

    from vtg_core import plugins
    from vtg_core.testing import fresh_registry

    for var in ("VTG_STRICT_PLUGINS", "VTG_DISABLE_PLUGINS", "VTG_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    fresh_registry(("task_dashcam_mcq", plugin))  # what `vtg` sees, installed or not
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


@pytest.fixture(scope="session")
def roadbuddy(tmp_path_factory):
    """``make_roadbuddy_dataset`` output: 20 train rows, 6 test rows, Vietnamese and English."""
    from vtg_dashcam_mcq.synthetic import make_roadbuddy_dataset

    return make_roadbuddy_dataset(tmp_path_factory.mktemp("roadbuddy"), num_train=20, num_test=6, seed=3)
