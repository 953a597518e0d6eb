"""`vtg robot-vqa generate`: seed 004's fields, strategies, ratios, reproducibility, workers, batches."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from vtg_robot_vqa import schema
from vtg_robot_vqa.generate import GenerationConfig, generate_dataset, type_counts
from vtg_robot_vqa.trajectories import load_trajectories

from vtg_core.errors import ConfigError, DataError

SEED_PREFERENCE_FIELDS = {"sample_type", "prompt", "answer", "first_npz_path", "second_npz_path",
                          "first_frame_indices", "second_frame_indices", "first_frames_shape", "second_frames_shape",
                          "task", "data_source", "data_gen_strategy", "resample_attempts", "chosen_is_first"}
SEED_PROGRESS_FIELDS = {"sample_type", "prompt", "answer", "npz_path", "frame_indices", "frames_shape",
                        "target_progress", "task", "data_source", "data_gen_strategy"}
QUALITY = {"failure": 0, "suboptimal": 1, "successful": 2}


def _rows(path):
    from datasets import load_from_disk

    return load_from_disk(str(path)).to_list()


def _digests(folder):
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(folder))}


def _generate(trajectories, out, **kwargs):
    workers = kwargs.pop("num_workers", 1)
    batch = kwargs.pop("save_batch_size", -1)
    return generate_dataset(trajectories["index"], out, GenerationConfig(**kwargs), num_workers=workers,
                            save_batch_size=batch)


def test_rows_hold_every_schema_field_with_the_seed_names(trajectories, tmp_path):
    _generate(trajectories, tmp_path / "ds", num_samples=60, seed=1)
    rows = _rows(tmp_path / "ds")
    assert len(rows) == 60
    assert set(schema.ALL_FIELDS) >= SEED_PREFERENCE_FIELDS | SEED_PROGRESS_FIELDS
    for row in rows:
        assert set(row) == set(schema.ALL_FIELDS)  # every column in every row
        own = SEED_PREFERENCE_FIELDS if row["sample_type"] == "preference" else SEED_PROGRESS_FIELDS
        assert all(row[k] is not None for k in own), row
        other = (set(schema.PROGRESS_FIELDS) if row["sample_type"] == "preference"
                 else set(schema.PREFERENCE_FIELDS))
        assert all(row[k] is None for k in other), row


def test_samples_point_at_npz_files_and_indices_never_pixels(trajectories, tmp_path):
    _generate(trajectories, tmp_path / "ds", num_samples=80, seed=2)
    names = {t["frames"] for t in trajectories["trajectories"]}
    data_bytes = sum(os.path.getsize(tmp_path / "ds" / f) for f in os.listdir(tmp_path / "ds"))
    assert data_bytes < 80 * 2000  # a clip of 16 frames of 32x32x3 alone is 49 kB
    for row in _rows(tmp_path / "ds"):
        clips = ([("first_npz_path", "first_frame_indices", "first_frames_shape"),
                  ("second_npz_path", "second_frame_indices", "second_frames_shape")]
                 if row["sample_type"] == "preference" else [("npz_path", "frame_indices", "frames_shape")])
        for path_key, idx_key, shape_key in clips:
            assert row[path_key] in names  # the index's relative path, as written
            assert row[shape_key] == [16, 32, 32, 3]
            assert 2 <= len(row[idx_key]) <= 16 and all(0 <= i < 16 for i in row[idx_key])


def test_preference_answers_and_strategies_mean_what_they_say(trajectories, tmp_path):
    _generate(trajectories, tmp_path / "ds", num_samples=300, seed=3, sample_type_ratio=[1, 0, 0], max_frames=6)
    quality = {t["frames"]: t["quality_label"] for t in trajectories["trajectories"]}
    seen = set()
    for row in _rows(tmp_path / "ds"):
        assert row["sample_type"] == "preference" and row["answer"] == ("1" if row["chosen_is_first"] else "2")
        assert row["prompt"].startswith("Given these two robot videos, which one makes the most progress")
        assert row["prompt"].endswith(f"ANS: 1/2\n\nTask: {row['task']}")
        first = (row["first_npz_path"], row["first_frame_indices"])
        second = (row["second_npz_path"], row["second_frame_indices"])
        chosen, rejected = (first, second) if row["chosen_is_first"] else (second, first)
        strategy = row["data_gen_strategy"]
        seen.add(strategy)
        assert row["resample_attempts"] >= 1 and len(chosen[1]) <= 6 and len(rejected[1]) <= 6
        if strategy == "quality_label":
            assert QUALITY[quality[chosen[0]]] > QUALITY[quality[rejected[0]]]
        else:  # augmentations of one trajectory that reaches the goal
            assert chosen[0] == rejected[0] and quality[chosen[0]] == "successful"
            assert chosen[1] == sorted(chosen[1]) and chosen[1][-1] > rejected[1][-1]
            if strategy == "rewind":  # forward, then backward
                back = rejected[1].index(max(rejected[1]))
                assert rejected[1][:back + 1] == sorted(rejected[1][:back + 1]) and back < len(rejected[1]) - 1
                assert rejected[1][back:] == sorted(rejected[1][back:], reverse=True)
            else:
                assert rejected[1] == sorted(rejected[1])
    assert seen == {"rewind", "forward_progress", "quality_label"}
    answers = [r["answer"] for r in _rows(tmp_path / "ds")]
    assert 0.35 < answers.count("1") / len(answers) < 0.65  # video 1 / 2 assigned at random


def test_progress_targets_follow_the_frame_indices(trajectories, tmp_path):
    _generate(trajectories, tmp_path / "ds", num_samples=50, seed=4, sample_type_ratio=[0, 1, 0],
              progress_strategy_ratio={"forward_progress": 1, "rewind": 1})
    quality = {t["frames"]: t["quality_label"] for t in trajectories["trajectories"]}
    strategies = set()
    for row in _rows(tmp_path / "ds"):
        assert quality[row["npz_path"]] == "successful"
        assert row["target_progress"] == pytest.approx([i / 15 for i in row["frame_indices"]])
        assert row["answer"] == str(round(100 * row["frame_indices"][-1] / 15))
        assert "integer-valued progress score from 0 to 100" in row["prompt"]
        strategies.add(row["data_gen_strategy"])
    assert strategies == {"forward_progress", "rewind"}


def test_sample_type_ratio_gives_exact_counts(trajectories, tmp_path):
    record = _generate(trajectories, tmp_path / "ds", num_samples=101, seed=5, sample_type_ratio=[0.7, 0.3, 0.0])
    types = [r["sample_type"] for r in _rows(tmp_path / "ds")]
    assert types.count("preference") == 71 and types.count("progress") == 30
    assert record["sample_types"] == {"preference": 71, "progress": 30, "similarity": 0}
    assert type_counts(10, (1, 1, 0)) == [5, 5, 0] and type_counts(7, (1, 0, 0)) == [7, 0, 0]
    with pytest.raises(ConfigError, match="similarity samples"):
        GenerationConfig(sample_type_ratio=[0.5, 0.3, 0.2])
    with pytest.raises(ConfigError, match="three numbers"):
        GenerationConfig(sample_type_ratio=[0.5, 0.5])


def test_same_seed_same_bytes_and_workers_do_not_change_the_output(trajectories, tmp_path):
    one = _generate(trajectories, tmp_path / "a", num_samples=500, seed=7, save_batch_size=64)
    _generate(trajectories, tmp_path / "b", num_samples=500, seed=7, save_batch_size=64)
    two = _generate(trajectories, tmp_path / "c", num_samples=500, seed=7, save_batch_size=64, num_workers=2)
    _generate(trajectories, tmp_path / "d", num_samples=500, seed=8, save_batch_size=64)
    a, b, c, d = (_digests(tmp_path / x) for x in "abcd")
    assert a == b  # byte for byte, generation_config.json included
    assert {k: v for k, v in a.items() if k != "generation_config.json"} == \
        {k: v for k, v in c.items() if k != "generation_config.json"}
    assert {k: v for k, v in one.items() if k != "runtime"} == {k: v for k, v in two.items() if k != "runtime"}
    assert two["runtime"] == {"num_workers": 2, "save_batch_size": 64}
    assert a["data-00000-of-00001.arrow"] != d["data-00000-of-00001.arrow"]


def test_incremental_saving_keeps_the_rows_of_saving_at_once(trajectories, tmp_path):
    _generate(trajectories, tmp_path / "batched", num_samples=45, seed=9, save_batch_size=7, num_workers=2)
    _generate(trajectories, tmp_path / "whole", num_samples=45, seed=9, save_batch_size=-1, num_workers=-1)
    assert _rows(tmp_path / "batched") == _rows(tmp_path / "whole")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".vtg-robot-vqa-")]  # batch folders removed


def test_generation_config_records_every_parameter(trajectories, tmp_path):
    _generate(trajectories, tmp_path / "ds", num_samples=20, seed=11, max_frames=5, eval_mode=False)
    record = json.loads((tmp_path / "ds" / "generation_config.json").read_text())
    for key, value in {"num_samples": 20, "seed": 11, "max_frames": 5, "eval_mode": False,
                       "sample_type_ratio": [0.7, 0.3, 0.0], "num_trajectories": 12,
                       "source": os.path.abspath(trajectories["index"]),
                       "npz_root": trajectories["directory"]}.items():
        assert record[key] == value, key
    assert sum(record["strategies"].values()) == 20 and record["fields"] == list(schema.ALL_FIELDS)
    assert {"preference_strategy_ratio", "progress_strategy_ratio", "runtime"} <= set(record)


def test_eval_mode_uses_real_quality_differences_only(trajectories, tmp_path):
    _generate(trajectories, tmp_path / "ds", num_samples=80, seed=12, eval_mode=True)
    rows = _rows(tmp_path / "ds")
    assert {r["data_gen_strategy"] for r in rows if r["sample_type"] == "preference"} == {"quality_label"}
    assert {r["data_gen_strategy"] for r in rows if r["sample_type"] == "progress"} == {"forward_progress"}

    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text("".join(json.dumps({k: v for k, v in t.items() if k != "quality_label"} | {
        "frames": os.path.join(trajectories["directory"], t["frames"])}) + "\n" for t in trajectories["trajectories"]))
    with pytest.raises(ConfigError, match="cannot generate preference samples.*quality_label"):
        generate_dataset(str(unlabelled), tmp_path / "x", GenerationConfig(num_samples=10, eval_mode=True))


def test_a_dataset_on_disk_is_read_like_the_jsonl_index(trajectories, tmp_path):
    from datasets import Dataset

    rows = [{**t, "frames": os.path.join(trajectories["directory"], t["frames"])} for t in trajectories["trajectories"]]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "trajs"))
    from_disk = load_trajectories(tmp_path / "trajs")
    from_jsonl = load_trajectories(trajectories["index"])
    assert [t.resolved_path for t in from_disk] == [t.resolved_path for t in from_jsonl]
    assert [t.frames_shape for t in from_disk] == [(16, 32, 32, 3)] * 12
    generate_dataset(str(tmp_path / "trajs"), tmp_path / "ds", GenerationConfig(num_samples=10, seed=1))
    assert len(_rows(tmp_path / "ds")) == 10


def test_bad_trajectory_rows_are_named_by_line_and_field(trajectories, tmp_path):
    good = trajectories["trajectories"][0]
    np.savez(tmp_path / "gray.npz", frames=np.zeros((4, 8, 8), dtype=np.uint8))
    rows = [{**good, "frames": os.path.join(trajectories["directory"], good["frames"])},
            {"task": "x", "frames": "missing.npz", "data_source": "s"},
            {"task": "", "frames": str(tmp_path / "gray.npz"), "data_source": "s", "quality_label": "great"}]
    index = tmp_path / "index.jsonl"
    index.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        load_trajectories(index)
    text = str(err.value)
    assert f"{index}:2: field 'frames': npz file not found" in text
    assert f"{index}:3: field 'task'" in text and f"{index}:3: field 'quality_label'" in text
    assert "T x H x W x 3" in text


def test_cli_generate_takes_the_seed_options_and_overrides(trajectories, tmp_path, vtg_cli):
    cli = vtg_cli
    out = tmp_path / "vqa"
    result = CliRunner().invoke(cli, [
        "robot-vqa", "generate", "--input", trajectories["index"], "--output_path", str(out), "--num_samples", "40",
        "--seed", "3", "--num_workers", "-1", "--save_batch_size", "16",
        "--config_overrides", "data.max_frames=4", "data.sample_type_ratio=[0.5,0.5,0.0]"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "wrote 40 samples (20 preference, 20 progress)" in result.output
    record = json.loads((out / "generation_config.json").read_text())
    assert record["max_frames"] == 4 and record["runtime"]["num_workers"] == os.cpu_count()
    assert max(len(r["frame_indices"] or r["first_frame_indices"]) for r in _rows(out)) == 4

    again = CliRunner().invoke(cli, ["robot-vqa", "generate", "--input", trajectories["index"], "--output_path",
                                     str(out)])
    assert again.exit_code != 0 and "exists and is not empty" in again.output
    bad = CliRunner().invoke(cli, ["robot-vqa", "generate", "--input", trajectories["index"], "--output_path",
                                   str(tmp_path / "y"), "--config_overrides", "data.max_frame=4"])
    assert bad.exit_code != 0 and "max_frame=4" in bad.output and "max_frames" in bad.output
