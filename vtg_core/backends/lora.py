"""What trains and at which learning rate: LoRA, frozen parts, new token rows, parameter groups.

The rules, from seed 002's SFT table and the config:

- LoRA adapters go into the language model only (``lora.target_modules`` matched against its
  module names; a name that matches nothing is an error listing the real names).
- The vision tower trains only when ``model.freeze_vision_tower`` is false *and*
  ``training.vision_tower_lr`` > 0; it then trains in full (peft ``modules_to_save``, so the
  checkpoint carries it). Otherwise it is frozen.
- The projector (Qwen's patch mergers, InternVL's ``multi_modal_projector``) trains in full when
  ``training.mm_projector_lr`` > 0.
- ``lm_head`` / ``embed_tokens`` listed in ``lora.modules_to_save`` train at ``head_lr``.
- Tokens added to the vocabulary (temporal tokens) train only their own rows of the input and
  output embeddings (peft ``trainable_token_indices``), unless the whole matrix is in
  ``modules_to_save``.
- Each part gets its own optimizer group: ``learning_rate`` / ``mm_projector_lr`` /
  ``vision_tower_lr`` / ``head_lr``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .families import FamilyLayout, family_of

log = logging.getLogger(__name__)

_NO_DECAY = re.compile(r"(bias|layernorm|rmsnorm|(^|\.)norm(\.|$)|_norm(\.|$)|norm\d(\.|$))", re.IGNORECASE)


def _get(section: Any, key: str, default: Any = None) -> Any:
    if section is None:
        return default
    if isinstance(section, dict):
        return section.get(key, default)
    return getattr(section, key, default)


def trainable_parts(config: Any) -> dict[str, bool]:
    """Which parts train under ``config`` (a ``VtgConfig``): keys ``vision_tower``, ``projector``."""
    model_cfg, training = _get(config, "model"), _get(config, "training")
    vision_lr = float(_get(training, "vision_tower_lr", 0.0) or 0.0)
    freeze = bool(_get(model_cfg, "freeze_vision_tower", True))
    if freeze and vision_lr > 0:
        log.warning(
            "training.vision_tower_lr=%g but model.freeze_vision_tower is true: the vision tower "
            "stays frozen (set model.freeze_vision_tower: false to train it)",
            vision_lr,
        )
    elif not freeze and vision_lr == 0:
        log.warning(
            "model.freeze_vision_tower is false but training.vision_tower_lr is 0: the vision tower "
            "stays frozen (give it a learning rate to train it)"
        )
    return {
        "vision_tower": (not freeze) and vision_lr > 0,
        "projector": float(_get(training, "mm_projector_lr", 0.0) or 0.0) > 0,
    }


def _lm_modules(model: nn.Module, layout: FamilyLayout) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if n and layout.role(n) in ("language_model", "head")]


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def _leaf_names(named: Iterable[tuple[str, nn.Module]], kind: type | None = None) -> list[str]:
    leaves = {n.rsplit(".", 1)[-1] for n, m in named if kind is None or isinstance(m, kind)}
    return sorted(leaf for leaf in leaves if not leaf.isdigit())  # list indices are not module names


def resolve_target_modules(
    model: nn.Module, target_modules: Sequence[str] | str, layout: FamilyLayout | None = None
) -> str:
    """A peft ``target_modules`` regex restricted to the language model, after checking each name.

    ``"all-linear"`` means every linear layer of the language model but ``lm_head``. A list entry
    must match (exactly, or as a dotted suffix) a module of the language model; otherwise
    :class:`ConfigError` lists the model's real linear layer names. Any other string is taken as
    the user's own regex and only checked to match something.
    """
    layout = layout or family_of(model)
    lm = _lm_modules(model, layout)
    cls = type(model).__name__
    if isinstance(target_modules, str) and target_modules != "all-linear":
        if not any(re.fullmatch(target_modules, n) for n, _ in lm):
            raise ConfigError(
                f"lora.target_modules: the regex {target_modules!r} matches no module name of {cls}'s "
                f"language model; its linear layers are: {', '.join(_leaf_names(lm, nn.Linear))}"
            )
        return target_modules
    if target_modules == "all-linear":
        targets = [t for t in _leaf_names(lm, nn.Linear) if t != "lm_head"]
    else:
        targets = list(target_modules)
        if not targets:
            raise ConfigError(
                "lora.target_modules is empty; name at least one module (e.g. q_proj) or 'all-linear'"
            )
        vision = [
            (n, m) for n, m in model.named_modules() if n and layout.role(n) in ("vision_tower", "projector")
        ]
        for t in targets:
            if any(_matches(n, t) for n, _ in lm):
                continue
            if any(_matches(n, t) for n, _ in vision):
                raise ConfigError(
                    f"lora.target_modules: {t!r} only names vision-tower / projector modules of {cls}; LoRA "
                    "adapts the language model only. To train the vision tower set model.freeze_vision_tower: "
                    "false and training.vision_tower_lr > 0 (it then trains in full); the projector trains "
                    "with training.mm_projector_lr > 0"
                )
            raise ConfigError(
                f"lora.target_modules: {t!r} matches no module of {cls}. Its language model's linear layers "
                f"are: {', '.join(_leaf_names(lm, nn.Linear))}; all its module names: "
                f"{', '.join(_leaf_names(lm))}"
            )
    parts = "|".join(re.escape(t) for t in targets)
    # peft full-matches a string against each module name; the lookahead keeps LoRA out of vision.
    return rf"(?!.*(?:{layout.vision})|.*(?:{layout.projector}))(?:.*\.)?(?:{parts})"


def _full_train_modules(
    model: nn.Module, layout: FamilyLayout, *, vision_tower: bool, projector: bool
) -> list[str]:
    """Module names to train in full (peft ``modules_to_save``) for the vision tower / projector.

    The largest modules lying wholly in one part are picked, and lists are split into their
    elements: peft's wrapper is *called* like the module it wraps, while a model iterates a
    ModuleList. Qwen nests the projector inside ``visual``, hence the descent.
    """
    wanted = {"vision_tower": vision_tower, "projector": projector}
    out: list[str] = []

    def visit(name: str, module: nn.Module) -> None:
        role = layout.role(name) if name else None
        uniform = role in wanted and all(
            layout.role(f"{name}.{sub}") == role for sub, _ in module.named_modules() if sub
        )
        if uniform and not isinstance(module, nn.ModuleList):
            if wanted[role] and any(p.numel() for p in module.parameters()):
                out.append(name)
            return
        for child_name, child in module.named_children():
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", model)
    return out


def add_tokens(
    model: nn.Module, processor: Any, tokens: Sequence[str], *, init: str = "sinusoidal"
) -> list[int]:
    """Add ``tokens`` to the tokenizer, grow the embeddings if needed, initialise their rows.

    Returns the ids of ``tokens`` (already present ones included, not re-initialised). Tokens are
    added as normal (non-special) tokens so decoding with ``skip_special_tokens=True`` keeps them
    for the parser. ``init``: ``mean`` (mean embedding), ``random`` (normal, the model's init
    std), ``sinusoidal`` (mean + a sinusoidal code of the token's position in ``tokens``, scaled
    to the embeddings' spread, so neighbouring time bins start out similar).
    """
    if init not in ("sinusoidal", "mean", "random"):
        raise ConfigError(
            f"temporal.embedding_init_strategy must be sinusoidal, mean or random, got {init!r}"
        )
    from tokenizers import AddedToken

    tokenizer = processor.tokenizer
    before = set(tokenizer.get_vocab())
    # normalized=False: the tokenizer's normalizer never rewrites them, so they stay whole tokens.
    tokenizer.add_tokens([AddedToken(t, normalized=False, special=False) for t in tokens])
    ids = [tokenizer.convert_tokens_to_ids(t) for t in tokens]
    new_positions = [i for i, t in enumerate(tokens) if t not in before]
    if not new_positions:
        return ids
    rows = model.get_input_embeddings().weight.shape[0]
    if max(ids) >= rows:
        # Exactly the tokenizer's size: extra padding rows would be random after a reload.
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    new_ids = [ids[i] for i in new_positions]
    from ..tasks.temporal_grounding.temporal_tokens import init_temporal_embeddings

    # One initialiser for both matrices (the output one only when it is not tied to the input).
    matrices = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != matrices[0].data_ptr():
        matrices.append(out.weight)
    for w in matrices:
        init_temporal_embeddings(w, new_ids, init, seed=len(tokens))
    return ids


def apply_lora(
    model: nn.Module,
    lora: Any,
    *,
    train_vision_tower: bool = False,
    train_projector: bool = False,
    new_token_ids: Sequence[int] | None = None,
) -> Any:
    """Wrap ``model`` in a peft LoRA model following the module docstring's rules.

    ``lora`` is a ``LoraConfig`` section (or dict) with ``r``, ``lora_alpha``, ``lora_dropout``,
    ``target_modules``, ``modules_to_save``. Returns the ``PeftModel``.
    """
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    layout = family_of(model)
    target = resolve_target_modules(
        model, _get(lora, "target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"]), layout
    )
    lm = _lm_modules(model, layout)
    user_save = list(_get(lora, "modules_to_save", None) or [])
    for name in user_save:
        if not any(_matches(n, name) for n, _ in model.named_modules() if n):
            raise ConfigError(
                f"lora.modules_to_save: {name!r} matches no module of {type(model).__name__}; modules that are "
                f"usually saved: lm_head, embed_tokens. Language model module names: {', '.join(_leaf_names(lm))}"
            )
    modules_to_save = user_save + _full_train_modules(
        model, layout, vision_tower=train_vision_tower, projector=train_projector
    )
    trainable_tokens = trainable_token_indices(model, new_token_ids, user_save)
    config = PeftLoraConfig(
        r=int(_get(lora, "r", 8)),
        lora_alpha=_get(lora, "lora_alpha", 16),
        lora_dropout=float(_get(lora, "lora_dropout", 0.0)),
        target_modules=target,
        modules_to_save=modules_to_save or None,
        trainable_token_indices=trainable_tokens,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    return peft_model


def trainable_token_indices(
    model: nn.Module, new_token_ids: Sequence[int] | None, modules_to_save: Sequence[str] = ()
) -> dict[str, list[int]] | None:
    """peft's ``trainable_token_indices``: the added tokens' rows of the input (and untied output)
    embeddings, leaving out a matrix that ``modules_to_save`` already trains in full."""
    if not new_token_ids:
        return None
    trainable_tokens = {}
    emb_name = _module_name(model, model.get_input_embeddings())
    out = model.get_output_embeddings()
    candidates = [emb_name]
    if out is not None and out.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        candidates.append(_module_name(model, out))
    for name in candidates:
        leaf = name.rsplit(".", 1)[-1]
        if not any(_matches(name, s) for s in modules_to_save):
            trainable_tokens[leaf] = sorted(set(int(i) for i in new_token_ids))
    return trainable_tokens or None


def _module_name(model: nn.Module, module: nn.Module) -> str:
    for name, m in model.named_modules():
        if m is module:
            return name
    raise ValueError("module not found in model")


def freeze_for_full_finetune(
    model: nn.Module,
    *,
    train_vision_tower: bool,
    train_projector: bool,
    train_head: bool = True,
    train_language_model: bool = True,
) -> None:
    """Set ``requires_grad`` per part when training without LoRA."""
    layout = family_of(model)
    want = {
        "vision_tower": train_vision_tower,
        "projector": train_projector,
        "head": train_head,
        "language_model": train_language_model,
    }
    for name, p in model.named_parameters():
        p.requires_grad_(want[layout.role(name)])


def param_groups(
    model: nn.Module,
    *,
    learning_rate: float,
    mm_projector_lr: float | None = None,
    vision_tower_lr: float | None = None,
    head_lr: float | None = None,
    weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: one per (part, decay) with the part's learning rate.

    Only parameters with ``requires_grad`` are included. A part whose rate is 0 is frozen here
    (its parameters get ``requires_grad=False``), so a 0 learning rate can never still move
    weights through weight decay or Adam's epsilon. ``None`` rates fall back to ``learning_rate``.
    Each group carries a ``"name"`` (``language_model``, ``projector``, ``vision_tower``, ``head``).
    """
    layout = family_of(model)
    rates = {
        "language_model": learning_rate,
        "projector": learning_rate if mm_projector_lr is None else mm_projector_lr,
        "vision_tower": learning_rate if vision_tower_lr is None else vision_tower_lr,
        "head": learning_rate if head_lr is None else head_lr,
    }
    buckets: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        role = layout.role(name)
        if rates[role] == 0:
            p.requires_grad_(False)
            continue
        # peft's LoRA factors and token rows are not norms or biases: decay them like weights.
        decay = p.dim() >= 2 and not _NO_DECAY.search(name)
        buckets.setdefault((role, decay), []).append(p)
    groups = []
    for (role, decay), params in sorted(buckets.items()):
        groups.append(
            {
                "params": params,
                "lr": rates[role],
                "weight_decay": weight_decay if decay else 0.0,
                "name": f"{role}{'' if decay else '_no_decay'}",
            }
        )
    return groups


def trainable_summary(model: nn.Module) -> dict[str, int]:
    """Trainable parameter count per part (and ``total``), for the training log."""
    layout = family_of(model)
    out: dict[str, int] = {"total": 0}
    for name, p in model.named_parameters():
        if p.requires_grad:
            role = layout.role(name)
            out[role] = out.get(role, 0) + p.numel()
            out["total"] += p.numel()
    return out
