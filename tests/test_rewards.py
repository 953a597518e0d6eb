"""Built-in rewards: exact values in TRL's reward-function signature."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vtg_core.errors import ConfigError, UnknownNameError
from vtg_core.rewards import (
    build_rewards,
    completion_text,
    composite,
    segment_overlap,
    step_consistency,
    temporal_iou,
)

PROMPTS = ["p"] * 8


def call(fn, completions, **columns):
    # TRL passes extra keyword arguments besides the columns; rewards must ignore them.
    return fn(prompts=PROMPTS[: len(completions)], completions=completions, completion_ids=None,
              trainer_state=None, **columns)


def test_completion_text_handles_strings_and_conversations():
    assert completion_text("a") == "a"
    assert completion_text([{"role": "assistant", "content": "1 to 2"}]) == "1 to 2"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "1 to "}, {"type": "text", "text": "2"}]}]
    assert completion_text(parts) == "1 to 2"
    assert completion_text([{"role": "user", "content": "u"}, {"role": "assistant", "content": "x"}]) == "x"
    assert completion_text(None) == "" and completion_text([]) == ""


def test_temporal_iou_exact_values():
    fn = temporal_iou()
    assert fn.__name__ == "temporal_iou"
    completions = [
        "<answer>0 to 10</answer>",                                  # IoU 5/15 with [5, 15]
        [{"role": "assistant", "content": "<answer>5 to 15</answer>"}],
        "I do not know",                                             # unparseable: 0.0
        "<answer>15 to 5</answer>",                                  # reversed: 0.0
        "<answer>0 to 10</answer>",                                  # no ground truth: None
    ]
    out = call(fn, completions, timestamp=[[5, 15]] * 4 + [None], duration=[20.0] * 5)
    assert out == [pytest.approx(1 / 3), 1.0, 0.0, 0.0, None]


def test_temporal_iou_zero_length_and_outside_predictions():
    fn = temporal_iou(scale=2.0)
    completions = ["3 to 3", "3 to 3", "-5 to 10", "25 to 30"]
    out = call(fn, completions, timestamp=[[3, 3], [0, 10], [0, 10], [10, 20]], duration=[20.0] * 4)
    # equal instants: IoU 1; instant inside a segment: 0; clipped to [0, 20]: 1; past the end: 0
    assert out == [2.0, 0.0, 2.0, 0.0]


def test_temporal_iou_time_formats_from_column_and_options():
    fn = temporal_iou()
    out = call(fn, ["0.25 to 0.75", "<2><4>", "2 to 4"], timestamp=[[10, 30], [2, 4], [2, 4]],
               duration=[40.0, 10.0, 10.0], time_format=["relative", "tokens:11", "seconds"])
    assert out == [1.0, 1.0, 1.0]
    # an explicit option beats the column
    forced = temporal_iou(relative=True)
    assert call(forced, ["0.25 to 0.75"], timestamp=[[10, 30]], duration=[40.0], time_format=["seconds"]) == [1.0]
    # relative without a duration: not applicable rather than a wrong score
    assert call(forced, ["0.25 to 0.75"], timestamp=[[10, 30]]) == [None]


def test_temporal_iou_column_errors():
    with pytest.raises(ConfigError, match="needs a 'timestamp' column"):
        call(temporal_iou(), ["1 to 2"], duration=[3.0])
    with pytest.raises(ConfigError, match="2 values for 1 completions"):
        call(temporal_iou(), ["1 to 2"], timestamp=[[1, 2], [1, 2]])
    with pytest.raises(ConfigError, match="time_format"):
        call(temporal_iou(), ["1 to 2"], timestamp=[[1, 2]], time_format=["minutes"])
    with pytest.raises(ConfigError):
        temporal_iou(scale=float("nan"))
    with pytest.raises(ConfigError):
        temporal_iou(use_temporal_tokens=True)


def test_segment_overlap_recall_and_precision_exact():
    recall, precision = segment_overlap("recall"), segment_overlap(mode="precision")
    assert recall.__name__ == precision.__name__ == "segment_overlap"
    completions = ["0 to 10", "0 to 20", "0 to 10", "4 to 4", "9 to 1", "nothing", "0 to 10"]
    gts = [[5, 15], [5, 10], [3, 3], [0, 10], [0, 10], [0, 10], None]
    cols = {"timestamp": gts, "duration": [20.0] * 7}
    assert call(recall, completions, **cols) == [0.5, 1.0, 1.0, 0.0, 0.0, 0.0, None]
    assert call(precision, completions, **cols) == [0.5, 0.25, 0.0, 1.0, 0.0, 0.0, None]
    with pytest.raises(ConfigError, match="mode"):
        segment_overlap(mode="f1")


def test_step_consistency_exact():
    fn = step_consistency()
    completions = [
        "<think>it starts at 2 and ends at 4, so 2 to 4</think><answer>2 to 4</answer>",  # 3 checks pass
        "<answer>2 to 4</answer>",                                                     # ordered, in bounds
        "<answer>4 to 2</answer>",                                                     # reversed: 1 of 2
        "<answer>5 to 12</answer>",                                                    # past 10 + 0.5
        "<think>2 to 4</think><answer>3 to 5</answer>",                                # IoU 1/3 with steps
        "no answer",
    ]
    out = call(fn, completions, duration=[10.0] * 6)
    assert out == [1.0, 1.0, 0.5, 0.5, pytest.approx((2 + 1 / 3) / 3), 0.0]
    # without a duration the bounds check does not apply
    assert call(fn, ["<answer>5 to 12</answer>"]) == [1.0]
    assert call(step_consistency(tolerance=3.0), ["<answer>5 to 12</answer>"], duration=[10.0]) == [1.0]


def test_composite_weighted_sum_with_injected_registry():
    registry = {"temporal_iou": temporal_iou, "segment_overlap": segment_overlap, "step_consistency": step_consistency}
    fn = composite([{"name": "temporal_iou", "weight": 1.0},
                    {"name": "segment_overlap", "weight": 0.5, "mode": "recall"}], registry=registry)
    assert fn.__name__ == "composite"
    out = call(fn, ["0 to 10", "junk", "0 to 10"], timestamp=[[5, 15], [5, 15], None], duration=[20.0] * 3)
    assert out == [pytest.approx(1 / 3 + 0.5 * 0.5), 0.0, None]
    # a component that applies (step_consistency needs no ground truth) keeps the sum defined
    mixed = composite([{"name": "temporal_iou"}, {"name": "step_consistency", "weight": 2}], registry=registry)
    assert call(mixed, ["1 to 2"], timestamp=[None], duration=[5.0]) == [2.0]


def test_composite_errors_name_the_entry():
    registry = {"temporal_iou": temporal_iou}
    with pytest.raises(UnknownNameError, match="unknown reward 'iou'"):
        composite([{"name": "iou"}], registry=registry)
    with pytest.raises(ConfigError, match=r"reward 'temporal_iou'.*scael.*accepted options"):
        composite([{"name": "temporal_iou", "scael": 2}], registry=registry)
    with pytest.raises(ConfigError, match="weight"):
        composite([{"name": "temporal_iou", "weight": True}], registry=registry)
    with pytest.raises(ConfigError, match="non-empty list"):
        composite([], registry=registry)
    with pytest.raises(ConfigError, match="name"):
        composite([{"weight": 1}], registry=registry)


def test_build_rewards_for_trl_with_unique_names_and_record_entries():
    registry = {"segment_overlap": segment_overlap, "temporal_iou": temporal_iou}
    entries = [{"name": "segment_overlap", "mode": "recall"},
               SimpleNamespace(name="segment_overlap", weight=0.25, options={"mode": "precision"}),
               {"name": "temporal_iou", "weight": 2}]
    built = build_rewards(entries, registry)
    assert [(b.name, b.weight, b.fn.__name__) for b in built] == [
        ("segment_overlap", 1.0, "segment_overlap"), ("segment_overlap_2", 0.25, "segment_overlap_2"),
        ("temporal_iou", 2.0, "temporal_iou")]


def test_rewards_resolve_through_the_plugin_registry():
    from vtg_core.plugins import build_registry

    registry = build_registry(builtins=("vtg_core.rewards.plugin",), entry_points=False)
    assert set(registry.all("reward")) == {"temporal_iou", "segment_overlap", "step_consistency", "composite"}
    fn = composite([{"name": "temporal_iou", "weight": 1.0},
                    {"name": "composite", "weight": 1.0, "rewards": [{"name": "segment_overlap", "weight": 2}]}],
                   registry=registry)
    assert call(fn, ["0 to 10"], timestamp=[[0, 10]], duration=[10.0]) == [3.0]
    spec = registry.get("reward", "composite")
    assert spec.load() is composite
