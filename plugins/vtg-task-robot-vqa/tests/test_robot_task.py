"""The ``robot_vqa`` task: loading a generated data set, lazy npz frames, conversations, the SFT mask."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from vtg_robot_vqa.generate import GenerationConfig, generate_dataset
from vtg_robot_vqa.task import RobotVQATask

from vtg_core.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def dataset(trajectories, tmp_path_factory):
    out = tmp_path_factory.mktemp("vqa") / "train"
    generate_dataset(trajectories["index"], out, GenerationConfig(num_samples=24, seed=0, max_frames=4),
                     save_batch_size=-1)
    return str(out)


def _by_type(samples):
    return ({s.inputs["sample_type"]: s for s in samples}["preference"],
            {s.inputs["sample_type"]: s for s in samples}["progress"])


def test_load_reads_the_generated_dataset_and_resolves_npz_paths(dataset, trajectories):
    samples, problems = RobotVQATask().load(dataset)
    assert len(samples) == 24 and problems == []
    pref, prog = _by_type(samples)
    assert [os.path.dirname(c["npz"]) for c in pref.inputs["clips"]] == [trajectories["directory"]] * 2
    assert pref.answer in ("1", "2") and prog.answer.isdigit()
    assert prog.metadata["target_progress"][-1] == pytest.approx(int(prog.answer) / 100, abs=0.005)
    assert pref.metadata["data_gen_strategy"] in ("rewind", "forward_progress", "quality_label")


def test_bad_rows_are_reported_with_index_and_field(dataset, tmp_path):
    from datasets import load_from_disk

    rows = load_from_disk(dataset).to_list()[:4]
    pref = next(i for i, r in enumerate(rows) if r["sample_type"] == "preference")
    prog = next(i for i, r in enumerate(rows) if r["sample_type"] == "progress")
    rows[pref]["first_frame_indices"] = [0, 99]
    rows[pref]["answer"] = "3"
    rows[prog]["npz_path"] = "nowhere.npz"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # A JSONL copy of the rows lives elsewhere: the npz root comes from the generation record.
    with open(os.path.join(dataset, "generation_config.json")) as fh:
        task = RobotVQATask(npz_root=json.load(fh)["npz_root"])
    samples, report = task.load_with_report(bad, policy="report")
    text = report.format()
    assert len(samples) == 2
    assert f"{bad}:{pref + 1}: field 'first_frame_indices': indices must be within 0..15" in text
    assert f"{bad}:{pref + 1}: field 'answer': a preference answer must be '1' or '2'" in text
    assert f"{bad}:{prog + 1}: field 'npz_path': npz file not found" in text
    with pytest.raises(DataError, match="invalid_policy=fail"):
        task.load(bad, policy="fail")
    with pytest.raises(ConfigError, match="unknown option"):
        RobotVQATask(multi_image=True)


def test_frames_load_lazily_from_the_npz_at_the_stored_indices(dataset):
    task = RobotVQATask()
    samples, _ = task.load(dataset)
    pref, prog = _by_type(samples)
    assert task._arrays == {}  # loading the data set read no pixels
    clips = task.load_frames(pref)
    assert len(clips) == 2
    for frames, clip in zip(clips, pref.inputs["clips"], strict=True):
        with np.load(clip["npz"]) as npz:
            assert np.array_equal(frames.array, npz["frames"][clip["indices"]])
        assert frames.timestamps == tuple(i / task.fps for i in range(len(clip["indices"])))
    images = RobotVQATask(use_multi_image=True).load_frames(prog)
    with np.load(prog.inputs["clips"][0]["npz"]) as npz:
        expected = npz["frames"][prog.inputs["clips"][0]["indices"]]
    assert len(images) == len(expected) and all(np.array_equal(a, b) for a, b in zip(images, expected, strict=True))


def test_frames_follow_the_video_resolution_setting(dataset):
    from vtg_core.config import default_config

    video = default_config("sft", ["video.resolution={height: 16, width: 24}"]).video
    task = RobotVQATask()
    samples, _ = task.load(dataset)
    assert task.load_frames(samples[0], video)[0].array.shape[1:] == (16, 24, 3)


def test_conversation_in_video_and_multi_image_mode(dataset):
    samples, _ = RobotVQATask().load(dataset)
    pref, prog = _by_type(samples)
    parts = RobotVQATask().build_messages(pref)[0]["content"]
    assert [p["type"] for p in parts] == ["text", "video", "text", "video", "text"]
    assert parts[0]["text"] == "Video 1:" and parts[-1]["text"] == pref.query
    n = len(prog.inputs["clips"][0]["indices"])
    parts = RobotVQATask(use_multi_image=True).build_messages(prog)[0]["content"]
    assert [p["type"] for p in parts] == ["image"] * n + ["text"]
    assert RobotVQATask().target(pref) == pref.answer


@pytest.mark.parametrize("multi_image", [False, True])
def test_only_the_answer_tokens_are_learned(dataset, multi_image):
    """The mask: every prompt, video and image token is -100; the answer and the turn end are learned."""
    import torch

    from vtg_core.backends.video_inputs import IGNORE_INDEX, encode
    from vtg_core.testing import tiny_model

    model, processor = tiny_model("qwen3_vl")
    task = RobotVQATask(use_multi_image=multi_image)
    samples, _ = task.load(dataset)
    for sample in _by_type(samples):
        data = encode(processor, task.build_messages(sample), task.load_frames(sample), task.target(sample))
        labels = data["labels"][0]
        learned = labels != IGNORE_INDEX
        n_answer = len(processor.tokenizer(sample.answer + "<|im_end|>", add_special_tokens=False)["input_ids"])
        assert int(learned.sum()) == n_answer and bool(learned[-n_answer:].all())
        assert processor.tokenizer.decode(labels[learned]) == sample.answer + "<|im_end|>"
        assert torch.equal(labels[learned], data["input_ids"][0][learned])
        visual = "image_grid_thw" if multi_image else "video_grid_thw"
        assert data[visual].shape[0] == (sum(len(c["indices"]) for c in sample.inputs["clips"]) if multi_image
                                         else len(sample.inputs["clips"]))
        with torch.no_grad():
            assert torch.isfinite(model(**data).loss)


def test_encode_refuses_a_frame_count_that_does_not_match_the_parts(dataset):
    from vtg_core.backends.video_inputs import encode
    from vtg_core.testing import tiny_model

    _, processor = tiny_model("qwen3_vl")
    task = RobotVQATask(use_multi_image=True)
    samples, _ = task.load(dataset)
    _, prog = _by_type(samples)
    frames = task.load_frames(prog)
    with pytest.raises(ValueError, match=r"visual part\(s\) \(0 video, \d+ image\)"):
        encode(processor, task.build_messages(prog), frames[:-1])


@pytest.mark.parametrize("answer", ["1" * 5000, "²", "٣", "101", "-5", "7.5"])
def test_a_progress_answer_int_cannot_read_is_a_reported_row_not_a_crash(dataset, tmp_path, answer):
    # 5,000 digits exceed Python's int/str conversion limit; '²' and '٣' pass str.isdigit() but not int()
    from datasets import load_from_disk

    rows = load_from_disk(dataset).to_list()[:4]
    prog = next(i for i, r in enumerate(rows) if r["sample_type"] == "progress")
    rows[prog]["answer"] = answer
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(os.path.join(dataset, "generation_config.json")) as fh:
        task = RobotVQATask(npz_root=json.load(fh)["npz_root"])
    samples, report = task.load_with_report(bad, policy="report")
    assert len(samples) == 3
    assert f"{bad}:{prog + 1}: field 'answer': a progress answer must be an integer 0-100" in report.format()
