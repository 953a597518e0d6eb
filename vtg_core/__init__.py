"""vtg: fine-tune video language models on video understanding tasks.

The public API a plugin needs: :data:`hookimpl` and the record types. Importing this package
imports no torch, transformers, trl or decord (a test asserts it).
"""

from __future__ import annotations

import pluggy

from .records import BackendSpec, RewardSpec, SamplerSpec, TaskSpec

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("vtg")

__all__ = ["BackendSpec", "RewardSpec", "SamplerSpec", "TaskSpec", "__version__", "hookimpl"]
