"""The offline demo of ``vtg train --task robot_vqa``: synthetic pushes -> train and val data sets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .generate import GenerationConfig, generate_dataset
from .synthetic import make_trajectories

# Small frames and few of them keep the demo within minutes on two CPU cores.
DEMO_OVERRIDES = ("video.resolution={height: 32, width: 32}", "training.num_train_epochs=6",
                  "training.per_device_train_batch_size=4")


def make_demo_data(directory: str | os.PathLike[str], *, seed: int, num_train: int = 96, num_val: int = 24,
                   max_frames: int = 4) -> dict[str, Any]:
    out = Path(directory)
    trajectories = make_trajectories(out / "trajectories", num_trajectories=12, num_frames=16, size=32, seed=seed)
    paths = {}
    for split, n, offset in (("train", num_train, 0), ("val", num_val, 1)):
        config = GenerationConfig(num_samples=n, seed=seed * 2 + offset, max_frames=max_frames)
        generate_dataset(trajectories["index"], out / split, config, num_workers=1, save_batch_size=-1)
        paths[split] = str(out / split)
    return {**paths, "overrides": list(DEMO_OVERRIDES)}
