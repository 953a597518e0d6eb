"""A generated Road Buddy-style data set: real clips (PyAV), Vietnamese and English questions.

:func:`make_roadbuddy_dataset` lays files out as Road Buddy does::

    root/train/train.json                 {"__count__": N, "data": [...]}, answers included
    root/train/videos/train_0000.mp4
    root/public_test/public_test.json     {"__count__": M, "data": [...]}, no answers
    root/public_test/videos/test_0000.mp4

with ``video_path`` relative to ``root`` (``"train/videos/train_0000.mp4"``). Each clip
(:func:`vtg_core.data.synthetic.make_clip`) shows one or two coloured shapes, each for a while;
questions ask the colour of the shape on screen at a moment (whose time is the support frame) or
which shape appears, with 2 to 4 choices, the right one at a random letter. Half the questions
are Vietnamese, half English. Same seed, same files.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from vtg_core.data.synthetic import SHAPES, Event, make_clip

from .schema import LETTERS

COLOURS = {"red": "đỏ", "green": "xanh lá", "blue": "xanh dương", "yellow": "vàng", "magenta": "hồng",
           "cyan": "xanh lơ"}
SHAPE_NAMES = {"square": ("square", "hình vuông"), "circle": ("circle", "hình tròn"),
               "triangle": ("triangle", "hình tam giác"), "diamond": ("diamond", "hình thoi")}

#: What ``vtg train --task dashcam_mcq`` (no data) sets on top of the core's demo settings. Like
#: the core's demo it fine-tunes the tiny model in full (LoRA learns too slowly at this size to show
#: anything in minutes; the tests exercise seed 003's LoRA settings), and it evaluates on the 20%
#: held-out split after every epoch, keeping the best epoch's checkpoint.
DEMO_OVERRIDES: tuple[str, ...] = (
    "dataset.video_dir=null",
    "validation.annotation_file=null",
    "validation.split_fraction=0.2",
    "validation.batch_size=8",
    "training.eval_strategy=epoch",
    "training.num_train_epochs=5",
    "training.save_steps=1000000",
    "task_options={min_frames: 4, max_frames: 6}",
)


def _question(rng: random.Random, events: list[Event], lang: str) -> tuple[str, list[str], int, list[float]]:
    """``(question, choice texts, index of the right one, support times)``."""
    n = rng.randint(2, 4)
    if rng.random() < 0.5:
        target = rng.choice(events)
        t = round((target.start + target.end) / 2, 3)
        others = [c for c in COLOURS if c not in {e.color for e in events}]
        options = [target.color, *rng.sample(others, n - 1)]
        rng.shuffle(options)
        names = [COLOURS[c] if lang == "vi" else c for c in options]
        q = (f"Vật thể xuất hiện trên đường vào khoảng giây thứ {t:g} có màu gì?" if lang == "vi"
             else f"What colour is the object on the road at about {t:g} seconds?")
        return q, names, options.index(target.color), [t]
    shown = {e.shape for e in events}
    right = rng.choice(sorted(shown))
    options = [right, *rng.sample([s for s in SHAPES if s not in shown], min(n - 1, len(SHAPES) - len(shown)))]
    rng.shuffle(options)
    names = [SHAPE_NAMES[s][1] if lang == "vi" else f"a {SHAPE_NAMES[s][0]}" for s in options]
    q = ("Biển báo nào xuất hiện trong video?" if lang == "vi"
         else "Which sign shape appears in the video?")
    support = [round((e.start + e.end) / 2, 3) for e in events if e.shape == right][:1]
    return q, names, options.index(right), support if rng.random() < 0.8 else []


def _clip(rng: random.Random, fps: int) -> tuple[list[Event], float]:
    num_frames = rng.randint(3 * fps, 5 * fps)
    duration = num_frames / fps
    shapes = rng.sample(SHAPES, 2)
    colours = rng.sample(list(COLOURS), 2)
    half = num_frames // 2
    spans = [(rng.randint(0, half // 2), half)] + ([(half, rng.randint(half + fps, num_frames))]
                                                   if rng.random() < 0.5 else [])
    events = [Event(shape=shapes[i], color=colours[i], start=a / fps, end=b / fps, position=(0.5, 0.5), size=0.5)
              for i, (a, b) in enumerate(spans)]
    return events, duration


def make_roadbuddy_dataset(root: str | os.PathLike[str], *, num_train: int = 40, num_test: int = 8,
                           seed: int = 0, fps: int = 8, size: tuple[int, int] = (64, 64)) -> dict[str, Any]:
    """Write the data set (see the module docstring); return ``{"train", "test", "video_dir", "root",
    "test_answers"}`` (``test_answers``: id -> letter, kept out of the test file)."""
    root = Path(root)
    out: dict[str, Any] = {"root": str(root), "video_dir": str(root)}
    test_answers: dict[str, str] = {}
    for split, folder, prefix, count in (("train", "train", "train", num_train),
                                         ("test", "public_test", "test", num_test)):
        rows = []
        for i in range(count):
            rng = random.Random(f"roadbuddy:{seed}:{split}:{i}")
            events, duration = _clip(rng, fps)
            rel = f"{folder}/videos/{prefix}_{i:04d}.mp4"
            make_clip(root / rel, duration=duration, fps=fps, size=size, events=events, seed=rng.randrange(2**31))
            lang = "vi" if i % 2 == 0 else "en"
            question, names, right, support = _question(rng, events, lang)
            row: dict[str, Any] = {"id": f"{prefix}_{i:04d}", "question": question,
                                   "choices": [f"{LETTERS[k]}. {name}" for k, name in enumerate(names)]}
            if split == "train":
                row["answer"] = f"{LETTERS[right]}. {names[right]}"
            else:
                test_answers[row["id"]] = LETTERS[right]
            row["support_frames"] = support
            row["video_path"] = rel
            rows.append(row)
        path = root / folder / f"{folder}.json"
        path.write_text(json.dumps({"__count__": len(rows), "data": rows}, ensure_ascii=False, indent=1),
                        encoding="utf-8")
        out[split] = str(path)
    out["test_answers"] = test_answers
    return out
