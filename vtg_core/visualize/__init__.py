"""Pictures of model behaviour: temporal-grounding timelines and IoU histograms.

``from vtg_core.visualize import visualize_temporal_grounding`` imports matplotlib only when a
name is first used (attribute access), so importing this package stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["eval_plots", "plot_iou_histogram", "visualize_temporal_grounding"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import timeline

        return getattr(timeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
