"""Fixtures of the robot-VQA plugin's tests: an isolated registry, one torch thread, synthetic trajectories.

The core's ``tests/conftest.py`` does not reach this folder, so the isolation it gives core tests
(fresh registry, no user VTG_* variables, one torch thread) is repeated here.
"""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def trajectories(tmp_path_factory):
    """12 synthetic pushes (2 tasks x 3 qualities x 2), 16 frames of 32 x 32: the index and its rows."""
    from vtg_robot_vqa.synthetic import make_trajectories

    return make_trajectories(tmp_path_factory.mktemp("trajectories"), num_trajectories=12, num_frames=16, size=32,
                             seed=0)


@pytest.fixture
def registry():
    """The process-wide registry with this plugin, installed or not."""
    from vtg_robot_vqa import plugin

    from vtg_core.testing import fresh_registry

    return fresh_registry(("task_robot_vqa", plugin))


@pytest.fixture
def vtg_cli(registry):
    """The ``vtg`` click group with this plugin's ``robot-vqa`` commands, as ``vtg`` adds them."""
    from vtg_robot_vqa import plugin

    from vtg_core.cli.main import cli

    plugin.vtg_register_commands(cli=cli)
    return cli
