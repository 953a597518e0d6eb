"""DeepSpeed configs filled from vtg's, the launcher environment, and `vtg train --nproc-per-node` (no processes)."""

from __future__ import annotations

import json
import sys

import pytest

from vtg_core.config import resolve_deepspeed_config
from vtg_core.errors import ConfigError
from vtg_core.train.distributed import dist_info
from vtg_core.train.distributed_deepspeed import resolve_deepspeed
from vtg_core.train.launch import strip_nproc, torchrun_command

SETTINGS = {"micro_batch": 2, "gradient_accumulation": 8, "max_grad_norm": 1.0, "bf16": True, "fp16": False}


def _no_auto(node, path=""):
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _no_auto(value, f"{path}.{key}".strip(".")).items()}
    return {path: node} if node == "auto" else {}


@pytest.mark.parametrize("name", ["zero2", "zero3_offload"])
def test_packaged_configs_get_vtg_values(name):
    data = resolve_deepspeed(name, world_size=4, cuda=True, **SETTINGS)
    assert data["train_micro_batch_size_per_gpu"] == 2 and data["gradient_accumulation_steps"] == 8
    assert data["gradient_clipping"] == 1.0 and data["bf16"]["enabled"] is True and data["fp16"]["enabled"] is False
    assert "train_batch_size" not in data  # DeepSpeed computes 2 x 8 x world itself
    # Only the model-size values (filled by the HF integration from the hidden size) stay "auto".
    assert set(_no_auto(data)) <= {"zero_optimization.reduce_bucket_size", "zero_optimization.stage3_prefetch_bucket_size",
                                   "zero_optimization.stage3_param_persistence_threshold"}


def test_zero3_offload_is_what_seed_001_describes():
    raw = json.loads(resolve_deepspeed_config("zero3_offload").read_text())
    zero = raw["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_optimizer"]["device"] == zero["offload_param"]["device"] == "cpu"
    # vtg's own optimizer (per-part learning rates) is a client optimizer DeepSpeed must accept.
    assert "optimizer" not in raw and raw["zero_force_ds_cpu_optimizer"] is False
    resolved = resolve_deepspeed("zero3_offload", world_size=2, cuda=False, **SETTINGS)
    assert resolved["zero_optimization"]["offload_param"]["pin_memory"] is False  # nothing to pin without a GPU


def test_a_number_that_contradicts_vtg_is_refused_with_both_keys(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"gradient_accumulation_steps": 4, "zero_optimization": {"stage": 2}}))
    with pytest.raises(ConfigError, match=r"gradient_accumulation_steps is 4 but vtg's "
                                          r"training.gradient_accumulation_steps is 8"):
        resolve_deepspeed(str(path), **SETTINGS)
    path.write_text(json.dumps({"train_batch_size": 32}))
    with pytest.raises(ConfigError, match="train_batch_size is 32"):
        resolve_deepspeed(str(path), world_size=1, **SETTINGS)
    assert resolve_deepspeed(str(path), world_size=2, **SETTINGS)["train_batch_size"] == 32


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text('{\n  "zero_optimization": {"stage": 2,}\n}\n')
    with pytest.raises(ConfigError, match=r"ds.json, line 2"):
        resolve_deepspeed(str(path), **SETTINGS)


def test_dist_info_reads_the_launcher_environment(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert dist_info().world_size == 1 and dist_info().is_main
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = dist_info()
    assert (info.rank, info.world_size, info.local_rank, info.is_main) == (3, 4, 1, False)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK=4, WORLD_SIZE=4"):
        dist_info()


def test_nproc_relaunch_command():
    args = ["--data", "a.jsonl", "--nproc-per-node", "2", "--deepspeed", "zero2", "--nproc-per-node=3"]
    assert strip_nproc(args) == ["--data", "a.jsonl", "--deepspeed", "zero2"]
    cmd = torchrun_command(2, strip_nproc(args))
    assert cmd[:2] == [sys.executable, "-m"] and "torch.distributed.run" in cmd
    assert "--nproc_per_node=2" in cmd and cmd[-5:] == ["train", "--data", "a.jsonl", "--deepspeed", "zero2"]


def test_nproc_under_a_launcher_is_refused(monkeypatch):
    from click.testing import CliRunner

    from vtg_core.cli.main import cli

    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(sys, "argv", ["vtg", "train", "--nproc-per-node", "2"])
    result = CliRunner().invoke(cli, ["train", "--nproc-per-node", "2"])
    assert result.exit_code != 0 and "already started by a launcher" in result.output
