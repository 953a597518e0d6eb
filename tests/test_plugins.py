"""Plugin loading: built-ins, overrides, conflicts, isolation of broken plugins, env controls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import vtg_core
from vtg_core.errors import PluginError, UnknownNameError
from vtg_core.plugins import DEFAULT_PLUGINS, PluginWarning, build_registry
from vtg_core.records import RewardSpec, TaskSpec


def _plugin(name: str, **hooks):
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        fn.__name__ = hook_name
        setattr(module, hook_name, vtg_core.hookimpl(fn))
    return module


def _reward(name: str, description: str = "test reward") -> RewardSpec:
    return RewardSpec(name=name, description=description, factory="builtins:len")


def test_builtins_register_every_kind():
    registry = build_registry(entry_points=False)
    assert "temporal_grounding" in registry.all("task")
    assert {"temporal_iou", "segment_overlap", "step_consistency", "composite"} <= set(registry.all("reward"))
    assert "transformers" in registry.all("backend")
    assert {"random", "sequential", "duration"} <= set(registry.all("sampler"))
    assert [p.name for p in registry.plugins if p.builtin] == list(DEFAULT_PLUGINS)
    assert all(p.status == "ok" for p in registry.plugins)


def test_installed_plugin_overrides_builtin():
    override = TaskSpec(name="temporal_grounding", description="mine", factory="builtins:dict")
    plugin = _plugin("p", vtg_register_tasks=lambda: [override])
    registry = build_registry(entry_points=False, extra=[("mine", plugin)])
    assert registry.get("task", "temporal_grounding") is override
    assert registry.provider("task", "temporal_grounding").name == "mine"


def test_duplicate_between_plugins_names_both_distributions():
    a = _plugin("a", vtg_register_rewards=lambda: [_reward("dup")])
    b = _plugin("b", vtg_register_rewards=lambda: [_reward("dup")])
    with pytest.warns(PluginWarning, match="dup"):
        registry = build_registry(entry_points=False, extra=[("plug_a", a), ("plug_b", b)])
    with pytest.raises(PluginError) as err:
        registry.get("reward", "dup")
    assert "plug_a" in str(err.value) and "plug_b" in str(err.value)
    assert "dup" not in registry.all("reward")
    assert "temporal_iou" in registry.all("reward")  # everything else still works
    statuses = {p.name: p.status for p in registry.plugins}
    assert statuses["plug_a"] == statuses["plug_b"] == "conflict"


def test_duplicate_is_fatal_in_strict_mode():
    a = _plugin("a", vtg_register_rewards=lambda: [_reward("dup")])
    b = _plugin("b", vtg_register_rewards=lambda: [_reward("dup")])
    with pytest.raises(PluginError, match="registered by both"):
        build_registry(entry_points=False, extra=[("plug_a", a), ("plug_b", b)], strict=True)


def test_hook_that_raises_is_isolated():
    def broken():
        raise RuntimeError("boom")

    good = _plugin("g", vtg_register_rewards=lambda: [_reward("fine")])
    bad = _plugin("b", vtg_register_rewards=broken)
    with pytest.warns(PluginWarning, match="boom"):
        registry = build_registry(entry_points=False, extra=[("good", good), ("bad", bad)])
    assert "fine" in registry.all("reward")
    bad_info = next(p for p in registry.plugins if p.name == "bad")
    assert bad_info.status == "error" and "RuntimeError: boom" in bad_info.error


def test_wrong_record_type_is_reported():
    bad = _plugin("b", vtg_register_tasks=lambda: [_reward("oops")])
    with pytest.warns(PluginWarning, match="expected TaskSpec"):
        registry = build_registry(entry_points=False, extra=[("bad", bad)])
    assert "oops" not in registry.all("task")


def test_misspelled_hook_fails_loudly():
    typo = _plugin("t", vtg_register_task=lambda: [])
    with pytest.warns(PluginWarning, match="did you mean 'vtg_register_tasks'"):
        registry = build_registry(entry_points=False, extra=[("typo", typo)])
    assert next(p for p in registry.plugins if p.name == "typo").status == "error"
    with pytest.raises(PluginError, match="unknown hook 'vtg_register_task'"):
        build_registry(entry_points=False, extra=[("typo", typo)], strict=True)


def test_unknown_name_suggests_close_match():
    registry = build_registry(entry_points=False)
    with pytest.raises(UnknownNameError, match="Did you mean 'temporal_iou'"):
        registry.get("reward", "temporal_iuo")


def test_disable_and_allow_list():
    a = _plugin("a", vtg_register_rewards=lambda: [_reward("ra")])
    b = _plugin("b", vtg_register_rewards=lambda: [_reward("rb")])
    extra = [("plug_a", a), ("plug_b", b)]
    registry = build_registry(entry_points=False, extra=extra, environ={"VTG_DISABLE_PLUGINS": "plug_a"})
    assert "ra" not in registry.all("reward") and "rb" in registry.all("reward")
    assert next(p for p in registry.plugins if p.name == "plug_a").status == "disabled"
    registry = build_registry(entry_points=False, extra=extra, environ={"VTG_PLUGINS": "plug_a"})
    assert "ra" in registry.all("reward") and "rb" not in registry.all("reward")
    registry = build_registry(entry_points=False, extra=extra,
                              environ={"VTG_DISABLE_PLUGINS": "vtg_core.rewards.plugin"})
    assert "temporal_iou" not in registry.all("reward") and "ra" in registry.all("reward")


def test_records_validate_names_and_factories():
    with pytest.raises(PluginError, match="lower_snake_case"):
        TaskSpec(name="Bad-Name", description="x", factory="a.b:c")
    with pytest.raises(PluginError, match="module:attr"):
        TaskSpec(name="ok", description="x", factory="not a ref")
    with pytest.raises(PluginError, match="cannot import"):
        TaskSpec(name="ok", description="x", factory="no_such_module_xyz:thing").load()


# --- real entry points, through the `vtg` command in a subprocess ----------------------------

def _fake_distribution(root: Path, dist: str, ep_name: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[vtg]\n{ep_name} = {module}\n")


def _run_vtg(args: list[str], pythonpath: Path, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VTG_")}
    full_env["PYTHONPATH"] = str(pythonpath) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "vtg_core.cli.main", *args], capture_output=True,
                          text=True, env=full_env, timeout=60)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    _fake_distribution(tmp_path, "vtg-good", "good", "vtg_good_plugin", """
        import vtg_core
        from vtg_core import RewardSpec

        @vtg_core.hookimpl
        def vtg_register_rewards():
            return [RewardSpec(name="good_reward", description="Always one.", factory="builtins:len")]
    """)
    _fake_distribution(tmp_path, "vtg-broken", "broken", "vtg_broken_plugin", """
        raise ImportError("this plugin needs libfoo")
    """)
    return tmp_path


def test_broken_entry_point_is_isolated_and_shown(site: Path):
    result = _run_vtg(["plugins", "--json"], site)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["good"]["status"] == "ok" and rows["good"]["registers"] == {"reward": ["good_reward"]}
    assert rows["good"]["distribution"] == "vtg-good" and rows["good"]["version"] == "0.3"
    assert rows["broken"]["status"] == "error" and "libfoo" in rows["broken"]["error"]
    assert "broken" in result.stderr  # the warning names it
    listing = _run_vtg(["rewards"], site)
    assert listing.returncode == 0 and "good_reward" in listing.stdout and "temporal_iou" in listing.stdout


def test_strict_mode_exits_nonzero(site: Path):
    result = _run_vtg(["plugins"], site, VTG_STRICT_PLUGINS="1")
    assert result.returncode != 0
    assert "broken" in result.stderr and "libfoo" in result.stderr


def test_disable_via_environment(site: Path):
    result = _run_vtg(["plugins", "--json"], site, VTG_DISABLE_PLUGINS="broken", VTG_STRICT_PLUGINS="1")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["broken"]["status"] == "disabled"
