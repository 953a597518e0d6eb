"""Tests of the example plugin, written the way a plugin author would with vtg_core.testing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from vtg_example_brevity import plugin

from vtg_core.testing import fresh_registry


def test_registers_reward_through_vtg():
    registry = fresh_registry(("example_brevity", plugin))
    spec = registry.get("reward", "brevity")
    reward = spec.load()(**spec.options)
    assert reward(prompts=["q", "q", "q"], completions=["short", "x" * 96, "x" * 200]) == [1.0, 0.5, 0.0]


def test_conversational_completions():
    from vtg_example_brevity.reward import brevity

    assert brevity(max_chars=4)(prompts=[[]], completions=[[{"role": "assistant", "content": "abcdef"}]]) == [0.5]
    with pytest.raises(ValueError, match="max_chars"):
        brevity(max_chars=0)


def test_installed_plugin_is_listed_by_vtg():
    out = subprocess.run([sys.executable, "-m", "vtg_core.cli.main", "plugins", "--json"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        pytest.fail(out.stderr)
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    if "example_brevity" not in rows:
        pytest.skip("vtg-example-brevity is not pip-installed in this environment")
    assert rows["example_brevity"]["status"] == "ok"
    assert rows["example_brevity"]["registers"] == {"reward": ["brevity"]}
    assert rows["example_brevity"]["hooks"] == ["vtg_register_commands", "vtg_register_rewards"]
    cmd = subprocess.run([sys.executable, "-m", "vtg_core.cli.main", "brevity", "x" * 96],
                         capture_output=True, text=True, timeout=60)
    assert cmd.stdout.strip() == "0.500"
