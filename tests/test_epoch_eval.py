"""Evaluation after each epoch keeps the best checkpoint by the task's metric; task config defaults."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

pytest.importorskip("transformers")

pytestmark = pytest.mark.torch


class _Backend:
    def __init__(self):
        self.saved = []

    def save_checkpoint(self, model, processor, path, *, config=None, added_tokens=None):
        from pathlib import Path

        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "weights").write_text(str(model))
        self.saved.append(model)
        return path


def _callback(tmp_path, values, mode):
    from vtg_core.config import default_config
    from vtg_core.train.epoch_eval import EpochEvalCallback

    backend = _Backend()
    cb = EpochEvalCallback(task=SimpleNamespace(), samples=[object()], backend=backend,
                           config=default_config("sft"), output_dir=str(tmp_path), metric="accuracy", mode=mode)
    feed = iter(values)
    cb.evaluate = lambda model, processor: {"accuracy": next(feed), "num_samples": 1.0}
    for epoch in range(1, len(values) + 1):
        state = SimpleNamespace(is_world_process_zero=True, epoch=float(epoch), global_step=10 * epoch,
                                log_history=[])
        cb.on_epoch_end(None, state, None, model=f"model-after-epoch-{epoch}", processing_class=None)
    return cb, backend


@pytest.mark.parametrize(("mode", "values", "best_epoch"), [
    ("max", [0.25, 0.75, 0.5], 2), ("min", [0.5, 0.25, 0.75], 2), ("max", [0.5, 0.5, float("nan")], 1)])
def test_the_best_epoch_is_saved_and_recorded(tmp_path, mode, values, best_epoch):
    from vtg_core.train.epoch_eval import best_checkpoint

    cb, backend = _callback(tmp_path, values, mode)
    history = [json.loads(line) for line in (tmp_path / "epoch_eval.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [10, 20, 30]
    best = best_checkpoint(str(tmp_path))
    assert best["epoch"] == best_epoch and best["checkpoint"] == str(tmp_path / "best")
    assert (tmp_path / "best" / "weights").read_text() == f"model-after-epoch-{best_epoch}"
    # A resumed run competes with the recorded best instead of overwriting it with a worse epoch.
    again, _ = _callback(tmp_path, [values[best_epoch - 1]], mode)
    assert best_checkpoint(str(tmp_path))["epoch"] == best_epoch


def test_callbacks_only_for_tasks_that_name_a_metric_and_per_epoch_evaluation():
    from vtg_core.config import default_config
    from vtg_core.train.epoch_eval import epoch_eval_callbacks

    config = default_config("sft", ["training.eval_strategy=epoch"])
    task = SimpleNamespace(best_metric=("accuracy", "max"))
    assert len(epoch_eval_callbacks(config, task, [object()], _Backend(), "out")) == 1
    assert epoch_eval_callbacks(config, SimpleNamespace(), [object()], _Backend(), "out") == []
    assert epoch_eval_callbacks(config, task, [], _Backend(), "out") == []
    steps = default_config("sft", ["training.eval_strategy=steps"])
    assert epoch_eval_callbacks(steps, task, [object()], _Backend(), "out") == []


def test_tables_print_and_draw(tmp_path):
    from vtg_core.evaluate.tables import format_table, plot_table

    table = {"title": "t", "rows": ["x", "y"], "columns": ["a", "b"], "values": [[1, 2], [3, 0.25]]}
    assert format_table("t", table).splitlines() == ["t:", "        a      b", "  x     1      2",
                                                     "  y     3  0.250"]
    assert plot_table("t", table, tmp_path / "t.png") == str(tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_zero3_on_several_processes_is_refused_before_training(monkeypatch):
    # Rank 0 alone cannot generate with ZeRO-3-partitioned weights: that would wait forever.
    from vtg_core.config import default_config
    from vtg_core.errors import ConfigError
    from vtg_core.train.epoch_eval import epoch_eval_callbacks

    task = SimpleNamespace(best_metric=("accuracy", "max"))
    zero3 = default_config("sft", ["training.eval_strategy=epoch", "deepspeed=zero3_offload"])
    zero2 = default_config("sft", ["training.eval_strategy=epoch", "deepspeed=zero2"])
    assert len(epoch_eval_callbacks(zero3, task, [object()], _Backend(), "out")) == 1  # one process: fine
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert len(epoch_eval_callbacks(zero2, task, [object()], _Backend(), "out")) == 1
    with pytest.raises(ConfigError, match="ZeRO-3 .* on 2 processes"):
        epoch_eval_callbacks(zero3, task, [object()], _Backend(), "out")
