"""The temporal-grounding task: row schema, prompts, targets, options, registration, temporal tokens."""

from __future__ import annotations

import json
import os
import random

import pytest

from vtg_core.data.sample import Location, Sample
from vtg_core.errors import ConfigError, DataError
from vtg_core.tasks.base import RowProblem, Task
from vtg_core.tasks.temporal_grounding import prompts
from vtg_core.tasks.temporal_grounding.schema import row_to_sample
from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask
from vtg_core.tasks.temporal_grounding.temporal_tokens import (
    add_temporal_tokens,
    bin_to_time,
    init_temporal_embeddings,
    temporal_token_strings,
    time_to_bin,
)

WHERE = Location("/data/ann/train.jsonl", line=7)
GOOD = {"video": "clips/a.mp4", "duration": 24.9, "timestamp": [11.3, 15.0], "sentence": "  a woman holds a bill "}

# The seed's example row: a trimmed clip whose duration equals video_end - video_start.
SEED_ROW = {
    "video": "./data/videos/timerft_data/_0yiT0hhCCM_00:06:44:200_00:07:09:100.mp4",
    "duration": 24.900000000000034,
    "timestamp": [11.3, 15.0],
    "sentence": "the paper bill has an image of a woman holding up a paper",
    "qid": "my|internvid-vtime|_0yiT0hhCCM|the paper bill has an image of a woman holding up a paper",
    "video_start": 404.2,
    "video_end": 429.1,
    "difficulty": 24.650233177881407,
    "pred": [0.0, 15.01],
}


def check(row, **kw):
    return row_to_sample(WHERE, row, **kw)


def codes(result):
    assert isinstance(result, list), result
    return [(p.field, p.code) for p in result]


# -- schema ---------------------------------------------------------------------------------------

def test_seed_row_becomes_a_sample():
    s = check(SEED_ROW, video_dir="/videos")
    assert isinstance(s, Sample)
    assert s.id == SEED_ROW["qid"]
    assert s.video == os.path.normpath("/videos/data/videos/timerft_data/_0yiT0hhCCM_00:06:44:200_00:07:09:100.mp4")
    assert s.answer == (11.3, 15.0) and all(isinstance(v, float) for v in s.answer)
    assert (s.duration, s.video_start, s.video_end) == (24.900000000000034, 404.2, 429.1)
    assert s.metadata == {"difficulty": 24.650233177881407, "pred": (0.0, 15.01)}
    assert s.source == WHERE and s.query.startswith("the paper bill")


def test_defaults_id_video_and_metadata():
    s = check({**GOOD, "split": "train", "extra": {"nested": [1]}})
    assert s.id == "train:7"
    assert s.video == "clips/a.mp4"                     # no video_dir: as given
    assert s.query == "a woman holds a bill"
    assert s.metadata == {"split": "train", "extra": {"nested": [1]}}
    assert check({**GOOD, "video": "/abs/a.mp4"}, video_dir="/videos").video == "/abs/a.mp4"
    assert row_to_sample(Location("x/val.json", index=3), GOOD).id == "val[3]"
    assert check({**GOOD, "qid": 17}).id == "17"


def test_kwargs_are_merged_and_count_as_qid_and_difficulty():
    row = {**GOOD, "video_start": None, "video_end": None,
           "kwargs": {"difficulty": "easy", "qid": "sample_001", "source": "charades"}, "source": "top"}
    s = check(row)
    assert s.id == "sample_001" and s.video_start is None
    assert s.metadata == {"difficulty": "easy", "source": "top"}   # top-level wins over kwargs
    assert check({**GOOD, "qid": "top", "kwargs": {"qid": "inner"}}).id == "top"
    assert codes(check({**GOOD, "kwargs": {"qid": True}})) == [("kwargs.qid", "wrong_type")]
    assert codes(check({**GOOD, "kwargs": [1]})) == [("kwargs", "wrong_type")]


@pytest.mark.parametrize("change, expected", [
    ({"video": None}, [("video", "missing_field")]),
    ({"duration": True}, [("duration", "wrong_type")]),            # bool is not a number
    ({"duration": "24.9"}, [("duration", "wrong_type")]),
    ({"duration": 0}, [("duration", "out_of_range")]),
    ({"duration": float("nan")}, [("duration", "not_finite")]),
    ({"duration": float("inf")}, [("duration", "not_finite")]),
    ({"duration": 1e300}, [("duration", "too_large")]),
    ({"duration": 10**400}, [("duration", "too_large")]),
    ({"timestamp": [15.0, 11.3]}, [("timestamp", "reversed")]),
    ({"timestamp": [-1.0, 3.0]}, [("timestamp[0]", "negative")]),
    ({"timestamp": [11.3, 25.5]}, [("timestamp", "out_of_range")]),  # 0.6 s past: beyond tolerance
    ({"timestamp": [11.3]}, [("timestamp", "bad_segment")]),
    ({"timestamp": [1, 2, 3]}, [("timestamp", "bad_segment")]),
    ({"timestamp": "11.3-15"}, [("timestamp", "wrong_type")]),
    ({"timestamp": {"start": 1}}, [("timestamp", "wrong_type")]),
    ({"timestamp": [True, 2]}, [("timestamp[0]", "wrong_type")]),
    ({"timestamp": [1, [2]]}, [("timestamp[1]", "wrong_type")]),
    ({"timestamp": [float("nan"), 2]}, [("timestamp[0]", "not_finite")]),
    ({"sentence": "   "}, [("sentence", "empty")]),
    ({"sentence": 5}, [("sentence", "wrong_type")]),
    ({"qid": ""}, [("qid", "empty")]),
    ({"qid": 1.5}, [("qid", "wrong_type")]),
    ({"difficulty": [1]}, [("difficulty", "wrong_type")]),
    ({"pred": [1]}, [("pred", "bad_segment")]),
    ({"video_start": -1}, [("video_start", "negative")]),
    ({"video_start": 10.0, "video_end": 5.0}, [("video_end", "reversed")]),
    ({"video_start": 10.0, "video_end": 50.0}, [("duration", "inconsistent")]),
])
def test_each_bad_field_is_reported(change, expected):
    assert codes(check({**GOOD, **change})) == expected


def test_all_problems_of_a_row_are_reported_at_once():
    result = check({"duration": -2, "timestamp": [1], "sentence": ""})
    assert codes(result) == [("video", "missing_field"), ("duration", "negative"), ("sentence", "empty"),
                             ("timestamp", "bad_segment")]
    assert all(isinstance(p, RowProblem) and p.where == WHERE for p in result)
    assert "train.jsonl:7: field 'duration'" in str(result[1])


def test_end_within_tolerance_is_clamped_and_instants_are_valid():
    assert check({**GOOD, "timestamp": [11.3, 25.3]}).answer == (11.3, 24.9)
    assert check({**GOOD, "timestamp": [24.9, 25.0]}).answer == (24.9, 24.9)
    assert check({**GOOD, "timestamp": [3, 3]}).answer == (3.0, 3.0)
    assert codes(check({**GOOD, "timestamp": [11.3, 25.3]}, tolerance=0.0)) == [("timestamp", "out_of_range")]


def test_task_load_jsonl_and_json(tmp_path):
    rows = [GOOD, {**GOOD, "timestamp": [5, 1]}, SEED_ROW]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task = TemporalGroundingTask()
    samples, problems = task.load(str(jsonl), video_dir=str(tmp_path), policy="skip", max_invalid_fraction=0.5)
    assert [s.id for s in samples] == ["a:1", SEED_ROW["qid"]]
    assert samples[0].video == str(tmp_path / "clips" / "a.mp4")
    assert [(p.where.line, p.code) for p in problems] == [(2, "reversed")]
    with pytest.raises(DataError):
        task.load(str(jsonl))                      # 1/3 invalid is above the default 5 %
    arr = tmp_path / "b.json"
    arr.write_text(json.dumps(rows, indent=2))
    samples, report = task.load_with_report(str(arr), policy=None)
    assert [s.id for s in samples] == ["b[0]", SEED_ROW["qid"]] and report.problems[0].where.index == 1


# -- prompts and targets --------------------------------------------------------------------------

def sample(duration=24.9, answer=(11.3, 15.0), sid="s1"):
    return Sample(id=sid, video="a.mp4", duration=duration, query="a woman holds a bill.", answer=answer)


def user_text(messages):
    user = messages[-1]
    assert user["role"] == "user" and user["content"][0] == {"type": "video"}
    return user["content"][1]["text"]


def test_messages_state_duration_and_answer_format():
    task = TemporalGroundingTask(prompt_template=0)
    messages = task.build_messages(sample())
    assert len(messages) == 1
    text = user_text(messages)
    assert "24.9 seconds" in text and "<answer>start to end</answer>" in text and '"a woman holds a bill"' in text
    sys_task = TemporalGroundingTask(system_prompt="You localize events.", think=True)
    messages = sys_task.build_messages(sample())
    assert messages[0] == {"role": "system", "content": "You localize events."}
    assert "<think>" in user_text(messages)


def test_every_template_states_duration_and_format_in_every_mode():
    for options in ({}, {"use_relative_timestamps": True}, {"use_temporal_tokens": True, "num_bins": 50}):
        for index in range(len(prompts.TEMPLATES)):
            text = user_text(TemporalGroundingTask(prompt_template=index, **options).build_messages(sample()))
            assert "24.9" in text and "<answer>" in text


def test_template_choice_is_seeded_and_deterministic():
    task = TemporalGroundingTask()
    samples = [sample(sid=f"s{i}") for i in range(40)]
    first = [task.template_index(s) for s in samples]
    assert first == [task.template_index(s) for s in samples]            # stable per sample
    assert len(set(first)) == len(prompts.TEMPLATES)                     # all get used
    other_seed = TemporalGroundingTask(seed=1)
    assert first != [other_seed.template_index(s) for s in samples]
    # an explicit rng is honoured
    assert task.template_index(samples[0], random.Random(3)) == random.Random(3).randrange(len(prompts.TEMPLATES))
    assert user_text(task.build_messages(samples[0], rng=random.Random(3))) == user_text(
        task.build_messages(samples[0], rng=random.Random(3)))


def test_targets_in_each_time_format_and_round_trip():
    s = sample(duration=40.0, answer=(10.0, 30.0))
    cases = [({}, "<answer>10.0 to 30.0</answer>"),
             ({"use_relative_timestamps": True}, "<answer>0.25 to 0.75</answer>"),
             ({"use_temporal_tokens": True, "num_bins": 5}, "<answer><1><3></answer>")]
    for options, expected in cases:
        task = TemporalGroundingTask(**options)
        assert task.target(s) == expected
        parsed = task.parse(task.target(s), s)
        assert parsed.ok and parsed.value == pytest.approx((10.0, 30.0))
        assert task.score(parsed, s)["iou"] == pytest.approx(1.0)


@pytest.mark.parametrize("options", [{}, {"use_relative_timestamps": True},
                                     {"use_temporal_tokens": True, "num_bins": 100}])
def test_round_trip_error_is_within_the_format_resolution(options):
    task = TemporalGroundingTask(**options)
    rng = random.Random(0)
    for i in range(200):
        duration = rng.uniform(1, 600)
        a, b = sorted((rng.uniform(0, duration), rng.uniform(0, duration)))
        s = sample(duration=duration, answer=(a, b), sid=str(i))
        start, end = task.parse(task.target(s), s).value
        step = 0.05 if not options else (0.005 * duration if "use_relative_timestamps" in options
                                         else duration / 99 / 2)
        assert abs(start - a) <= step + 1e-9 and abs(end - b) <= step + 1e-9


def test_reward_columns_and_extra_tokens():
    task = TemporalGroundingTask(use_temporal_tokens=True, num_bins=10)
    assert task.reward_columns(sample()) == {"timestamp": [11.3, 15.0], "duration": 24.9, "time_format": "tokens:10"}
    assert task.extra_tokens == [f"<{i}>" for i in range(10)]
    assert TemporalGroundingTask().extra_tokens == []


def test_task_errors():
    with pytest.raises(ConfigError, match="unknown option"):
        TemporalGroundingTask(num_bin=10)
    for bad in ({"num_bins": 1}, {"num_bins": True}, {"prompt_template": 9}, {"prompt_template": "first"},
                {"tolerance": -1}, {"use_relative_timestamps": "yes"}, {"embedding_init_strategy": "zeros"}):
        with pytest.raises(ConfigError):
            TemporalGroundingTask(**bad)
    with pytest.raises(DataError, match="no ground-truth"):
        TemporalGroundingTask().target(sample(answer=None))


def test_task_follows_the_protocol_and_is_registered():
    from vtg_core.plugins import build_registry

    assert isinstance(TemporalGroundingTask(), Task)
    registry = build_registry(builtins=("vtg_core.tasks.plugin",), entry_points=False)
    spec = registry.get("task", "temporal_grounding")
    task = spec.load()(use_relative_timestamps=True)
    assert task.name == "temporal_grounding" and task.use_relative_timestamps
    assert [r["name"] for r in spec.default_rewards] == ["temporal_iou", "segment_overlap"]
    assert set(spec.metrics) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_failure_rate"}


# -- temporal tokens ------------------------------------------------------------------------------

def test_bins_map_both_clip_ends():
    assert temporal_token_strings(3) == ["<0>", "<1>", "<2>"]
    assert (time_to_bin(0, 10, 11), time_to_bin(10, 10, 11), time_to_bin(4.96, 10, 11)) == (0, 10, 5)
    assert time_to_bin(-3, 10, 11) == 0 and time_to_bin(30, 10, 11) == 10
    assert bin_to_time(10, 10, 11) == 10.0
    with pytest.raises(ValueError):
        temporal_token_strings(1)


def _word_level_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "the": 1, "event": 2, "<": 3, ">": 4, "1": 5, "2": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def test_add_temporal_tokens_to_a_raw_tokenizer():
    pytest.importorskip("tokenizers")
    tok = _word_level_tokenizer()
    ids = add_temporal_tokens(tok, 12)
    assert ids == list(range(7, 19))
    assert tok.encode("the event <3><11>").tokens == ["the", "event", "<3>", "<11>"]
    assert add_temporal_tokens(tok, 12) == ids                   # idempotent


def test_add_temporal_tokens_to_a_transformers_tokenizer_keeps_them_on_decode():
    pytest.importorskip("transformers")
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=_word_level_tokenizer(), unk_token="[UNK]")
    ids = add_temporal_tokens(SimpleProcessor(tok), 12)           # via a processor's .tokenizer
    encoded = tok("<3><11>")["input_ids"]
    assert encoded == [ids[3], ids[11]]
    text = tok.decode(encoded, skip_special_tokens=True)
    s = sample(duration=11.0)
    parsed = TemporalGroundingTask(use_temporal_tokens=True, num_bins=12).parse(text, s)
    assert parsed.ok and parsed.value == (3.0, 11.0)


class SimpleProcessor:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer


@pytest.mark.torch
@pytest.mark.parametrize("strategy", ["sinusoidal", "mean", "random"])
def test_init_temporal_embeddings(strategy):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(20, 8, generator=gen).to(torch.bfloat16)
    before = weight.clone()
    ids = list(range(14, 20))
    init_temporal_embeddings(weight, ids, strategy)
    assert torch.equal(weight[:14], before[:14])                  # existing rows untouched
    new = weight[14:].float()
    mean = before[:14].float().mean(0)
    assert torch.isfinite(new).all()
    if strategy == "mean":
        assert torch.allclose(new, mean.expand(6, 8), atol=1e-2)
    else:
        assert not torch.allclose(new[0], new[1])                 # bins distinguishable
    if strategy == "sinusoidal":
        # neighbouring bins are closer than distant ones
        assert torch.dist(new[0], new[1]) < torch.dist(new[0], new[5])
    with pytest.raises(ValueError, match="resize"):
        init_temporal_embeddings(weight, [25], strategy)
