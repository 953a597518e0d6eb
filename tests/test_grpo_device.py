"""GRPO on a machine whose TRL cannot score log-probabilities there stops at once, clearly."""

from __future__ import annotations

import importlib
import sys
import types

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from vtg_core.errors import ConfigError  # noqa: E402
from vtg_core.train import grpo_device  # noqa: E402

pytestmark = pytest.mark.torch


def _kernels(monkeypatch, *, pytorch_fallback: bool) -> None:
    """Stand in for trl's chunked log-prob kernels, with or without trl 1.16's PyTorch fallback."""
    importlib.import_module("trl.trainer.utils")  # the real one, imported before the stand-in
    module = types.ModuleType("trl.kernels.chunked_logprob")
    if pytorch_fallback:
        module._use_triton = lambda device: device.type == "cuda"
    monkeypatch.setitem(sys.modules, "trl.kernels.chunked_logprob", module)


def test_triton_only_trl_without_a_gpu_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _kernels(monkeypatch, pytorch_fallback=False)
    problem = grpo_device.grpo_device_problem()
    assert problem and "Triton kernels only" in problem and "trl>=1.16,<1.17" in problem


def test_a_pytorch_fallback_or_a_gpu_is_fine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _kernels(monkeypatch, pytorch_fallback=True)
    assert grpo_device.grpo_device_problem() is None
    _kernels(monkeypatch, pytorch_fallback=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert grpo_device.grpo_device_problem() is None


def test_run_grpo_stops_before_loading_anything(monkeypatch, tmp_path):
    from vtg_core.config import VtgConfig
    from vtg_core.data.sample import Sample
    from vtg_core.train import grpo

    class NeverLoads:
        def load(self, config):
            raise AssertionError("the model was loaded")

    monkeypatch.setattr(grpo_device, "grpo_device_problem", lambda: "trl 1.15.0 computes ... Triton kernels only")
    sample = Sample(id="a", video="a.mp4", duration=4.0, query="q", answer=(1.0, 2.0))
    with pytest.raises(ConfigError, match="GRPO cannot run on this machine: trl 1.15.0"):
        grpo.run_grpo(VtgConfig(), task=object(), train_samples=[sample], output_dir=tmp_path, backend=NeverLoads())
