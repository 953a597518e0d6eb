"""The DeepSpeed JSON a run trains with: the config file with its ``"auto"`` values filled from vtg's.

``configs/deepspeed/ds_zero2.json`` and ``ds_zero3_offload.json`` leave every value vtg's own
config also decides at ``"auto"``. :func:`resolve_deepspeed` fills them from the training
settings of the run, so the two can never disagree, and refuses a number written in the JSON that
contradicts vtg's (naming both keys):

========================================  ================================================
DeepSpeed                                 vtg
========================================  ================================================
``train_micro_batch_size_per_gpu``        the per-device batch (``dataloader.batch_size`` or
                                          ``training.per_device_train_batch_size``; GRPO:
                                          completions per device)
``gradient_accumulation_steps``           ``training.gradient_accumulation_steps``
``gradient_clipping``                     ``training.max_grad_norm``
``bf16.enabled`` / ``fp16.enabled``       ``training.bf16`` / ``fp16`` as applied (off on a CPU)
``train_batch_size``                      micro batch x accumulation x processes; an ``"auto"``
                                          is left for DeepSpeed to compute, because transformers
                                          5.2x fills it before the process group exists (with
                                          a world size of 1) and DeepSpeed then refuses it
========================================  ================================================

The model-size values (``reduce_bucket_size``, ``stage3_prefetch_bucket_size``,
``stage3_param_persistence_threshold``) stay ``"auto"``: the Hugging Face integration computes
them from the model's hidden size. The files define no ``optimizer``: vtg builds its own, with one
learning rate per module group, so with optimizer offload DeepSpeed must accept a client
optimizer (``zero_force_ds_cpu_optimizer: false``, set here if the file does not say).
The resolved JSON is written next to the checkpoints as ``deepspeed.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError

log = logging.getLogger(__name__)

RESOLVED_FILE = "deepspeed.json"


def load_deepspeed_json(value: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """``(path, data)`` of a DeepSpeed config given as a path or a packaged name (``zero2``...)."""
    from ..config import resolve_deepspeed_config

    path = resolve_deepspeed_config(value)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a DeepSpeed config must be a JSON object, got {type(data).__name__}")
    return Path(path), data


def _fill(data: dict[str, Any], key: str, value: Any, vtg_key: str, source: Path) -> None:
    node, _, leaf = key.rpartition(".")
    target = data
    for part in node.split(".") if node else []:
        target = target.get(part)
        if not isinstance(target, dict):
            return  # the section is absent: DeepSpeed's default applies, nothing to disagree with
    if leaf not in target:
        return
    current = target[leaf]
    if current == "auto":
        target[leaf] = value
    elif current != value and not (isinstance(current, int | float) and isinstance(value, int | float)
                                   and float(current) == float(value)):
        raise ConfigError(f"{source}: {key} is {current!r} but vtg's {vtg_key} is {value!r}; "
                          f"set it to \"auto\" in the JSON (vtg fills it) or make the two agree")


def resolve_deepspeed(value: str | os.PathLike[str], *, micro_batch: int, gradient_accumulation: int,
                      max_grad_norm: float, bf16: bool, fp16: bool, world_size: int = 1,
                      cuda: bool = False) -> dict[str, Any]:
    """The DeepSpeed config of a run: ``value``'s JSON with vtg's values in place of ``"auto"``.

    ``bf16`` / ``fp16`` are the precisions the trainer actually uses (both off on a CPU);
    ``world_size`` is the number of processes; ``cuda`` whether they have GPUs (CPU-only runs get
    unpinned offload buffers, as pinning needs a GPU). See the module docstring.
    """
    source, raw = load_deepspeed_json(value)
    data = copy.deepcopy(raw)
    _fill(data, "train_micro_batch_size_per_gpu", int(micro_batch), "per-device batch size", source)
    _fill(data, "gradient_accumulation_steps", int(gradient_accumulation),
          "training.gradient_accumulation_steps", source)
    _fill(data, "gradient_clipping", float(max_grad_norm), "training.max_grad_norm", source)
    _fill(data, "bf16.enabled", bool(bf16), "training.bf16 (as applied on this machine)", source)
    _fill(data, "fp16.enabled", bool(fp16), "training.fp16 (as applied on this machine)", source)
    total = int(micro_batch) * int(gradient_accumulation) * int(world_size)
    if data.get("train_batch_size") == "auto":
        del data["train_batch_size"]
    elif "train_batch_size" in data and data["train_batch_size"] != total:
        raise ConfigError(f"{source}: train_batch_size is {data['train_batch_size']!r} but the per-device batch "
                          f"{micro_batch} x gradient_accumulation_steps {gradient_accumulation} x {world_size} "
                          f"process(es) is {total}; set it to \"auto\"")
    zero = data.get("zero_optimization") or {}
    offloads = [k for k in ("offload_optimizer", "offload_param")
                if isinstance(zero.get(k), dict) and zero[k].get("device") not in (None, "none")]
    if "offload_optimizer" in offloads and "optimizer" not in data:
        data.setdefault("zero_force_ds_cpu_optimizer", False)
    if not cuda:
        for key in offloads:
            if zero[key].get("pin_memory"):
                zero[key]["pin_memory"] = False
                log.info("deepspeed: %s.pin_memory switched off (no GPU to pin memory for)", key)
    if "optimizer" in data or "scheduler" in data:
        log.warning("%s defines a DeepSpeed optimizer/scheduler: vtg's per-part learning rates "
                    "(mm_projector_lr, vision_tower_lr, head_lr) do not apply to it", source)
    return data


def write_resolved(data: dict[str, Any], output_dir: str | os.PathLike[str]) -> Path:
    """Write the resolved config as ``output_dir/deepspeed.json`` (call on rank 0)."""
    path = Path(output_dir) / RESOLVED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def deepspeed_for_run(config: Any, output_dir: str | os.PathLike[str], *, micro_batch: int, bf16: bool,
                      fp16: bool) -> dict[str, Any] | None:
    """The resolved DeepSpeed dict for ``config`` (``None`` without ``config.deepspeed``), written
    to ``output_dir`` by rank 0. What SFT's and GRPO's training arguments take as ``deepspeed``."""
    if not getattr(config, "deepspeed", None):
        return None
    from .distributed import dist_info, emulate_launcher

    emulate_launcher()
    info = dist_info()
    try:
        import torch

        cuda = bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - training needs torch
        cuda = False
    data = resolve_deepspeed(config.deepspeed, micro_batch=micro_batch,
                             gradient_accumulation=config.training.gradient_accumulation_steps,
                             max_grad_norm=config.training.max_grad_norm, bf16=bf16, fp16=fp16,
                             world_size=info.world_size, cuda=cuda)
    if info.is_main:
        write_resolved(data, output_dir)
    return data
