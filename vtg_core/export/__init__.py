"""Export a vtg checkpoint as a self-contained Hugging Face model folder (see :mod:`.hf`).

Lazy like the other packages: ``from vtg_core.export import export_checkpoint`` imports the
heavy stack only when called for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import hf

        return getattr(hf, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
