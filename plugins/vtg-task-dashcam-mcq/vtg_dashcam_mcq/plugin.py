"""What this plugin registers. Records only: the task and rewards are imported on use."""

from __future__ import annotations

import vtg_core
from vtg_core import RewardSpec, TaskSpec


@vtg_core.hookimpl
def vtg_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="dashcam_mcq",
            description="Dashcam multiple-choice QA (Road Buddy): traffic question + 2-4 choices -> a letter.",
            factory="vtg_dashcam_mcq.task:DashcamMCQTask",
            default_rewards=[{"name": "mcq_accuracy", "weight": 1.0}, {"name": "mcq_format", "weight": 0.5}],
            metrics=["accuracy", "accuracy_A", "accuracy_B", "accuracy_C", "accuracy_D", "parse_failure_rate"],
        )
    ]


@vtg_core.hookimpl
def vtg_register_rewards() -> list[RewardSpec]:
    return [
        RewardSpec(
            name="mcq_accuracy",
            description="1 when the answer's letter is the right choice, 0 otherwise (a parse failure too).",
            factory="vtg_dashcam_mcq.rewards:mcq_accuracy",
        ),
        RewardSpec(
            name="mcq_format",
            description="1 when the answer is the letter alone (or 'B.' / 'B. <choice text>'), else 0.",
            factory="vtg_dashcam_mcq.rewards:mcq_format",
        ),
    ]
