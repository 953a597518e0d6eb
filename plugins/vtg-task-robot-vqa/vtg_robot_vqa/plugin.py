"""What this plugin registers: the ``robot_vqa`` task, its two rewards and ``vtg robot-vqa``.

Records and a click group only; the task, rewards, generator (numpy, datasets) and torch are
imported when used, so ``vtg --help`` and ``vtg plugins`` stay light.
"""

from __future__ import annotations

import vtg_core
from vtg_core import RewardSpec, TaskSpec

from .metrics import METRIC_NAMES


@vtg_core.hookimpl
def vtg_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="robot_vqa",
            description="Robot progress (0-100) and preference (video 1 or 2) VQA on npz trajectories (RFM).",
            factory="vtg_robot_vqa.task:RobotVQATask",
            default_rewards=[{"name": "robot_preference", "weight": 1.0}, {"name": "robot_progress", "weight": 1.0}],
            metrics=list(METRIC_NAMES),
        )
    ]


@vtg_core.hookimpl
def vtg_register_rewards() -> list[RewardSpec]:
    return [
        RewardSpec(name="robot_preference", description="1 if the answer names the video making more progress.",
                   factory="vtg_robot_vqa.rewards:preference_exact"),
        RewardSpec(name="robot_progress", description="1 - |predicted - true progress| / 100 on progress rows.",
                   factory="vtg_robot_vqa.rewards:progress_closeness", options={"scale": 100.0}),
    ]


@vtg_core.hookimpl
def vtg_register_commands(cli):
    from .cli import robot_vqa

    cli.add_command(robot_vqa)
