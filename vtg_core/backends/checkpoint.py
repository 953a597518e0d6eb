"""Complete, atomic checkpoints and loading them back with nothing else at hand.

A checkpoint directory holds:

- ``adapter_model.safetensors`` + ``adapter_config.json`` (LoRA; the base model's Hub id or path
  is recorded there by peft), or ``model.safetensors`` + ``config.json`` for a full fine-tune;
- the processor: ``processor_config.json``, ``tokenizer.json`` / ``tokenizer_config.json`` with
  any added tokens, ``chat_template.jinja``;
- ``generation_config.json``;
- ``vtg_config.yaml``: the resolved vtg configuration of the run;
- ``vtg_checkpoint.json``: what :func:`load_checkpoint` needs beyond that (kind, family, vocab size
  after added tokens, the added tokens).

It is written into a sibling temporary directory and renamed into place, so a crash mid-save
never leaves a half checkpoint under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from .. import __version__

CHECKPOINT_META = "vtg_checkpoint.json"
CONFIG_FILE = "vtg_config.yaml"


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def _base(model: Any) -> Any:
    return model.get_base_model() if _is_peft(model) else model


def write_vtg_files(
    directory: str | os.PathLike[str],
    model: Any,
    processor: Any,
    *,
    config: Any = None,
    added_tokens: list[str] | None = None,
) -> None:
    """Write ``vtg_config.yaml``, ``vtg_checkpoint.json`` and ``generation_config.json`` into a directory.

    Used for the final checkpoint and for the Trainer's intermediate ``checkpoint-N`` folders.
    """
    from .families import family_of

    directory = Path(directory)
    base = _base(model)
    meta = {
        "format": 1,
        "vtg_version": __version__,
        "kind": "lora" if _is_peft(model) else "full",
        "family": family_of(base).name,
        "model_type": base.config.model_type,
        "base_model": _base_name(model),
        "vocab_size": int(base.get_input_embeddings().weight.shape[0]),
        "tokenizer_size": len(processor.tokenizer),
        "added_tokens": list(added_tokens or []),
        "trust_remote_code": bool(_get(_get(config, "model"), "trust_remote_code", False)),
    }
    (directory / CHECKPOINT_META).write_text(json.dumps(meta, indent=2) + "\n")
    if getattr(base, "generation_config", None) is not None:
        base.generation_config.save_pretrained(directory)
    if config is not None:
        _write_config(directory / CONFIG_FILE, config)


def _get(section: Any, key: str, default: Any = None) -> Any:
    if section is None:
        return default
    if isinstance(section, dict):
        return section.get(key, default)
    return getattr(section, key, default)


def _base_name(model: Any) -> str | None:
    if _is_peft(model):
        cfg = model.peft_config.get(getattr(model, "active_adapter", "default")) or next(
            iter(model.peft_config.values())
        )
        return cfg.base_model_name_or_path
    return getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)


def _write_config(path: Path, config: Any) -> None:
    import yaml

    if hasattr(config, "dump_yaml"):
        config.dump_yaml(str(path))
        return
    if hasattr(config, "to_dict"):
        data = config.to_dict()
    elif isinstance(config, dict):
        data = config
    else:
        import attrs

        data = attrs.asdict(config)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def save_checkpoint(
    model: Any,
    processor: Any,
    path: str | os.PathLike[str],
    *,
    config: Any = None,
    added_tokens: list[str] | None = None,
    state_dict: dict[str, Any] | None = None,
) -> str:
    """Save a complete checkpoint to ``path`` atomically; returns ``path`` as a string.

    An existing checkpoint at ``path`` is replaced only once the new one is fully written.
    ``state_dict`` replaces the model's own weights (ZeRO-3 gathers them onto rank 0 this way).
    """
    final = Path(path).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        if state_dict is None:
            model.save_pretrained(tmp, safe_serialization=True)
        else:
            model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        processor.save_pretrained(tmp)
        write_vtg_files(tmp, model, processor, config=config, added_tokens=added_tokens)
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def read_checkpoint_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``vtg_checkpoint.json`` of a checkpoint, or what can be inferred without it."""
    path = Path(path)
    meta_file = path / CHECKPOINT_META
    if meta_file.is_file():
        return json.loads(meta_file.read_text())
    if (path / "adapter_config.json").is_file():
        adapter = json.loads((path / "adapter_config.json").read_text())
        return {"kind": "lora", "base_model": adapter.get("base_model_name_or_path")}
    if (path / "config.json").is_file():
        return {"kind": "full"}
    raise FileNotFoundError(
        f"{path} is not a vtg checkpoint: it has none of {CHECKPOINT_META}, adapter_config.json, config.json"
    )


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    torch_dtype: str | None = "auto",
    attn_implementation: str | None = None,
    device_map: Any = None,
    base_model: str | None = None,
    is_trainable: bool = False,
    loader: Any = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """``(model, processor)`` from a checkpoint directory, in eval mode unless ``is_trainable``.

    A LoRA checkpoint loads its base model from the id/path recorded in ``adapter_config.json``
    (``base_model`` overrides it, e.g. when the base moved), grows the embeddings to the saved
    vocabulary size, then loads the adapter. The processor always comes from the checkpoint, so
    added tokens and the chat template are the trained ones. ``loader`` replaces
    :func:`~vtg_core.backends.loading.load_model_and_processor` (same signature): another
    backend's way of loading the base, e.g. unsloth's 4-bit one.

    ``trust_remote_code`` is the caller's decision, never the checkpoint's: a checkpoint trained
    with it (its ``vtg_checkpoint.json`` says so) is refused unless the caller passes True, since
    loading it runs Python code shipped with the model files.
    """
    from ..errors import ConfigError
    from .loading import load_model_and_processor

    load_model_and_processor = loader or load_model_and_processor

    path = Path(path)
    meta = read_checkpoint_meta(path)
    if meta.get("trust_remote_code") and not trust_remote_code:
        raise ConfigError(f"{path} was trained with model.trust_remote_code=true: loading it runs Python code "
                          f"shipped with the model. If you trust where it came from, load it with "
                          f"trust_remote_code=True (config: model.trust_remote_code: true)")
    trust = bool(trust_remote_code)
    if meta.get("kind") == "full":
        model, processor = load_model_and_processor(
            str(path),
            torch_dtype=torch_dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust,
            device_map=device_map,
        )
    else:
        from peft import PeftModel

        base_id = base_model or meta.get("base_model")
        if not base_id:
            raise FileNotFoundError(f"{path}: the adapter does not record its base model; pass base_model=")
        model, processor = load_model_and_processor(
            base_id,
            torch_dtype=torch_dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust,
            device_map=device_map,
            processor_path=str(path),
        )
        vocab = meta.get("vocab_size")
        if vocab and model.get_input_embeddings().weight.shape[0] != vocab:
            # The new rows' values come from the adapter (trainable tokens or modules_to_save).
            model.resize_token_embeddings(vocab, mean_resizing=False)
        model = PeftModel.from_pretrained(model, str(path), is_trainable=is_trainable)
    if (path / "generation_config.json").is_file():
        from transformers import GenerationConfig

        _base(model).generation_config = GenerationConfig.from_pretrained(str(path))
    if not is_trainable:
        model.eval()
    return model, processor
