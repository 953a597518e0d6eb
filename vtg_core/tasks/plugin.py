"""Built-in plugin registering the ``temporal_grounding`` task.

Registered like any installed plugin, with ``trylast=True`` so a plugin that registers the same
name replaces it. Only the record is built here; the task class loads from its factory string.
"""

from __future__ import annotations

from .. import hookimpl
from ..records import TaskSpec


@hookimpl(trylast=True)
def vtg_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="temporal_grounding",
            description="Video temporal grounding: when does the sentence happen? Answers (start, end) seconds.",
            factory="vtg_core.tasks.temporal_grounding.task:TemporalGroundingTask",
            default_rewards=[
                {"name": "temporal_iou", "weight": 1.0},
                {"name": "segment_overlap", "weight": 0.5, "mode": "recall"},
            ],
            metrics=["R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_failure_rate"],
        )
    ]
