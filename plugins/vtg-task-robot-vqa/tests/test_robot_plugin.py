"""The plugin as vtg sees it: registered components, the `vtg robot-vqa` command, a light import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from vtg_robot_vqa import plugin

from vtg_core.testing import fresh_registry

EXPECTED = {"reward": ["robot_preference", "robot_progress"], "task": ["robot_vqa"]}


def vtg(*args, **env):
    return subprocess.run([sys.executable, "-m", "vtg_core.cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_registry_has_the_task_and_its_rewards():
    registry = fresh_registry(("task_robot_vqa", plugin))
    task = registry.get("task", "robot_vqa")
    assert [r["name"] for r in task.default_rewards] == EXPECTED["reward"]
    assert {"preference_accuracy", "progress_mae", "progress_rmse", "parse_failures"} <= set(task.metrics)
    reward = registry.get("reward", "robot_progress").load()(**registry.get("reward", "robot_progress").options)
    assert reward(prompts=[""], completions=["ANS: 40"], sample_type=["progress"], answer=["50"]) == [0.9]
    obj = task.load()(use_multi_image=True)
    assert obj.name == "robot_vqa" and obj.use_multi_image and obj.default_max_new_tokens == 8


def test_installed_plugin_is_listed_and_adds_its_command():
    out = vtg("plugins", "--json")
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    if "task_robot_vqa" not in rows:
        pytest.skip("vtg-task-robot-vqa is not pip-installed in this environment")
    assert rows["task_robot_vqa"]["status"] == "ok" and rows["task_robot_vqa"]["registers"] == EXPECTED
    assert rows["task_robot_vqa"]["distribution"] == "vtg-task-robot-vqa"
    helped = vtg("robot-vqa", "generate", "--help")
    assert helped.returncode == 0, helped.stderr
    for option in ("--num_samples", "--seed", "--num_workers", "--save_batch_size", "--eval_mode",
                   "--config_overrides", "--sample_type_ratio", "--max_frames"):
        assert option in helped.stdout
    off = vtg("robot-vqa", "--help", VTG_DISABLE_PLUGINS="task_robot_vqa")
    assert off.returncode != 0 and "No such command" in off.stderr


def test_plugin_module_and_listing_import_nothing_heavy():
    code = ("import sys, vtg_robot_vqa.plugin; from vtg_core.plugins import get_registry; get_registry(); "
            "import vtg_robot_vqa.cli; "
            "print([m for m in ('torch', 'transformers', 'datasets', 'numpy', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
