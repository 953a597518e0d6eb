"""The ``unsloth`` backend: unsloth's ``FastVisionModel`` behind vtg's backend interface.

It is the transformers backend (:class:`vtg_core.backends.transformers_backend.TransformersBackend`)
with loading, LoRA and the training / inference switch done by unsloth; encoding, collation,
parameter groups, checkpoint saving and LoRA merging are the transformers backend's, so a
checkpoint holds the same files (adapter, processor, tokenizer with added tokens, chat template,
generation config, vtg config) and loads back with either backend.

- :meth:`load`: ``FastVisionModel.from_pretrained`` with the arguments :func:`~.plan.plan_for`
  derives from the config (4/8-bit, max sequence length, ``use_gradient_checkpointing="unsloth"``,
  full fine-tuning when LoRA is off). Unsupported combinations stop before anything loads.
- :meth:`prepare_for_training`: the task's tokens, then ``FastVisionModel.get_peft_model`` with
  the finetune_* flags, the projector as ``modules_to_save`` and the new tokens' rows as
  ``trainable_token_indices`` (as the transformers backend does), then ``for_training``.
- :meth:`generate` switches to ``for_inference`` and back; :meth:`load_checkpoint` loads the base
  through unsloth (quantized as it was trained) and the adapter through peft.

unsloth is imported when the backend is constructed, not before: it patches transformers and TRL
for the whole process, and raises at import on a machine without a GPU. Construction first asks
:func:`~.availability.unsloth_usable` and stops with its reason (which names
``--backend transformers``). Tests pass ``fast_vision_model=`` to stand in for unsloth.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from vtg_core.backends import lora as _lora
from vtg_core.backends.checkpoint import CONFIG_FILE
from vtg_core.backends.checkpoint import load_checkpoint as _load_checkpoint
from vtg_core.backends.families import family_of
from vtg_core.backends.loading import resolve_attn_implementation, resolve_dtype
from vtg_core.backends.transformers_backend import TransformersBackend
from vtg_core.backends.transformers_backend import generate as _generate
from vtg_core.errors import ConfigError
from vtg_core.tasks.temporal_grounding.temporal_tokens import temporal_token_strings

from .availability import unsloth_usable
from .plan import ATTENTION, MLP, backend_options, plan_for

log = logging.getLogger(__name__)


def import_fast_vision_model() -> Any:
    """unsloth's ``FastVisionModel`` (importing unsloth, which patches transformers / TRL)."""
    import unsloth  # noqa: F401  (first, so its patches apply)
    from unsloth import FastVisionModel

    return FastVisionModel


class UnslothBackend(TransformersBackend):
    """Load, prepare (LoRA / QLoRA), switch modes and reload through unsloth; the rest as transformers."""

    name = "unsloth"

    def __init__(self, *, fast_vision_model: Any = None, **options: Any):
        super().__init__(**options)
        if fast_vision_model is None:
            usable, why = unsloth_usable()
            if not usable:
                raise ConfigError(f"backend 'unsloth' cannot run on this machine: {why}")
            fast_vision_model = import_fast_vision_model()
        self.fast = fast_vision_model
        self._checkpointing: Any = "unsloth"

    # -- loading -------------------------------------------------------------------------------
    def load(self, config: Any, *, device_map: Any = None) -> tuple[Any, Any]:
        """Base ``(model, processor)`` through ``FastVisionModel.from_pretrained``."""
        plan = plan_for(config)  # refuses before anything loads
        m = config.model
        kwargs = dict(plan.load_kwargs)
        kwargs.update(self._precision(m.torch_dtype, m.attn_implementation))
        if device_map is not None:
            kwargs["device_map"] = device_map
        log.info("unsloth FastVisionModel.from_pretrained(%s)", ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
        model, processor = self.fast.from_pretrained(**kwargs)
        family_of(model)  # refuse unsupported families now, not mid-training
        self._checkpointing = plan.gradient_checkpointing
        return model, processor

    @staticmethod
    def _precision(torch_dtype: str | None, attn_implementation: str | None) -> dict[str, Any]:
        dtype = resolve_dtype(torch_dtype)
        out: dict[str, Any] = {"dtype": None if dtype == "auto" else dtype}  # None: unsloth picks bf16 / fp16
        attn = resolve_attn_implementation(attn_implementation)
        if attn is not None:
            out["attn_implementation"] = attn
        return out

    # -- training setup --------------------------------------------------------------------------
    def prepare_for_training(
        self, model: Any, processor: Any, config: Any, *, extra_tokens: Sequence[str] | None = None
    ) -> tuple[Any, list[str]]:
        """Add tokens, then unsloth LoRA (or per-part freezing without LoRA), then ``for_training``."""
        plan = plan_for(config)
        parts = _lora.trainable_parts(config)
        temporal = getattr(config, "temporal", None)
        tokens = list(extra_tokens or [])
        if not tokens and temporal is not None and getattr(temporal, "use_temporal_tokens", False):
            tokens = temporal_token_strings(temporal.num_bins)
        new_ids: list[int] = []
        if tokens:
            init = getattr(temporal, "embedding_init_strategy", "sinusoidal") if temporal is not None else "mean"
            new_ids = _lora.add_tokens(model, processor, tokens, init=init)
        if plan.peft_kwargs is not None:
            model = self._apply_lora(model, config, plan.peft_kwargs, parts, new_ids, plan.train_vision_lora)
        else:
            _lora.freeze_for_full_finetune(
                model,
                train_vision_tower=parts["vision_tower"],
                train_projector=parts["projector"],
                train_head=config.training.head_lr > 0,
                train_language_model=config.training.learning_rate > 0,
            )
        self._checkpointing = plan.gradient_checkpointing
        self.for_training(model)
        log.info("trainable parameters: %s", _lora.trainable_summary(model))
        return model, tokens

    def lora_arguments(
        self, model: nn.Module, config: Any, *, new_token_ids: Sequence[int] = ()
    ) -> dict[str, Any]:
        """The keyword arguments :meth:`prepare_for_training` gives ``FastVisionModel.get_peft_model``."""
        plan = plan_for(config)
        if plan.peft_kwargs is None:
            raise ConfigError("lora.enabled is false: there is no adapter to configure")
        return self._lora_kwargs(model, config, plan.peft_kwargs, _lora.trainable_parts(config),
                                 list(new_token_ids), plan.train_vision_lora)

    def _lora_kwargs(self, model: nn.Module, config: Any, base_kwargs: dict[str, Any], parts: dict[str, bool],
                     new_ids: list[int], train_vision: bool) -> dict[str, Any]:
        layout = family_of(model)
        kwargs = dict(base_kwargs)
        targets = kwargs["target_modules"]
        if targets is not None:
            vision_names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules() if layout.role(n) == "vision_tower"}
            language_targets = [t for t in targets if not (train_vision and t.rsplit(".", 1)[-1] in vision_names)]
            if language_targets:
                # The core's check names the model's real layers when a name matches nothing.
                _lora.resolve_target_modules(model, language_targets, layout)
            if train_vision:
                # The vision tower names its projections differently (qkv, proj, linear_fc1...).
                kwargs["target_modules"] = targets + _vision_leaves(
                    model, layout, attention=kwargs["finetune_attention_modules"],
                    mlp=kwargs["finetune_mlp_modules"], exclude=targets)
        user_save = list(config.lora.modules_to_save or [])
        # The projector trains in full, as with the transformers backend (vision LoRA is unsloth's own).
        save = user_save + _lora._full_train_modules(model, layout, vision_tower=False, projector=parts["projector"])
        kwargs["modules_to_save"] = save or None
        tokens = _lora.trainable_token_indices(model, new_ids, user_save)
        if tokens:
            kwargs["trainable_token_indices"] = tokens
        return kwargs

    def _apply_lora(self, model: nn.Module, config: Any, base_kwargs: dict[str, Any], parts: dict[str, bool],
                    new_ids: list[int], train_vision: bool) -> Any:
        kwargs = self._lora_kwargs(model, config, base_kwargs, parts, new_ids, train_vision)
        if kwargs["lora_dropout"] > 0:
            log.info("lora.lora_dropout=%s: unsloth's fast LoRA kernels need 0; it patches the rest and "
                     "runs these layers slower", kwargs["lora_dropout"])
        log.info("unsloth FastVisionModel.get_peft_model(%s)",
                 ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "trainable_token_indices"))
        return self.fast.get_peft_model(model, **kwargs)

    # -- modes -----------------------------------------------------------------------------------
    def for_training(self, model: Any) -> Any:
        """unsloth's training mode (gradient checkpointing on as configured, padding right)."""
        self.fast.for_training(model, use_gradient_checkpointing=self._checkpointing)
        return model

    def for_inference(self, model: Any) -> Any:
        """unsloth's inference mode (no checkpointing, KV cache on, padding left)."""
        self.fast.for_inference(model)
        return model

    def generate(self, model: Any, processor: Any, batch: Any, **gen_kwargs: Any) -> list[str]:
        """Generate in inference mode; a model that was training is put back into training mode."""
        was_training = bool(getattr(model, "training", False))
        self.for_inference(model)
        try:
            return _generate(model, processor, batch, **gen_kwargs)
        finally:
            if was_training:
                self.for_training(model)

    # -- checkpoints -------------------------------------------------------------------------------
    def load_checkpoint(
        self,
        path: str,
        *,
        torch_dtype: str | None = "auto",
        attn_implementation: str | None = None,
        device_map: Any = None,
        base_model: str | None = None,
        is_trainable: bool = False,
    ) -> tuple[Any, Any]:
        """``(model, processor)`` of a vtg checkpoint: base through unsloth, quantized as trained
        (the checkpoint's ``vtg_config.yaml``), the adapter through peft; inference mode unless
        ``is_trainable``."""
        saved = _saved_model_section(path)
        quantization = saved.get("quantization", "none") or "none"
        options, problems = backend_options({"model": saved})
        if problems:
            raise ConfigError(f"{Path(path) / CONFIG_FILE}: " + "; ".join(problems))

        def loader(name_or_path: str, *, torch_dtype: Any = "auto", attn_implementation: Any = None,
                   trust_remote_code: bool = False, device_map: Any = None, processor_path: str | None = None):
            kwargs = {"model_name": name_or_path, "max_seq_length": int(options["max_seq_length"]),
                      "load_in_4bit": quantization == "4bit", "load_in_8bit": quantization == "8bit",
                      "full_finetuning": False, "trust_remote_code": trust_remote_code,
                      "use_gradient_checkpointing": self._checkpointing,
                      **self._precision(torch_dtype, attn_implementation)}
            if device_map is not None:
                kwargs["device_map"] = device_map
            model, processor = self.fast.from_pretrained(**kwargs)
            if processor_path is not None:
                from transformers import AutoProcessor

                processor = AutoProcessor.from_pretrained(processor_path, trust_remote_code=trust_remote_code)
            return model, processor

        model, processor = _load_checkpoint(path, torch_dtype=torch_dtype, attn_implementation=attn_implementation,
                                            device_map=device_map, base_model=base_model,
                                            is_trainable=is_trainable, loader=loader)
        if is_trainable:
            self.for_training(model)
        else:
            self.for_inference(model)
        return model, processor


def _saved_model_section(path: str) -> dict[str, Any]:
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        return {}
    import yaml

    data = yaml.safe_load(file.read_text()) or {}
    return dict(data.get("model") or {})


_ATTENTION_BLOCK = ("attn", "attention", "self_attn")
_MLP_BLOCK = ("mlp", "feed_forward", "ffn")


def _vision_leaves(model: nn.Module, layout: Any, *, attention: bool, mlp: bool, exclude: Sequence[str]) -> list[str]:
    """Leaf names of the vision tower's linear layers inside attention / MLP blocks (not the projector)."""
    out: set[str] = set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or layout.role(name) != "vision_tower":
            continue
        parts = name.split(".")
        leaf = parts[-1]
        in_attention = any(p in _ATTENTION_BLOCK for p in parts[:-1])
        in_mlp = any(p in _MLP_BLOCK for p in parts[:-1])
        if (attention and in_attention and leaf in ATTENTION) or (mlp and in_mlp and leaf in MLP):
            out.add(leaf)
    return sorted(out - set(exclude))

