"""Config, task, backend and model for using a checkpoint: the settings it was trained with.

A vtg checkpoint carries its resolved ``vtg_config.yaml``; evaluation and inference read frame
sampling, the time format and the prompt options from there, so a model sees at test time exactly
what it saw in training. ``--set`` overrides apply on top. A directory without that file (a plain
transformers model) or a Hub id falls back to the packaged defaults, with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backends.checkpoint import CONFIG_FILE
from ..config import VtgConfig, apply_overrides, default_config, load_config
from ..errors import ConfigError

log = logging.getLogger(__name__)

_CHECKPOINT_MARKERS = ("vtg_checkpoint.json", "adapter_config.json", "config.json")
PACKAGED_DEFAULTS = "packaged defaults"

# Generation length when the task does not reason first: train's held-out evaluation uses the
# same, so the number after training and `vtg eval`'s agree.
DEFAULT_MAX_NEW_TOKENS = 32


def is_checkpoint_dir(path: str | os.PathLike[str] | None) -> bool:
    return path is not None and Path(path).is_dir() and any((Path(path) / m).is_file() for m in _CHECKPOINT_MARKERS)


def checkpoint_config(model_path: str | os.PathLike[str] | None, overrides: Sequence[str] = (), *,
                      task_name: str | None = None) -> tuple[VtgConfig, str]:
    """``(config, where it came from)``: the checkpoint's ``vtg_config.yaml`` + ``task`` + ``overrides``."""
    sets = [f"task={task_name}"] if task_name else []
    sets.extend(overrides)
    if model_path is not None and Path(model_path).is_dir() and not is_checkpoint_dir(model_path):
        raise ConfigError(f"{model_path} is a directory but not a checkpoint: it has none of "
                          f"{', '.join(_CHECKPOINT_MARKERS)}. Point --model at the checkpoint folder "
                          "(e.g. <run>/checkpoints/final).")
    config_file = Path(model_path) / CONFIG_FILE if model_path is not None else None
    if config_file is not None and config_file.is_file():
        saved = load_config([config_file]).task
        config = load_config([config_file], sets)
        if task_name and task_name != saved:
            log.warning("%s was trained for task %r; evaluating it as %r", model_path, saved, task_name)
        return config, str(config_file.resolve())
    if model_path is not None:
        log.warning("%s has no %s: frame sampling, prompts and time format use the packaged defaults "
                    "(check them with --set video.max_frames=..., --set temporal.use_relative_timestamps=...)",
                    model_path, CONFIG_FILE)
        sets.insert(0, f"model.name_or_path={model_path}")
    return default_config("sft", sets), PACKAGED_DEFAULTS


def build_backend(config: VtgConfig) -> Any:
    from ..plugins import get_registry

    return get_registry().get("backend", config.model.backend).load()()


def device_map_for(local_rank: int = 0) -> Any:
    """One whole model per process on its own GPU (``local_rank``), or None for the CPU."""
    import torch

    if torch.cuda.is_available():
        return {"": f"cuda:{local_rank % torch.cuda.device_count()}"}
    return None


def _check_base(model_path: str, base_model: str | None) -> None:
    """A LoRA checkpoint's base must still be where training found it (or be given anew)."""
    from ..backends.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(model_path)
    base = base_model or meta.get("base_model")
    if meta.get("kind") != "lora" or not base:
        return
    # A Hub id is "name" or "owner/name"; anything else is a path on this machine.
    looks_local = os.path.isabs(base) or base.startswith((".", "~")) or base.count("/") > 1
    if looks_local and not Path(base).expanduser().exists():
        raise ConfigError(f"{model_path} is a LoRA adapter on the base model {base}, which no longer exists; "
                          "pass the base's new location or Hub id with --base-model")


def load_model(backend: Any, model_path: str, config: VtgConfig, *, device_map: Any = None,
               base_model: str | None = None) -> tuple[Any, Any]:
    """``(model, processor)`` in eval mode, from a checkpoint directory or a base model id/path.

    ``base_model`` replaces the base a LoRA checkpoint recorded (when the base moved).
    """
    kwargs: dict[str, Any] = {"device_map": device_map} if device_map is not None else {}
    if is_checkpoint_dir(model_path):
        _check_base(str(model_path), base_model)
        if base_model:
            kwargs["base_model"] = base_model
        if config.model.trust_remote_code:  # the user's choice only, never the checkpoint's
            kwargs["trust_remote_code"] = True
        model, processor = backend.load_checkpoint(str(model_path), **kwargs)
    elif Path(model_path).exists():
        raise ConfigError(f"{model_path} is not a checkpoint directory (a folder with vtg_checkpoint.json, "
                          "adapter_config.json or config.json)")
    else:
        cfg = apply_overrides(config, [f"model.name_or_path={model_path}"])
        model, processor = backend.load(cfg, **kwargs)
    model.eval()
    return model, processor


def default_max_new_tokens(task: Any, config: VtgConfig) -> int:
    """The task's own ``default_max_new_tokens`` when it has one; else 32 tokens for a bare answer,
    the GRPO completion length when the task reasons first."""
    own = getattr(task, "default_max_new_tokens", None)
    if isinstance(own, int) and own > 0:
        return own
    if getattr(task, "think", False):
        return int(config.rl.max_completion_length)
    return DEFAULT_MAX_NEW_TOKENS


def runtime_info(model: Any) -> dict[str, str]:
    """Device and dtype the answers were computed with (both can move greedy outputs)."""
    param = next(model.parameters())
    device = str(param.device)
    if param.device.type == "cuda":
        import torch

        device = f"cuda ({torch.cuda.get_device_name(param.device)})"
    return {"device": device, "dtype": str(param.dtype).replace("torch.", "")}
