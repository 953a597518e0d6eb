"""What a plugin task can hand the core: its own frames, its answer length, its own rewards, its demo."""

from __future__ import annotations

import types

import pytest
from click.testing import CliRunner

import vtg_core
from vtg_core import TaskSpec
from vtg_core.cli.main import cli
from vtg_core.config import default_config
from vtg_core.config.defaults import drop_packaged_rewards
from vtg_core.data.sample import Sample
from vtg_core.data.sample_frames import frames_for_sample
from vtg_core.evaluate.loading import default_max_new_tokens
from vtg_core.plugins import set_registry
from vtg_core.testing import fresh_registry


class _NpzTask:
    name = "npz_task"
    default_max_new_tokens = 7

    def __init__(self):
        self.calls = []

    def load_frames(self, sample, video_cfg, *, cache, seed):
        self.calls.append((sample.id, video_cfg.max_frames, seed))
        return "frames-of-" + sample.id


def test_task_load_frames_replaces_decoding():
    task = _NpzTask()
    sample = Sample(id="s1", video="/nonexistent/trajectory.npz", duration=None, query="q")
    cfg = default_config("sft").video
    assert frames_for_sample(sample, cfg, seed=3, task=task) == "frames-of-s1"
    assert task.calls == [("s1", cfg.max_frames, 3)]


def test_task_sets_its_answer_length():
    config = default_config("rl")
    assert default_max_new_tokens(_NpzTask(), config) == 7
    assert default_max_new_tokens(object(), config) == 32


def test_packaged_grounding_rewards_do_not_leak_into_other_tasks():
    grounding = default_config("rl")
    assert [r.name for r in grounding.rewards] == ["temporal_iou", "segment_overlap"]
    assert drop_packaged_rewards(grounding) is grounding

    other = default_config("rl", ["task=refusal_grounding"])
    assert drop_packaged_rewards(other).rewards == []  # the task's default_rewards apply
    named = default_config("rl", ["task=refusal_grounding", "rewards=[{name: temporal_iou}]"])
    assert [r.name for r in drop_packaged_rewards(named, (), ["rewards=[{name: temporal_iou}]"]).rewards] == [
        "temporal_iou"]


def _plugin_with_task(name: str, factory) -> types.ModuleType:
    module = types.ModuleType("vtg_test_demo_task")

    def vtg_register_tasks():
        return [TaskSpec(name=name, description="test task", factory=factory)]

    module.vtg_register_tasks = vtg_core.hookimpl(vtg_register_tasks)
    return module


def test_unknown_task_fails_before_making_a_run_directory(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--task", "no_such_task", "--output-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "no_such_task" in result.output
    assert list(tmp_path.iterdir()) == []


def test_demo_of_a_task_without_demo_data_says_to_pass_data(tmp_path):
    fresh_registry(("demo_less", _plugin_with_task("demo_less", lambda **kw: _NpzTask())))
    try:
        result = CliRunner().invoke(cli, ["train", "--task", "demo_less", "--output-dir", str(tmp_path)])
    finally:
        set_registry(None)
    assert result.exit_code != 0
    assert "no offline demo data" in result.output and "--data" in result.output


@pytest.mark.parametrize("val", [True, False])
def test_demo_uses_the_task_demo_data(tmp_path, monkeypatch, val):
    """prepare_demo points the config at what the task's make_demo_data wrote."""
    from vtg_core.train import run

    made = {}

    class _DemoTask(_NpzTask):
        def make_demo_data(self, directory, *, seed):
            made["seed"] = seed
            paths = {"train": str(directory / "train.jsonl"), "overrides": ["video.max_frames=5"]}
            if val:
                paths["val"] = str(directory / "val.jsonl")
            return paths

    monkeypatch.setattr("vtg_core.testing.save_tiny_model", lambda path, seed=0: str(path))
    fresh_registry(("demo_task", _plugin_with_task("demo_task", lambda **kw: _DemoTask())))
    try:
        config = run.prepare_demo(default_config("sft", ["task=demo_task"]), tmp_path, ["training.seed=9"])
    finally:
        set_registry(None)
    assert config.dataset.annotation_file == str(tmp_path / "data" / "train.jsonl")
    assert config.video.max_frames == 5
    assert config.training.seed == 9
    assert (config.validation.annotation_file == str(tmp_path / "data" / "val.jsonl")) == val
