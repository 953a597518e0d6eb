"""What this plugin registers. Records only: the task, rewards and sampler are imported on use.

Reward names are seed 001's exactly (``format``, ``refuse_iou``, ``explain_correction``), so RA-RFT
configs (``REWARD_FUNCS="format refuse_iou explain_correction"``) read the same. ``format`` is a
generic name; should another installed plugin register it too, the core refuses the name with an
error naming both distributions, and everything else keeps working.
"""

from __future__ import annotations

import vtg_core
from vtg_core import RewardSpec, SamplerSpec, TaskSpec

_SBERT_OPTIONS = {"model": None, "device": None, "batch_size": 64, "cache_size": 100_000}


@vtg_core.hookimpl
def vtg_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="refusal_grounding",
            description="Refusal-aware grounding (RA-RFT): segment + NIL, or refusal + corrected query.",
            factory="vtg_rewards_refusal.task:RefusalGroundingTask",
            default_rewards=[{"name": "format", "weight": 1.0}, {"name": "refuse_iou", "weight": 1.0},
                             {"name": "explain_correction", "weight": 1.0}],
            metrics=["refusal_accuracy", "refusal_precision", "refusal_recall", "refusal_f1", "R1@0.3", "R1@0.5",
                     "R1@0.7", "mIoU", "correction_similarity", "correction_rate", "format_rate",
                     "parse_failure_rate"],
        )
    ]


@vtg_core.hookimpl
def vtg_register_rewards() -> list[RewardSpec]:
    return [
        RewardSpec(
            name="format",
            description="1 if the output is exactly <think>..</think> <answer>..</answer> <correction>..</correction>.",
            factory="vtg_rewards_refusal.rewards:format_reward",
        ),
        RewardSpec(
            name="refuse_iou",
            description="Answerable: IoU x start/end accuracy; refusable: 1 for refusing, 0 for a timestamp.",
            factory="vtg_rewards_refusal.rewards:refuse_iou",
            options={"relative": None},
        ),
        RewardSpec(
            name="explain_correction",
            description="Refusal score + max(0, SBERT similarity of the correction to the references - 0.5).",
            factory="vtg_rewards_refusal.rewards:explain_correction",
            options={"threshold": 0.5, "relative": None, **_SBERT_OPTIONS},
        ),
    ]


@vtg_core.hookimpl
def vtg_register_samplers() -> list[SamplerSpec]:
    return [
        SamplerSpec(
            name="refusal_curriculum",
            description="Easy refusable queries first (by similarity to their references), widening per epoch.",
            factory="vtg_rewards_refusal.curriculum:build_curriculum",
        )
    ]
