"""Fixtures of the unsloth backend's tests: an isolated registry, one torch thread, a stand-in unsloth.

The core's ``tests/conftest.py`` does not reach this folder, so the isolation it gives core tests
is repeated here. :class:`FakeFastVisionModel` stands in for unsloth's ``FastVisionModel`` on
machines without a GPU (unsloth cannot even be imported there): it records what the backend asks
of unsloth, and does the work with transformers + peft on the real tiny model, so what follows
(training steps, checkpoints, reloading, generation) runs for real.
"""

from __future__ import annotations

import sys
from typing import Any

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


class FakeFastVisionModel:
    """Records calls like unsloth's ``FastVisionModel`` and does the work with transformers + peft.

    ``get_peft_model`` adapts, like unsloth, the linear layers named in ``target_modules`` (all of
    them for ``None``) inside the parts its ``finetune_*_layers`` flags select.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def kwargs(self, name: str) -> dict[str, Any]:
        found = [kw for n, kw in self.calls if n == name]
        assert found, f"{name} was not called; calls: {self.names()}"
        return found[-1]

    def from_pretrained(self, model_name: str, **kwargs: Any):
        from vtg_core.backends.loading import load_model_and_processor

        self.calls.append(("from_pretrained", {"model_name": model_name, **kwargs}))
        return load_model_and_processor(model_name, torch_dtype="float32", attn_implementation="sdpa")

    def get_peft_model(self, model, **kwargs: Any):
        from peft import LoraConfig, get_peft_model
        from torch import nn

        from vtg_core.backends.families import family_of

        self.calls.append(("get_peft_model", kwargs))
        layout = family_of(model)
        parts = {"language_model"} if kwargs["finetune_language_layers"] else set()
        if kwargs["finetune_vision_layers"]:
            parts.add("vision_tower")
        targets = kwargs["target_modules"]
        names = [n for n, m in model.named_modules()
                 if isinstance(m, nn.Linear) and layout.role(n) in parts and not n.endswith("lm_head")
                 and (targets is None or n.rsplit(".", 1)[-1] in targets)]
        config = LoraConfig(r=kwargs["r"], lora_alpha=kwargs["lora_alpha"], lora_dropout=kwargs["lora_dropout"],
                            target_modules=names, modules_to_save=kwargs.get("modules_to_save"),
                            trainable_token_indices=kwargs.get("trainable_token_indices"), task_type="CAUSAL_LM")
        return get_peft_model(model, config)

    def for_training(self, model, use_gradient_checkpointing=None):
        self.calls.append(("for_training", {"use_gradient_checkpointing": use_gradient_checkpointing}))
        model.train()
        return model

    def for_inference(self, model):
        self.calls.append(("for_inference", {}))
        model.eval()
        return model


@pytest.fixture
def fake_unsloth() -> FakeFastVisionModel:
    return FakeFastVisionModel()
