"""The built-in ``transformers`` backend: transformers' native classes + peft LoRA.

Qwen3-VL (default), Qwen2.5-VL and InternVL3 load through ``AutoModelForImageTextToText`` by Hub
id or local path. The pieces live in small modules; this class is the object a
``BackendSpec`` factory returns and the SFT / GRPO / predict code talks to:

>>> backend = TransformersBackend()                                 # doctest: +SKIP
>>> model, processor = backend.load(config)                         # base model + processor
>>> model, added = backend.prepare_for_training(model, processor, config)  # tokens, LoRA, freezing
>>> batch = backend.collate([backend.encode(processor, messages, frames, answer)])
>>> backend.save_checkpoint(model, processor, "out/final", config=config)
>>> model, processor = backend.load_checkpoint("out/final")
>>> backend.generate(model, processor, [backend.encode(processor, messages, frames)])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from ..tasks.temporal_grounding.temporal_tokens import temporal_token_strings
from . import checkpoint as _checkpoint
from . import lora as _lora
from .families import FamilyLayout, family_of
from .loading import load_model_and_processor
from .video_inputs import encode as _encode

log = logging.getLogger(__name__)


def generate(
    model: Any, processor: Any, batch: Any, *, skip_special_tokens: bool = True, **gen_kwargs: Any
) -> list[str]:
    """Generate answers and return only the new text of each row.

    ``batch`` is a list of encoded examples (:func:`encode` without an answer; they are left-padded
    here) or an already collated, left-padded batch. ``gen_kwargs`` go to ``model.generate``
    (``max_new_tokens`` defaults to 64; decoding defaults come from the generation config).
    """
    from ..train.collate import VideoCollator

    if isinstance(batch, (list, tuple)):
        batch = VideoCollator.for_processor(processor, padding_side="left")(
            [{k: v for k, v in ex.items() if k != "labels"} for ex in batch]
        )
    else:
        batch = {k: v for k, v in batch.items() if k != "labels"}
        mask = batch.get("attention_mask")
        if mask is not None and bool((mask[:, -1] == 0).any()):
            raise ValueError("generate() needs a left-padded batch (use VideoCollator(padding_side='left'))")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    inputs = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device)
            if v.is_floating_point() and k.startswith("pixel_values"):
                v = v.to(dtype)
        inputs[k] = v
    gen_kwargs.setdefault("max_new_tokens", 64)
    with torch.no_grad():
        out = model.generate(**inputs, **gen_kwargs)
    new_tokens = out[:, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=skip_special_tokens)


def refuse_backend_settings(model_cfg: Any) -> None:
    """Stop on ``model.quantization`` / ``model.backend_options``: settings this backend does not have."""
    from ..errors import ConfigError

    quantization = getattr(model_cfg, "quantization", "none") or "none"
    if quantization != "none":
        raise ConfigError(
            f"model.quantization={quantization}: the transformers backend loads full-precision weights only; "
            "4/8-bit base weights need --backend unsloth (pip install 'vtg-backend-unsloth[unsloth]', a GPU), "
            "or set model.quantization: none"
        )
    options = dict(getattr(model_cfg, "backend_options", None) or {})
    if options:
        raise ConfigError(
            f"model.backend_options: {', '.join(sorted(options))} are not settings of the transformers backend "
            "(it has none); they belong to the backend that defines them (model.backend)"
        )


class TransformersBackend:
    """Load, prepare, encode, save, reload and generate with transformers + peft."""

    name = "transformers"

    def __init__(self, **options: Any):
        self.options = options

    # -- loading -------------------------------------------------------------------------------
    def load(self, config: Any, *, device_map: Any = None) -> tuple[Any, Any]:
        """Base ``(model, processor)`` from ``config.model`` (a ``VtgConfig`` or its ``model`` section)."""
        m = getattr(config, "model", config)
        if not getattr(m, "name_or_path", None):
            from ..errors import ConfigError

            raise ConfigError(
                "model.name_or_path is empty: give a Hub id (Qwen/Qwen3-VL-4B-Instruct) or a path"
            )
        refuse_backend_settings(m)
        model, processor = load_model_and_processor(
            m.name_or_path,
            torch_dtype=getattr(m, "torch_dtype", "auto"),
            attn_implementation=getattr(m, "attn_implementation", None),
            trust_remote_code=bool(getattr(m, "trust_remote_code", False)),
            device_map=device_map,
        )
        family_of(model)  # refuse unsupported families now, not mid-training
        return model, processor

    def family(self, model: Any) -> FamilyLayout:
        return family_of(model)

    # -- training setup --------------------------------------------------------------------------
    def prepare_for_training(
        self, model: Any, processor: Any, config: Any, *, extra_tokens: Sequence[str] | None = None
    ) -> tuple[Any, list[str]]:
        """Add tokens, freeze / LoRA-wrap per config, enable gradient checkpointing.

        ``extra_tokens`` are the task's new vocabulary tokens (``task.extra_tokens``); without them
        ``temporal.use_temporal_tokens`` adds ``<0>``..``<num_bins-1>``. Their embedding rows start
        from ``temporal.embedding_init_strategy`` and are the only embedding rows that train
        (unless ``lora.modules_to_save`` names the whole matrix). Returns ``(model, added_tokens)``;
        ``model`` is a ``PeftModel`` when ``lora.enabled``.
        """
        parts = _lora.trainable_parts(config)
        temporal = getattr(config, "temporal", None)
        tokens = list(extra_tokens or [])
        if not tokens and temporal is not None and getattr(temporal, "use_temporal_tokens", False):
            tokens = temporal_token_strings(temporal.num_bins)
        new_ids: list[int] = []
        if tokens:
            init = (
                getattr(temporal, "embedding_init_strategy", "sinusoidal") if temporal is not None else "mean"
            )
            new_ids = _lora.add_tokens(model, processor, tokens, init=init)
        added = tokens
        training = config.training
        lora_cfg = config.lora
        if getattr(lora_cfg, "enabled", True):
            model = _lora.apply_lora(
                model,
                lora_cfg,
                train_vision_tower=parts["vision_tower"],
                train_projector=parts["projector"],
                new_token_ids=new_ids,
            )
        else:
            _lora.freeze_for_full_finetune(
                model,
                train_vision_tower=parts["vision_tower"],
                train_projector=parts["projector"],
                train_head=training.head_lr > 0,
                train_language_model=training.learning_rate > 0,
            )
        if getattr(config.model, "gradient_checkpointing", False):
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            # Non-reentrant checkpointing needs no input grads, so frozen embeddings under LoRA work.
            if hasattr(base, "activation_checkpointing_enable"):
                base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:  # transformers before 5.2x (unsloth caps it at 5.17) has only the old name
                base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            base.config.use_cache = False
        log.info("trainable parameters: %s", _lora.trainable_summary(model))
        return model, added

    def param_groups(self, model: Any, config: Any) -> list[dict[str, Any]]:
        """Optimizer groups with the per-part learning rates of ``config.training``."""
        t = config.training
        return _lora.param_groups(
            model,
            learning_rate=t.learning_rate,
            mm_projector_lr=t.mm_projector_lr,
            vision_tower_lr=t.vision_tower_lr,
            head_lr=t.head_lr,
            weight_decay=t.weight_decay,
        )

    # -- inputs ------------------------------------------------------------------------------------
    def encode(
        self,
        processor: Any,
        messages: Sequence[dict[str, Any]],
        frames: Any,
        answer: str | None = None,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor]:
        """See :func:`vtg_core.backends.video_inputs.encode`."""
        return _encode(processor, messages, frames, answer, **kwargs)

    def collator(self, processor: Any, *, padding_side: str = "right") -> Any:
        from ..train.collate import VideoCollator

        return VideoCollator.for_processor(processor, padding_side=padding_side)

    def collate(
        self,
        examples: Sequence[dict[str, Any]],
        processor: Any = None,
        *,
        padding_side: str = "right",
        pad_token_id: int | None = None,
    ) -> dict[str, torch.Tensor]:
        from ..train.collate import VideoCollator

        if pad_token_id is None:
            if processor is None:
                raise ValueError("collate() needs the processor or pad_token_id")
            return VideoCollator.for_processor(processor, padding_side=padding_side)(examples)
        return VideoCollator(pad_token_id, padding_side=padding_side)(examples)

    # -- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(
        self,
        model: Any,
        processor: Any,
        path: str,
        *,
        config: Any = None,
        added_tokens: list[str] | None = None,
        state_dict: dict[str, Any] | None = None,
    ) -> str:
        return _checkpoint.save_checkpoint(model, processor, path, config=config, added_tokens=added_tokens,
                                           state_dict=state_dict)

    def load_checkpoint(self, path: str, **kwargs: Any) -> tuple[Any, Any]:
        return _checkpoint.load_checkpoint(path, **kwargs)

    def merge_and_export(self, checkpoint_path: str, output_dir: str, **kwargs: Any) -> str:
        """Merge a LoRA checkpoint into its base and save a plain transformers model + processor."""
        model, processor = _checkpoint.load_checkpoint(checkpoint_path, **kwargs)
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
        return output_dir

    # -- inference ---------------------------------------------------------------------------------
    def generate(self, model: Any, processor: Any, batch: Any, **gen_kwargs: Any) -> list[str]:
        return generate(model, processor, batch, **gen_kwargs)
