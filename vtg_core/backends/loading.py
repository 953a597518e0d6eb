"""Load a base model and its processor by Hub id or local path, with safe fallbacks.

- ``torch_dtype``: ``auto`` keeps the checkpoint's dtype; ``bfloat16`` / ``float16`` need a GPU
  here: on a CPU-only machine they fall back to ``float32`` with a log line (bf16 matmuls on CPU
  are slow or missing for some kernels, and fp16 is unsupported for many ops), so the same config
  runs in tests and on a laptop.
- ``attn_implementation``: ``flash_attention_2`` falls back to ``sdpa`` when ``flash_attn`` is
  not importable or there is no GPU, with a log line. ``None`` lets transformers pick.
- ``trust_remote_code`` stays off unless the config turns it on: the supported families have
  native transformers classes.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import torch

log = logging.getLogger(__name__)

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def resolve_dtype(name: str | None) -> Any:
    """The dtype to pass to ``from_pretrained`` (``"auto"`` passes through)."""
    if name in (None, "auto"):
        return "auto"
    if name not in _DTYPES:
        from ..errors import ConfigError

        raise ConfigError(f"model.torch_dtype must be auto, bfloat16, float16 or float32, got {name!r}")
    dtype = _DTYPES[name]
    if dtype in (torch.bfloat16, torch.float16) and not torch.cuda.is_available():
        log.info("model.torch_dtype=%s but no CUDA GPU is available: loading in float32", name)
        return torch.float32
    if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        log.info("this GPU does not support bfloat16: loading in float16")
        return torch.float16
    return dtype


def resolve_attn_implementation(name: str | None) -> str | None:
    """The attention implementation to request, falling back from flash attention when unusable."""
    if name in ("flash_attention_2", "flash_attention_3"):
        package = "flash_attn" if name == "flash_attention_2" else "flash_attn_interface"
        if importlib.util.find_spec(package) is None:
            log.info("model.attn_implementation=%s but %s is not installed: using sdpa", name, package)
            return "sdpa"
        if not torch.cuda.is_available():
            log.info("model.attn_implementation=%s needs a CUDA GPU: using sdpa", name)
            return "sdpa"
    return name


def load_model_and_processor(
    name_or_path: str,
    *,
    torch_dtype: str | None = "auto",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    device_map: Any = None,
    processor_path: str | None = None,
) -> tuple[Any, Any]:
    """``(model, processor)`` from a Hub id or a local directory, via the Auto classes.

    ``processor_path`` loads the processor from elsewhere (a checkpoint with added tokens).
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs: dict[str, Any] = {"dtype": resolve_dtype(torch_dtype), "trust_remote_code": trust_remote_code}
    attn = resolve_attn_implementation(attn_implementation)
    if attn is not None:
        kwargs["attn_implementation"] = attn
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForImageTextToText.from_pretrained(name_or_path, **kwargs)
    processor = AutoProcessor.from_pretrained(
        processor_path or name_or_path, trust_remote_code=trust_remote_code
    )
    return model, processor
