"""Registers the built-in ``transformers`` backend. Light: no torch import here."""

from __future__ import annotations

import importlib.util

import vtg_core
from vtg_core.records import BackendSpec


def transformers_usable() -> tuple[bool, str]:
    """Whether torch, transformers and peft are installed (found without importing them)."""
    missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"missing {', '.join(missing)}: pip install 'vtg-core[train]'"
    return True, ""


@vtg_core.hookimpl(trylast=True)
def vtg_register_backends() -> list[BackendSpec]:
    return [
        BackendSpec(
            name="transformers",
            description="Hugging Face transformers + peft LoRA: Qwen3-VL, Qwen2.5-VL, InternVL3.",
            factory="vtg_core.backends.transformers_backend:TransformersBackend",
            check="vtg_core.backends.plugin:transformers_usable",
        )
    ]
