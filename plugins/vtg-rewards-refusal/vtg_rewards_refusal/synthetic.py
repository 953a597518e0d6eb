"""A generated RIQ data set: real clips with known events, answerable and refusable queries.

Clips are drawn with the core's :func:`~vtg_core.data.synthetic.make_clip`: one to three coloured
shapes, each with its own shape and colour, on screen for a run of frames (edges on frame
boundaries, so the segments are exact). Each clip gets one query:

- **answerable**: "when does the <colour> <shape> appear?" about the first event, with its
  segment in ``gt_answers``;
- **refusable**: the query names a shape that never appears in the clip, with ``gt_answers``
  ``[[-1, -1]]`` and, as ``refusable_queries``, the answerable queries of every event in the
  clip. ``difficulty`` is ``easy`` when the colour never appears either, ``hard`` when it does
  (on another shape): a near miss.

Rows follow RA-RFT's format (a JSON array by default, JSON Lines with ``fmt="jsonl"``). Same
seed, same rows, same frames. The core's :func:`make_grounding_dataset` does not expose every
event of a clip, which the refusable queries need, so the clips are drawn here.

Command line: ``python -m vtg_rewards_refusal.synthetic OUT_DIR [--train N] [--val N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path
from typing import Any

from vtg_core.data.synthetic import COLORS, SHAPES, Event, make_clip

_GRID = tuple((x, y) for y in (0.25, 0.5, 0.75) for x in (0.25, 0.5, 0.75))
_PALETTE = tuple(c for c in COLORS if c != "white")  # white is too close to the background's edges


def query_for(color: str, shape: str) -> str:
    return f"when does the {color} {shape} appear?"


def _events(rng: random.Random, num_frames: int, fps: int) -> list[Event]:
    count = rng.randint(1, 3)
    # At most three of the four shapes and of the six colours: a refusable query always has an
    # unused shape, and an unused colour for the easy kind.
    shapes = rng.sample(SHAPES, count)
    colors = rng.sample(_PALETTE, count)
    cells = rng.sample(_GRID, count)
    events = []
    for shape, color, cell in zip(shapes, colors, cells, strict=True):
        length = rng.randint(min(num_frames, max(2, fps)), max(2, num_frames // 2))
        first = rng.randint(0, num_frames - length)
        events.append(Event(shape=shape, color=color, start=first / fps, end=(first + length) / fps,
                            position=cell, size=0.35))
    return events


def riq_row(name: str, qid: str, duration: float, events: list[Event], *, refusable: bool,
            rng: random.Random) -> dict[str, Any]:
    """One RIQ row about ``events`` (answerable: the first event; refusable: an absent shape)."""
    row: dict[str, Any] = {"video": name, "duration": duration, "qid": qid}
    references = [query_for(e.color, e.shape) for e in events]
    if not refusable:
        target = events[0]
        row.update(problem=references[0], task_type="answerable",
                   gt_answers=[{"answer": [target.start, target.end]}])
        return row
    used_shapes = {e.shape for e in events}
    used_colors = {e.color for e in events}
    shape = rng.choice([s for s in SHAPES if s not in used_shapes])
    hard = rng.random() < 0.5
    color = rng.choice(sorted(used_colors) if hard else [c for c in _PALETTE if c not in used_colors])
    row.update(problem=query_for(color, shape), task_type="refusable", gt_answers=[[-1, -1]],
               refusable_queries=references, difficulty="hard" if hard else "easy")
    return row


def make_riq_dataset(out_dir: str | os.PathLike[str], *, num_train: int = 8, num_val: int = 4, seed: int = 0,
                     refusable_fraction: float = 0.5, duration_range: tuple[float, float] = (3.0, 6.0),
                     fps: int = 4, size: tuple[int, int] = (32, 32), fmt: str = "json") -> dict[str, str]:
    """Write clips and ``train.json`` / ``val.json`` (or ``.jsonl``) under ``out_dir``.

    Returns ``{"train", "val", "video_dir", "root"}`` as strings; rows name clips relative to
    ``video_dir``. ``refusable_fraction`` of each split (rounded) is refusable.
    """
    if fmt not in ("json", "jsonl"):
        raise ValueError(f"fmt must be 'json' or 'jsonl', got {fmt!r}")
    if not 0.0 <= refusable_fraction <= 1.0:
        raise ValueError(f"refusable_fraction must be in [0, 1], got {refusable_fraction}")
    if duration_range[0] <= 0 or duration_range[1] < duration_range[0]:
        raise ValueError(f"duration_range must be (low, high) with 0 < low <= high, got {duration_range}")
    root = Path(out_dir)
    video_dir = root / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    out = {"root": str(root), "video_dir": str(video_dir)}
    for split, count in (("train", num_train), ("val", num_val)):
        split_rng = random.Random(f"vtg-riq:{seed}:{split}")
        refusable = set(split_rng.sample(range(count), round(count * refusable_fraction)))
        rows = []
        for i in range(count):
            rng = random.Random(f"vtg-riq:{seed}:{split}:{i}")
            num_frames = max(2 * fps, round(rng.uniform(*duration_range) * fps))
            duration = num_frames / fps
            events = _events(rng, num_frames, fps)
            name = f"{split}_{i:04d}.mp4"
            make_clip(video_dir / name, duration=duration, fps=fps, size=size, events=events,
                      seed=rng.randrange(2**31))
            rows.append(riq_row(name, f"riq|{seed}|{split}|{i:04d}", duration, events, refusable=i in refusable,
                                rng=rng))
        path = root / f"{split}.{fmt}"
        with open(path, "w", encoding="utf-8") as fh:
            if fmt == "json":
                json.dump(rows, fh, indent=1)
                fh.write("\n")
            else:
                fh.writelines(json.dumps(row) + "\n" for row in rows)
        out[split] = str(path)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a generated RIQ data set (clips + annotations).")
    parser.add_argument("out_dir")
    parser.add_argument("--train", type=int, default=48)
    parser.add_argument("--val", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refusable-fraction", type=float, default=0.5)
    parser.add_argument("--jsonl", action="store_true", help="JSON Lines instead of a JSON array")
    args = parser.parse_args(argv)
    paths = make_riq_dataset(args.out_dir, num_train=args.train, num_val=args.val, seed=args.seed,
                             refusable_fraction=args.refusable_fraction, fmt="jsonl" if args.jsonl else "json")
    print(json.dumps(paths, indent=2))


if __name__ == "__main__":
    main()
