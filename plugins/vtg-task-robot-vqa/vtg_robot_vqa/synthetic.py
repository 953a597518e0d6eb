"""Synthetic robot trajectories: a gripper pushes a block towards a goal, saved as ``.npz`` arrays.

Tests and the offline demo need trajectories without a robot. Each trajectory is a ``T x H x W x 3``
uint8 array (key ``frames``) of a grey gripper pushing a coloured block along a straight line
towards a green goal square, with a JSONL index row per trajectory in the format
``vtg robot-vqa generate`` reads::

    {"id": "traj_0000", "task": "push the red block to the green goal", "frames": "traj_0000.npz",
     "data_source": "synthetic_push", "quality_label": "successful"}

Quality labels tell how far the block gets: ``successful`` reaches the goal at the last frame,
``suboptimal`` wanders sideways and reaches it only roughly, ``failure`` stops part of the way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {"red": (220, 40, 40), "blue": (40, 70, 220), "yellow": (230, 200, 30)}
GOAL_RGB = (40, 190, 70)
GRIPPER_RGB = (150, 150, 150)
QUALITIES = ("successful", "suboptimal", "failure")
DATA_SOURCE = "synthetic_push"


def task_text(colour: str) -> str:
    return f"push the {colour} block to the green goal"


def _square(frame: np.ndarray, cy: float, cx: float, half: int, rgb: tuple[int, int, int]) -> None:
    h, w = frame.shape[:2]
    y0, y1 = max(0, int(round(cy)) - half), min(h, int(round(cy)) + half + 1)
    x0, x1 = max(0, int(round(cx)) - half), min(w, int(round(cx)) + half + 1)
    if y0 < y1 and x0 < x1:
        frame[y0:y1, x0:x1] = rgb


def render_trajectory(*, num_frames: int, size: int, colour: str, quality: str, rng: np.random.Generator
                      ) -> np.ndarray:
    """One trajectory as a ``(num_frames, size, size, 3)`` uint8 array."""
    if num_frames < 2:
        raise ValueError(f"a trajectory needs at least 2 frames, got {num_frames}")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}, got {quality!r}")
    half = max(1, size // 16)
    margin = 3 * half + 1
    start = rng.uniform(margin, size - margin, size=2)
    goal = rng.uniform(margin, size - margin, size=2)
    while np.linalg.norm(goal - start) < size / 3:  # keep the push long enough to show progress
        goal = rng.uniform(margin, size - margin, size=2)
    reach = {"successful": 1.0, "suboptimal": 1.0, "failure": float(rng.uniform(0.2, 0.6))}[quality]
    t = np.linspace(0.0, 1.0, num_frames)
    along = np.minimum(t / 0.85, 1.0) * reach if quality == "suboptimal" else t * reach
    direction = (goal - start) / np.linalg.norm(goal - start)
    normal = np.array([-direction[1], direction[0]])
    wobble = np.sin(t * np.pi * 2) * (size / 6) * (quality == "suboptimal")
    background = np.full((size, size, 3), 235, dtype=np.uint8)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for i in range(num_frames):
        frame = background.copy()
        _square(frame, goal[0], goal[1], half + 1, GOAL_RGB)
        block = start + (goal - start) * along[i] + normal * wobble[i]
        _square(frame, block[0], block[1], half, COLOURS[colour])
        gripper = block - direction * (2 * half + 1)
        _square(frame, gripper[0], gripper[1], max(1, half - 1), GRIPPER_RGB)
        frames[i] = frame
    return frames


def make_trajectories(directory: str | os.PathLike[str], *, num_trajectories: int = 12, num_frames: int = 16,
                      size: int = 32, seed: int = 0, qualities: tuple[str, ...] = QUALITIES,
                      colours: tuple[str, ...] = ("red", "blue")) -> dict[str, Any]:
    """Write ``num_trajectories`` npz files and ``trajectories.jsonl`` into ``directory``.

    Trajectories cycle through the colours (one task per colour) and the qualities, so every task
    has trajectories of every quality once there are ``len(colours) * len(qualities)`` of them.
    Returns ``{"index": path of the JSONL index, "directory": directory, "trajectories": rows}``.
    """
    if num_trajectories < 1:
        raise ValueError(f"num_trajectories must be >= 1, got {num_trajectories}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(num_trajectories):
        colour = colours[i % len(colours)]
        quality = qualities[(i // len(colours)) % len(qualities)]
        frames = render_trajectory(num_frames=num_frames, size=size, colour=colour, quality=quality, rng=rng)
        name = f"traj_{i:04d}.npz"
        np.savez_compressed(out / name, frames=frames)
        rows.append({"id": f"traj_{i:04d}", "task": task_text(colour), "frames": name, "data_source": DATA_SOURCE,
                     "quality_label": quality})
    index = out / "trajectories.jsonl"
    index.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"index": str(index), "directory": str(out), "trajectories": rows}
