"""Synthetic clips and the synthetic grounding data set: real files, exactly known events."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vtg_core.data.synthetic import (
    BACKGROUND,
    COLORS,
    Event,
    make_clip,
    make_damaged_files,
    make_grounding_dataset,
)
from vtg_core.data.video import load_frames, probe


def _pixel_at(frames, position, index):
    h, w = frames.array.shape[1:3]
    x, y = int(position[0] * w), int(position[1] * h)
    return frames.array[index, y, x].astype(int)


def _close(pixel, rgb, tol=40):
    return int(np.abs(pixel - np.asarray(rgb)).max()) <= tol


def test_make_clip_shows_each_shape_exactly_inside_its_event(tmp_path):
    events = [Event(shape="square", color="red", start=1.0, end=3.0, position=(0.3, 0.3)),
              Event(shape="circle", color="blue", start=2.5, end=4.0, position=(0.7, 0.7))]
    path = make_clip(tmp_path / "c.mp4", duration=5.0, fps=8, size=(64, 96), events=events, seed=1)
    frames = load_frames(path, max_frames=None)
    assert frames.array.shape == (40, 64, 96, 3)
    assert frames.timestamps == tuple(k / 8 for k in range(40))
    for k, t in enumerate(frames.timestamps):
        for event in events:
            pixel = _pixel_at(frames, event.position, k)
            if event.start <= t < event.end:
                assert _close(pixel, COLORS[event.color]), (event, t, pixel)
            else:
                assert _close(pixel, BACKGROUND, tol=20), (event, t, pixel)


@pytest.mark.parametrize("shape", ["square", "circle", "triangle", "diamond"])
def test_every_shape_is_drawn_in_its_colour(shape):
    mask = Event(shape=shape, size=0.5).mask(64, 64)
    assert mask[32, 32] and not mask[0, 0] and 100 < mask.sum() < 64 * 64 // 2


def test_event_rejects_what_it_cannot_draw():
    with pytest.raises(ValueError, match="shape"):
        Event(shape="hexagon")
    with pytest.raises(ValueError, match="colour"):
        Event(color="mauve")
    with pytest.raises(ValueError, match="start < end"):
        Event(start=3.0, end=1.0)


def _digest(out):
    h = hashlib.sha256()
    for split in ("train", "val"):
        h.update(Path(out[split]).read_bytes())
    for name in sorted(os.listdir(out["video_dir"])):
        h.update(name.encode())
        h.update(Path(out["video_dir"], name).read_bytes())
    return h.hexdigest()


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    t0 = time.perf_counter()
    out = make_grounding_dataset(tmp_path_factory.mktemp("ds"), num_train=48, num_val=12, seed=7)
    return out, time.perf_counter() - t0


def test_dataset_is_fast_and_laid_out_as_documented(dataset):
    out, seconds = dataset
    assert seconds < 10, f"60 clips took {seconds:.1f}s"
    assert set(out) == {"train", "val", "video_dir", "root"}
    train, val = _rows(out["train"]), _rows(out["val"])
    assert len(train) == 48 and len(val) == 12
    assert len({r["qid"] for r in train + val}) == 60
    for row in train + val:
        assert set(row) == {"video", "duration", "timestamp", "sentence", "qid"}
        assert not os.path.isabs(row["video"])
        assert (Path(out["video_dir"]) / row["video"]).is_file()
        start, end = row["timestamp"]
        assert 0 <= start < end <= row["duration"]
        assert 4 <= row["duration"] <= 12
        assert row["sentence"].startswith("when does the ") and row["sentence"].endswith(" appear?")


def test_dataset_duration_matches_the_decoder(dataset):
    out, _ = dataset
    for row in _rows(out["val"])[:4]:
        info = probe(Path(out["video_dir"]) / row["video"])
        assert info.duration == pytest.approx(row["duration"], abs=1e-6)
        assert info.fps == pytest.approx(8.0)


def test_dataset_ground_truth_is_exactly_when_the_shape_is_visible(dataset):
    out, _ = dataset
    for row in _rows(out["val"])[:6]:
        color = row["sentence"].split()[3]
        frames = load_frames(Path(out["video_dir"]) / row["video"], max_frames=None)
        near = np.abs(frames.array.astype(int) - np.asarray(COLORS[color])).max(axis=-1) <= 40
        visible = near.sum(axis=(1, 2)) >= 20  # a shape covers ~80 px at 64x64
        start, end = row["timestamp"]
        expected = [start <= t < end for t in frames.timestamps]
        assert visible.tolist() == expected, row


def test_same_seed_same_bytes_other_seed_other_data(dataset, tmp_path):
    out, _ = dataset
    kw = {"num_train": 4, "num_val": 2}
    a = make_grounding_dataset(tmp_path / "a", seed=7, **kw)
    b = make_grounding_dataset(tmp_path / "b", seed=7, **kw)
    c = make_grounding_dataset(tmp_path / "c", seed=8, **kw)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    # a smaller data set with the same seed is a prefix of the bigger one
    assert _rows(a["train"]) == _rows(out["train"])[:4]


def test_max_distractors_zero_leaves_the_target_alone(tmp_path):
    out = make_grounding_dataset(tmp_path, num_train=3, num_val=0, seed=1, max_distractors=0)
    for row in _rows(out["train"]):
        frames = load_frames(Path(out["video_dir"]) / row["video"], max_frames=None)
        off_background = np.abs(frames.array.astype(int) - np.asarray(BACKGROUND)).max(axis=-1) > 30
        start, end = row["timestamp"]
        for t, busy in zip(frames.timestamps, off_background.any(axis=(1, 2)), strict=True):
            assert busy == (start <= t < end), (row, t)
    with pytest.raises(ValueError, match="max_distractors"):
        make_grounding_dataset(tmp_path / "x", num_train=1, num_val=0, max_distractors=3)


def test_damaged_files_are_what_they_say(tmp_path):
    files = make_damaged_files(tmp_path)
    assert set(files) == {"source", "empty", "not_video", "truncated", "no_index", "missing"}
    assert os.path.getsize(files["empty"]) == 0
    assert not os.path.exists(files["missing"])
    assert 0 < os.path.getsize(files["truncated"]) < os.path.getsize(files["source"])
    assert Path(files["not_video"]).read_text().startswith("this is a text file")


def test_importing_synthetic_stays_light():
    code = ("import sys, vtg_core.data.synthetic, vtg_core.data.video; "
            "print(','.join(m for m in ('decord', 'torch', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
