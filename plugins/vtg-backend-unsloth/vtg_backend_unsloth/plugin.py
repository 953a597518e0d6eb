"""What this plugin registers: the ``unsloth`` backend record. Light: no torch, no unsloth import."""

from __future__ import annotations

import vtg_core
from vtg_core.records import BackendSpec


@vtg_core.hookimpl
def vtg_register_backends() -> list[BackendSpec]:
    return [
        BackendSpec(
            name="unsloth",
            description="unsloth FastVisionModel: faster LoRA / 4-bit QLoRA on one GPU (Qwen3-VL, Qwen2.5-VL).",
            factory="vtg_backend_unsloth.backend:UnslothBackend",
            check="vtg_backend_unsloth.availability:unsloth_usable",
        )
    ]
