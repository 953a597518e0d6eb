"""The seed 001 rewards, on the seed's worked examples (by hand) and on the cases around them."""

from __future__ import annotations

import numpy as np
import pytest
from vtg_rewards_refusal.rewards import boundary_score, explain_correction, format_reward, refuse_iou
from vtg_rewards_refusal.testing import table_embedder, unit

from vtg_core.errors import ConfigError

ANSWER = "<think>t</think> <answer>{}</answer> <correction>{}</correction>"
REFUSE = ANSWER.format("The query does not match the video.", "{}")


def answerable(n=1, duration=100.0, gt=((20.0, 40.0),)):
    return {"task_type": ["answerable"] * n, "gt_answers": [[list(s) for s in gt]] * n, "duration": [duration] * n}


def refusable(refs, n=1, duration=100.0):
    return {"task_type": ["refusable"] * n, "gt_answers": [[[-1.0, -1.0]]] * n, "duration": [duration] * n,
            "refusable_queries": [list(refs)] * n}


# ---- refuse_iou --------------------------------------------------------------------------------

def test_refuse_iou_seed_worked_example():
    # Seed 001: duration 100 s, GT [20, 40], prediction [22, 38].
    #   IoU = (38 - 22) / (40 - 20) = 16 / 20 = 0.8   (the seed writes 0.9: its arithmetic is off)
    #   start accuracy = 1 - |0.20 - 0.22| = 0.98, end accuracy = 1 - |0.40 - 0.38| = 0.98
    #   reward = 0.8 x 0.98 x 0.98 = 0.76832        (the seed's 0.864 is 0.9 x 0.96)
    # We trust the formula, not the example's numbers.
    fn = refuse_iou()
    [value] = fn(prompts=["q"], completions=[ANSWER.format("22.0 to 38.0", "NIL")], **answerable())
    assert value == pytest.approx(0.8 * 0.98 * 0.98) == pytest.approx(0.76832)
    assert boundary_score((22.0, 38.0), (20.0, 40.0), 100.0) == pytest.approx(0.76832)


def test_refuse_iou_logic_table():
    fn = refuse_iou()
    stamp, refusal = ANSWER.format("20.0 to 40.0", "NIL"), REFUSE.format("NIL")
    # answerable: exact timestamp 1.0, no timestamp 0.0 (penalty)
    assert fn(prompts=["q"] * 2, completions=[stamp, refusal], **answerable(2)) == [1.0, 0.0]
    # refusable: timestamp 0.0 (penalty), no timestamp 1.0 (correct refusal)
    assert fn(prompts=["q"] * 2, completions=[stamp, refusal], **refusable(["r"], 2)) == [0.0, 1.0]


def test_refuse_iou_edge_cases():
    fn = refuse_iou()
    cols = answerable(5, duration=50.0, gt=((10.0, 20.0), (30.0, 40.0)))
    out = fn(prompts=["q"] * 5, completions=[
        ANSWER.format("30.0 to 40.0", "NIL"),   # matches the second ground truth exactly: the best one counts
        ANSWER.format("20.0 to 10.0", "NIL"),   # reversed: IoU 0
        ANSWER.format("30.0 to 90.0", "NIL"),   # clipped to [30, 50] before IoU and accuracies
        "no tags and no times",                 # a parse failure: 0
        "",
    ], **cols)
    assert out[0] == 1.0 and out[1] == 0.0 and out[3] == 0.0 and out[4] == 0.0
    assert out[2] == pytest.approx(0.5 * 1.0 * (1 - 10 / 50))
    # Silence is not a refusal on a refusable query either.
    assert fn(prompts=["q"], completions=[""], **refusable(["r"])) == [0.0]


def test_refuse_iou_relative_time_format_and_raw_riq_columns():
    fn = refuse_iou()
    cols = {"task_type": ["answerable"], "gt_answers": [[{"answer": [20, 40]}]], "duration": [100],
            "time_format": ["relative"]}
    assert fn(prompts=["q"], completions=[ANSWER.format("0.2 to 0.4", "NIL")], **cols) == [pytest.approx(1.0)]
    assert refuse_iou(relative=False)(prompts=["q"], completions=[ANSWER.format("20 to 40", "NIL")],
                                      **cols) == [pytest.approx(1.0)]


def test_rows_of_other_tasks_are_not_applicable_and_missing_columns_are_clear():
    fn = refuse_iou()
    cols = {"task_type": [None], "gt_answers": [None], "duration": [10.0]}
    assert fn(prompts=["q"], completions=["x"], **cols) == [None]
    with pytest.raises(ConfigError, match="'task_type' column"):
        fn(prompts=["q"], completions=["x"], duration=[1.0])
    with pytest.raises(ConfigError, match="task_type must be"):
        fn(prompts=["q"], completions=["x"], task_type=["maybe"], gt_answers=[[]], duration=[1.0])
    with pytest.raises(ConfigError, match="relative"):
        refuse_iou(relative="yes")


# ---- format ------------------------------------------------------------------------------------

def test_format_reward_and_conversational_completions():
    fn = format_reward()
    good = ANSWER.format("1.0 to 2.0", "NIL")
    assert fn.__name__ == "format"
    assert fn(prompts=["q"] * 3, completions=[good, "<answer>1 to 2</answer>", good + " trailing"]) == [1.0, 0.0, 0.0]
    assert fn(prompts=[[]], completions=[[{"role": "assistant", "content": good}]]) == [1.0]


# ---- explain_correction --------------------------------------------------------------------------

COOKING = {
    "a person is cooking pasta": [1.0, 0.0],
    "a person is cooking in the kitchen": unit(0.85),
    "a person stirs a pot": unit(0.60),
    "a dog runs": unit(0.10),
}


def test_explain_correction_seed_worked_example():
    # Seed 001: refusable "a person is playing basketball" in a cooking video; the model refuses
    # (1.0) and corrects to "a person is cooking pasta"; best reference "a person is cooking in
    # the kitchen" at similarity 0.85 -> bonus 0.85 - 0.5 = 0.35 -> total 1.35 (the seed's sum is right).
    fn = explain_correction(embedder=table_embedder(COOKING))
    refs = ["a dog runs", "a person is cooking in the kitchen", "a person stirs a pot"]
    [value] = fn(prompts=["q"], completions=[REFUSE.format("a person is cooking pasta")], **refusable(refs))
    assert value == pytest.approx(1.0 + (0.85 - 0.5)) == pytest.approx(1.35)


def test_explain_correction_cases():
    emb = table_embedder(COOKING)
    fn = explain_correction(embedder=emb)
    refs = ["a dog runs", "a person stirs a pot"]
    out = fn(prompts=["q"] * 5, completions=[
        REFUSE.format("a person is cooking pasta"),                    # best similarity 0.6: 1 + 0.1
        REFUSE.format("NIL"),                                          # refusal without correction: 1
        ANSWER.format("20.0 to 40.0", "a person is cooking pasta"),    # no refusal; the seed's formula still adds the bonus
        ANSWER.format("20.0 to 40.0", "NIL"),                          # timestamp on a refusable query: 0
        "",                                                            # parse failure: 0
    ], **refusable(refs, 5))
    assert out == [pytest.approx(1.1), 1.0, pytest.approx(0.1), 0.0, 0.0]
    # Below the threshold there is no bonus, never a penalty.
    assert fn(prompts=["q"], completions=[REFUSE.format("a person is cooking pasta")],
              **refusable(["a dog runs"])) == [1.0]
    # Answerable rows: the refusal score only (1 with a timestamp, 0 without); corrections ignored.
    assert fn(prompts=["q"] * 2, completions=[ANSWER.format("1.0 to 2.0", "a dog runs"), REFUSE.format("x")],
              **answerable(2)) == [1.0, 0.0]
    assert explain_correction(threshold=0.7, embedder=emb)(
        prompts=["q"], completions=[REFUSE.format("a person is cooking pasta")],
        **refusable(["a person is cooking in the kitchen"])) == [pytest.approx(1.15)]


def test_explain_correction_is_batched_across_the_grpo_batch_and_caches_references():
    rng = np.random.default_rng(0)
    table = {f"ref {i}": rng.normal(size=8).tolist() for i in range(20)}
    table.update({f"fix {i}": rng.normal(size=8).tolist() for i in range(8)})
    emb = table_embedder(table)
    fn = explain_correction(embedder=emb, threshold=-1.0)  # every similarity shows in the value
    # A GRPO batch: 4 prompts x G=2 completions, 5 references per prompt.
    refs = [[f"ref {5 * (i // 2) + k}" for k in range(5)] for i in range(8)]
    cols = {"task_type": ["refusable"] * 8, "gt_answers": [[[-1.0, -1.0]]] * 8, "duration": [10.0] * 8,
            "refusable_queries": refs}
    completions = [REFUSE.format(f"fix {i}") for i in range(8)]
    out = fn(prompts=["q"] * 8, completions=completions, **cols)
    assert emb.encode_calls == 2 and emb.encoded_texts == 8 + 20  # one pass for corrections, one for references
    for i in range(8):  # the same numbers as one encode per reference
        q = np.asarray(table[f"fix {i}"]) / np.linalg.norm(table[f"fix {i}"])
        best = max(float(q @ (np.asarray(table[r]) / np.linalg.norm(table[r]))) for r in refs[i])
        assert out[i] == pytest.approx(1.0 + best + 1.0, abs=1e-5)
    fn(prompts=["q"] * 8, completions=completions, **cols)
    assert emb.encode_calls == 3 and emb.encoded_texts == 8 + 20 + 8  # references came from the cache


def test_explain_correction_options_are_checked_before_training():
    with pytest.raises(ConfigError, match="threshold"):
        explain_correction(threshold=2.0)
    with pytest.raises(ConfigError, match="not a model directory"):
        explain_correction(model="./no/such/model")
    with pytest.raises(ConfigError, match="batch_size"):
        explain_correction(batch_size=0)


def test_rewards_resolve_through_the_registry_by_seed_names():
    from vtg_rewards_refusal import plugin

    from vtg_core.rewards import build_rewards
    from vtg_core.testing import fresh_registry

    registry = fresh_registry(("rewards_refusal", plugin))
    built = build_rewards([{"name": "format"}, {"name": "refuse_iou"},
                           {"name": "explain_correction", "weight": 2.0, "threshold": 0.4}], registry)
    assert [b.name for b in built] == ["format", "refuse_iou", "explain_correction"]
    assert [b.fn.__name__ for b in built] == ["format", "refuse_iou", "explain_correction"]
    assert built[2].weight == 2.0
    with pytest.raises(ConfigError, match="accepted options"):
        build_rewards([{"name": "explain_correction", "treshold": 0.4}], registry)
