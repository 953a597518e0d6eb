"""vtg's config in unsloth's arguments, and the combinations refused before anything loads."""

from __future__ import annotations

import pytest
from vtg_backend_unsloth.plan import OPTIONS, plan_for

from vtg_core.config import VtgConfig, apply_overrides
from vtg_core.errors import ConfigError


def config(*overrides: str) -> VtgConfig:
    base = ["model.name_or_path=some/model", "training.mm_projector_lr=0"]
    return apply_overrides(VtgConfig(), [*base, *overrides])


def test_defaults_map_to_lora_on_the_language_attention():
    plan = plan_for(config())
    assert plan.load_kwargs == {
        "model_name": "some/model", "max_seq_length": OPTIONS["max_seq_length"][0], "load_in_4bit": False,
        "load_in_8bit": False, "full_finetuning": False, "use_gradient_checkpointing": "unsloth",
        "trust_remote_code": False, "random_state": 42,
    }
    assert plan.peft_kwargs == {
        "r": 64, "lora_alpha": 128, "lora_dropout": 0.05, "bias": "none",
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "finetune_vision_layers": False, "finetune_language_layers": True,
        "finetune_attention_modules": True, "finetune_mlp_modules": False,
        "use_rslora": False, "random_state": 42, "use_gradient_checkpointing": "unsloth",
    }


@pytest.mark.parametrize("quantization,four,eight", [("none", False, False), ("4bit", True, False),
                                                     ("8bit", False, True)])
def test_quantization_maps_to_load_in_nbit(quantization, four, eight):
    kw = plan_for(config(f"model.quantization={quantization}")).load_kwargs
    assert (kw["load_in_4bit"], kw["load_in_8bit"]) == (four, eight)


def test_vision_tower_training_becomes_vision_lora():
    frozen = plan_for(config("model.freeze_vision_tower=false")).peft_kwargs  # no vision learning rate
    assert frozen["finetune_vision_layers"] is False
    plan = plan_for(config("model.freeze_vision_tower=false", "training.vision_tower_lr=1e-5"))
    assert plan.peft_kwargs["finetune_vision_layers"] is True and plan.train_vision_lora


def test_target_modules_choose_attention_and_mlp():
    mlp_only = plan_for(config("lora.target_modules=[gate_proj, down_proj]")).peft_kwargs
    assert (mlp_only["finetune_attention_modules"], mlp_only["finetune_mlp_modules"]) == (False, True)
    every = plan_for(config("lora.target_modules=all-linear")).peft_kwargs
    assert every["target_modules"] is None
    assert (every["finetune_attention_modules"], every["finetune_mlp_modules"]) == (True, True)


def test_other_settings():
    plan = plan_for(config("model.gradient_checkpointing=false", "lora.enabled=false", "training.seed=7",
                           "model.backend_options={max_seq_length: 4096, use_rslora: true}"))
    assert plan.load_kwargs["use_gradient_checkpointing"] is False and plan.load_kwargs["full_finetuning"] is True
    assert plan.load_kwargs["max_seq_length"] == 4096 and plan.load_kwargs["random_state"] == 7
    assert plan.peft_kwargs is None  # full fine-tuning: no adapter
    rs = plan_for(config("model.backend_options={use_rslora: true}")).peft_kwargs
    assert rs["use_rslora"] is True


def test_fast_inference_passes_vllm_settings():
    plan = plan_for(config("model.backend_options={fast_inference: true, gpu_memory_utilization: 0.6}", "lora.r=16"))
    assert plan.load_kwargs["fast_inference"] is True
    assert plan.load_kwargs["max_lora_rank"] == 16 and plan.load_kwargs["gpu_memory_utilization"] == 0.6


@pytest.mark.parametrize("overrides,expected", [
    (["model.quantization=4bit", "lora.enabled=false"], "model.quantization=4bit with lora.enabled: false"),
    (["model.backend_options={fast_inference: true}", "model.freeze_vision_tower=false",
      "training.vision_tower_lr=1e-5"], "vLLM cannot serve LoRA on vision layers"),
    (["model.backend_options={fast_inference: true}", "training.mm_projector_lr=1e-5"],
     "the projector (training.mm_projector_lr > 0)"),
    (["model.backend_options={fast_inference: true}", "lora.modules_to_save=[lm_head]"], "(lm_head)"),
    (["model.backend_options={fast_inference: true}", "temporal.use_temporal_tokens=true"],
     "vLLM cannot see new token rows"),
    (["model.backend_options={fast_inference: true}", "lora.enabled=false"], "LoRA adapters only"),
    (["deepspeed=zero2.json"], "does not work under DeepSpeed"),
    (["model.backend_options={max_seq_lenght: 4096}"], "did you mean 'max_seq_length'?"),
    (["model.backend_options={max_seq_length: long}"], "max_seq_length: expected int, got 'long'"),
    (["model.backend_options={fast_inference: 1}"], "fast_inference: expected bool, got 1"),
    (["lora.target_modules=[q_proj, embed_tokens]"], "embed_tokens are neither attention"),
    (["lora.target_modules=.*q_proj"], "not a regex"),
    (["training.learning_rate=0"], "LoRA would adapt nothing"),
])
def test_refusals_name_the_key(overrides, expected):
    with pytest.raises(ConfigError) as err:
        plan_for(config(*overrides))
    assert expected in str(err.value)
    assert "the unsloth backend cannot run this config" in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        plan_for(config("model.quantization=8bit", "lora.enabled=false", "deepspeed=z.json"))
    assert "model.quantization=8bit" in str(err.value) and "DeepSpeed" in str(err.value)
