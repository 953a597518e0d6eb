"""The `vtg` command: listings, plugin commands, clean errors."""

from __future__ import annotations

import json
import types

import click
from click.testing import CliRunner

import vtg_core
from vtg_core import plugins
from vtg_core.cli.main import cli


def test_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("plugins", "list", "tasks", "rewards", "backends", "samplers", "validate"):
        assert command in result.output


def test_list_shows_every_kind_with_descriptions():
    result = CliRunner().invoke(cli, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    kinds = {row["kind"] for row in rows}
    assert kinds == {"task", "reward", "backend", "sampler"}
    assert all(row["description"].strip() for row in rows)
    names = {(row["kind"], row["name"]) for row in rows}
    assert ("task", "temporal_grounding") in names and ("reward", "temporal_iou") in names


def test_tasks_alias_prints_table():
    result = CliRunner().invoke(cli, ["tasks"])
    assert result.exit_code == 0
    assert "temporal_grounding" in result.output and "rewards" not in result.output.splitlines()[0]


def test_plugins_all_includes_builtins():
    result = CliRunner().invoke(cli, ["plugins", "--all", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert any(r["builtin"] and r["registers"].get("task") == ["temporal_grounding"] for r in rows)


def test_plugin_can_add_a_command_through_vtg_register_commands():
    module = types.ModuleType("cmd_plugin")

    @vtg_core.hookimpl
    def vtg_register_commands(cli):
        @cli.command(name="hello-plugin")
        def hello():
            """Say hello from a plugin."""
            click.echo("hello from plugin")

    module.vtg_register_commands = vtg_register_commands
    plugins.set_registry(plugins.build_registry(entry_points=False, extra=[("cmd", module)]))
    group = click.Group(commands=dict(cli.commands))
    plugins.call_hook_isolated("vtg_register_commands", cli=group)
    result = CliRunner().invoke(group, ["hello-plugin"])
    assert result.exit_code == 0 and "hello from plugin" in result.output


def test_unknown_task_is_a_clean_error(tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text("{}\n")
    result = CliRunner().invoke(cli, ["validate", str(data), "--task", "temporal_grounds"])
    assert result.exit_code == 2
    assert "unknown task 'temporal_grounds'" in result.output and "temporal_grounding" in result.output
    assert "Traceback" not in result.output
