"""vtg's config in unsloth's terms, and the combinations unsloth cannot do, before anything loads.

:func:`plan_for` reads a ``VtgConfig`` and returns the keyword arguments for
``FastVisionModel.from_pretrained`` and ``FastVisionModel.get_peft_model``, or raises one
:class:`~vtg_core.errors.ConfigError` listing every problem with its config key. Pure Python
(no torch, no unsloth), so the refusals cost nothing and are tested on any machine.

The mapping:

========================================  =====================================================
vtg                                       unsloth
========================================  =====================================================
``model.name_or_path``                    ``model_name``
``model.quantization`` 4bit / 8bit        ``load_in_4bit`` / ``load_in_8bit`` (else both False:
                                          unsloth's own default would be 4-bit)
``lora.enabled: false``                   ``full_finetuning=True``
``model.gradient_checkpointing``          ``use_gradient_checkpointing="unsloth"`` (else False)
``model.trust_remote_code``               ``trust_remote_code``
``lora.r`` / ``lora_alpha`` /             ``r`` / ``lora_alpha`` / ``lora_dropout``
``lora_dropout``
``lora.target_modules`` list              ``target_modules`` (unsloth narrows it with the flags
                                          below); ``finetune_attention_modules`` /
                                          ``finetune_mlp_modules`` say whether it names
                                          attention / MLP projections
``lora.target_modules: all-linear``       ``target_modules=None``, attention and MLP on
``model.freeze_vision_tower: false`` and  ``finetune_vision_layers=True``: LoRA on the vision
``training.vision_tower_lr > 0``          tower (the transformers backend trains it in full)
``training.learning_rate > 0``            ``finetune_language_layers=True``
``training.seed``                         ``random_state``
========================================  =====================================================

``model.backend_options`` (see :data:`OPTIONS`) holds what only unsloth has.
"""

from __future__ import annotations

import difflib
from typing import Any

import attrs

from vtg_core.errors import ConfigError

# name -> (default, accepted types, what it does)
OPTIONS: dict[str, tuple[Any, tuple[type, ...], str]] = {
    "max_seq_length": (8192, (int,), "longest sequence (prompt + video tokens + answer) unsloth prepares for"),
    "fast_inference": (False, (bool,), "vLLM generation for GRPO (needs vllm; LoRA on the language model only)"),
    "gpu_memory_utilization": (0.5, (float, int), "share of GPU memory vLLM may take (fast_inference only)"),
    "use_rslora": (False, (bool,), "rank-stabilised LoRA scaling (lora_alpha / sqrt(r))"),
}

# Leaf names of the linear layers unsloth adapts, by family (its own test is the enclosing block:
# attention or MLP); they decide finetune_attention_modules / finetune_mlp_modules.
ATTENTION = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "qkv", "qkv_proj", "proj", "out_proj"})
MLP = frozenset({"gate_proj", "up_proj", "down_proj", "gate_up_proj", "fc1", "fc2", "linear_fc1", "linear_fc2"})


@attrs.frozen
class UnslothPlan:
    """What to pass to unsloth. ``peft_kwargs`` lacks the parts only the loaded model can tell
    (``modules_to_save`` for the projector, ``trainable_token_indices`` for added tokens)."""

    load_kwargs: dict[str, Any]
    peft_kwargs: dict[str, Any] | None  # None: full fine-tuning, no adapter
    options: dict[str, Any]
    train_vision_lora: bool
    gradient_checkpointing: Any


def _get(section: Any, key: str, default: Any = None) -> Any:
    if section is None:
        return default
    if isinstance(section, dict):
        return section.get(key, default)
    return getattr(section, key, default)


def backend_options(config: Any) -> tuple[dict[str, Any], list[str]]:
    """``model.backend_options`` with defaults filled in, and the problems of unknown or mistyped keys."""
    given = dict(_get(_get(config, "model"), "backend_options", None) or {})
    problems = []
    out = {name: default for name, (default, _, _) in OPTIONS.items()}
    for key, value in given.items():
        if key not in OPTIONS:
            near = difflib.get_close_matches(str(key), list(OPTIONS), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(f"model.backend_options.{key}: not an option of the unsloth backend{hint}; "
                            f"its options: {', '.join(OPTIONS)}")
            continue
        _, types, _ = OPTIONS[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            problems.append(f"model.backend_options.{key}: expected {' or '.join(t.__name__ for t in types)}, "
                            f"got {value!r}")
            continue
        out[key] = value
    if isinstance(out["max_seq_length"], int) and out["max_seq_length"] < 1:
        problems.append("model.backend_options.max_seq_length: must be >= 1")
    if not 0 < float(out["gpu_memory_utilization"]) <= 1:
        problems.append("model.backend_options.gpu_memory_utilization: must be > 0 and <= 1")
    return out, problems


def _families(targets: list[str]) -> tuple[bool, bool, list[str]]:
    leaves = [t.rsplit(".", 1)[-1] for t in targets]
    unknown = [t for t, leaf in zip(targets, leaves, strict=True) if leaf not in ATTENTION | MLP]
    return any(t in ATTENTION for t in leaves), any(t in MLP for t in leaves), unknown


def plan_for(config: Any) -> UnslothPlan:
    """The unsloth arguments for ``config``; raises :class:`ConfigError` naming every combination
    unsloth cannot do (see the module docstring for the mapping)."""
    model_cfg, lora, training = _get(config, "model"), _get(config, "lora"), _get(config, "training")
    options, problems = backend_options(config)
    lora_on = bool(_get(lora, "enabled", True))
    quantization = _get(model_cfg, "quantization", "none") or "none"
    fast = bool(options["fast_inference"])
    freeze = bool(_get(model_cfg, "freeze_vision_tower", True))
    vision_lr = float(_get(training, "vision_tower_lr", 0.0) or 0.0)
    train_vision = (not freeze) and vision_lr > 0
    projector_lr = float(_get(training, "mm_projector_lr", 0.0) or 0.0)
    temporal = _get(config, "temporal")
    new_tokens = bool(_get(temporal, "use_temporal_tokens", False))
    user_save = list(_get(lora, "modules_to_save", None) or [])

    if not _get(model_cfg, "name_or_path", None):
        problems.append("model.name_or_path is empty: give a Hub id (unsloth/Qwen3-VL-4B-Instruct) or a path")
    if quantization not in ("none", "4bit", "8bit"):
        problems.append(f"model.quantization: must be none, 4bit or 8bit, got {quantization!r}")
    if quantization != "none" and not lora_on:
        problems.append(f"model.quantization={quantization} with lora.enabled: false: unsloth trains quantized "
                        "weights only through LoRA adapters (QLoRA); enable LoRA or set model.quantization: none")
    if _get(config, "deepspeed", None):
        problems.append("deepspeed: unsloth runs on one GPU and does not work under DeepSpeed ZeRO; drop "
                        "--deepspeed, or use --backend transformers for DeepSpeed")
    if fast:
        if not lora_on:
            problems.append("model.backend_options.fast_inference: vLLM generation follows the policy through "
                            "LoRA adapters only; set lora.enabled: true or fast_inference: false")
        if train_vision:
            problems.append("model.backend_options.fast_inference: vLLM cannot serve LoRA on vision layers; keep "
                            "model.freeze_vision_tower: true (or training.vision_tower_lr: 0), or turn "
                            "fast_inference off")
        if user_save or projector_lr > 0:
            what = ", ".join(user_save + (["the projector (training.mm_projector_lr > 0)"] if projector_lr > 0
                                          else []))
            problems.append(f"model.backend_options.fast_inference: vLLM cannot follow fully trained modules "
                            f"({what}); set lora.modules_to_save: [] and training.mm_projector_lr: 0, or turn "
                            "fast_inference off")
        if new_tokens:
            problems.append("model.backend_options.fast_inference: vLLM cannot see new token rows "
                            "(temporal.use_temporal_tokens); turn one of them off")

    peft_kwargs = None
    if lora_on:
        targets = _get(lora, "target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"])
        if targets == "all-linear":
            target_modules, attention, mlp = None, True, True
        elif isinstance(targets, str):
            problems.append(f"lora.target_modules: the unsloth backend takes module names or 'all-linear', not a "
                            f"regex ({targets!r}); list the projections, e.g. [q_proj, v_proj]")
            target_modules, attention, mlp = None, True, False
        else:
            target_modules = list(targets)
            attention, mlp, unknown = _families(target_modules)
            if not target_modules:
                problems.append("lora.target_modules is empty; name at least one module (e.g. q_proj) or "
                                "'all-linear'")
            elif unknown:
                problems.append(f"lora.target_modules: {', '.join(unknown)} are neither attention "
                                f"({', '.join(sorted(ATTENTION))}) nor MLP ({', '.join(sorted(MLP))}) projections, "
                                "which is all unsloth adapts; train embeddings / lm_head with lora.modules_to_save")
        language = float(_get(training, "learning_rate", 0.0) or 0.0) > 0
        if not language and not train_vision:
            problems.append("training.learning_rate is 0 and the vision tower is frozen: LoRA would adapt nothing")
        peft_kwargs = {
            "r": int(_get(lora, "r", 16)),
            "lora_alpha": _get(lora, "lora_alpha", 16),
            "lora_dropout": float(_get(lora, "lora_dropout", 0.0)),
            "bias": "none",
            "target_modules": target_modules,
            "finetune_vision_layers": train_vision,
            "finetune_language_layers": language,
            "finetune_attention_modules": attention,
            "finetune_mlp_modules": mlp,
            "use_rslora": bool(options["use_rslora"]),
            "random_state": int(_get(training, "seed", 3407)),
        }
    if problems:
        raise ConfigError("the unsloth backend cannot run this config:\n  - " + "\n  - ".join(problems))

    checkpointing: Any = "unsloth" if _get(model_cfg, "gradient_checkpointing", True) else False
    load_kwargs = {
        "model_name": _get(model_cfg, "name_or_path"),
        "max_seq_length": int(options["max_seq_length"]),
        "load_in_4bit": quantization == "4bit",
        "load_in_8bit": quantization == "8bit",
        "full_finetuning": not lora_on,
        "use_gradient_checkpointing": checkpointing,
        "trust_remote_code": bool(_get(model_cfg, "trust_remote_code", False)),
        "random_state": int(_get(training, "seed", 3407)),
    }
    if fast:
        load_kwargs.update(fast_inference=True, max_lora_rank=int(_get(lora, "r", 16)),
                           gpu_memory_utilization=float(options["gpu_memory_utilization"]))
    if peft_kwargs is not None:
        peft_kwargs["use_gradient_checkpointing"] = checkpointing
    return UnslothPlan(load_kwargs=load_kwargs, peft_kwargs=peft_kwargs, options=options,
                       train_vision_lora=train_vision, gradient_checkpointing=checkpointing)
