"""Built-in plugin registering the core rewards.

``trylast=True`` lets an installed plugin replace any of them by registering the same name. The
records only name the factories; nothing is imported until a reward is used.
"""

from __future__ import annotations

from .. import hookimpl
from ..records import RewardSpec

_TIME_FORMAT = {"relative": None, "use_temporal_tokens": None, "num_bins": None}


@hookimpl(trylast=True)
def vtg_register_rewards() -> list[RewardSpec]:
    return [
        RewardSpec(
            name="temporal_iou",
            description="IoU of the predicted segment with the `timestamp` column (0 if unparseable).",
            factory="vtg_core.rewards.temporal:temporal_iou",
            options={"scale": 1.0, **_TIME_FORMAT},
        ),
        RewardSpec(
            name="segment_overlap",
            description="Share of the ground truth covered (recall) or of the prediction inside it (precision).",
            factory="vtg_core.rewards.temporal:segment_overlap",
            options={"mode": "recall", "scale": 1.0, **_TIME_FORMAT},
        ),
        RewardSpec(
            name="step_consistency",
            description="Ordered, in-bounds answer that agrees with the segment its <think> steps conclude.",
            factory="vtg_core.rewards.temporal:step_consistency",
            options={"tolerance": 0.5, "scale": 1.0, **_TIME_FORMAT},
        ),
        RewardSpec(
            name="composite",
            description="Weighted sum of other rewards: rewards=[{name, weight, **options}, ...].",
            factory="vtg_core.rewards.composite:composite",
            options={"rewards": []},
        ),
    ]
