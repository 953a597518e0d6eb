"""The plugin as vtg sees it: listed when installed, light to import, harmless when disabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest
from vtg_rewards_refusal import plugin

import vtg_core
from vtg_core import RewardSpec
from vtg_core.testing import fresh_registry

EXPECTED = {"reward": ["format", "refuse_iou", "explain_correction"], "sampler": ["refusal_curriculum"],
            "task": ["refusal_grounding"]}


def vtg(*args, **env):
    return subprocess.run([sys.executable, "-m", "vtg_core.cli.main", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


def test_registry_has_every_component():
    registry = fresh_registry(("rewards_refusal", plugin))
    for kind, names in EXPECTED.items():
        for name in names:
            assert registry.get(kind, name).name == name
    task = registry.get("task", "refusal_grounding")
    assert [r["name"] for r in task.default_rewards] == EXPECTED["reward"]


def test_installed_plugin_is_listed_and_can_be_disabled():
    out = vtg("plugins", "--json")
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    if "rewards_refusal" not in rows:
        pytest.skip("vtg-rewards-refusal is not pip-installed in this environment")
    assert rows["rewards_refusal"]["status"] == "ok"
    assert rows["rewards_refusal"]["registers"] == EXPECTED
    assert rows["rewards_refusal"]["distribution"] == "vtg-rewards-refusal"

    # As if uninstalled: the core and its task keep working; the name is just unknown.
    off = {"VTG_DISABLE_PLUGINS": "rewards_refusal"}
    listed = vtg("list", "tasks", "--json", **off)
    assert listed.returncode == 0, listed.stderr
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert "temporal_grounding" in names and "refusal_grounding" not in names
    rewards = vtg("list", "rewards", "--json", **off)
    assert {"temporal_iou", "composite"} <= {row["name"] for row in json.loads(rewards.stdout)}
    assert "refuse_iou" not in rewards.stdout


def test_listing_imports_nothing_heavy():
    code = ("import sys, vtg_rewards_refusal.plugin; from vtg_core.plugins import get_registry; get_registry(); "
            "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', 'numpy.linalg') if m in sys.modules];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "torch" not in out.stdout and "sentence_transformers" not in out.stdout


def test_a_second_format_reward_is_a_conflict_not_a_crash():
    other = types.ModuleType("other_format_plugin")

    @vtg_core.hookimpl
    def vtg_register_rewards():
        return [RewardSpec(name="format", description="another", factory="json:dumps")]

    other.vtg_register_rewards = vtg_register_rewards
    with pytest.warns(UserWarning, match="format"):
        registry = fresh_registry(("rewards_refusal", plugin), ("other_format", other), strict=False)
    from vtg_core.errors import PluginError

    with pytest.raises(PluginError, match="registered by both rewards_refusal .* and other_format"):
        registry.get("reward", "format")
    assert registry.get("reward", "refuse_iou").name == "refuse_iou"  # everything else keeps working
