"""``vtg robot-vqa evaluate``: seed 004's evaluation report on the core's evaluation runner.

Frames, prompts and parsing come from the ``robot_vqa`` task with the options the checkpoint
was trained with (its saved config), so the numbers match the held-out evaluation of ``vtg train``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vtg_core.errors import ConfigError

from .metrics import seed_report


def evaluate_dataset(model_path: str, dataset_path: str, output_path: str, *, batch_size: int = 1,
                     max_new_tokens: int = 10, max_samples: int | None = None, save_predictions: bool = False,
                     use_multi_image: bool | None = None, overrides: list[str] | None = None,
                     progress: bool = True) -> dict[str, Any]:
    from vtg_core.data.sample_frames import make_cache
    from vtg_core.evaluate.loading import build_backend, checkpoint_config, load_model
    from vtg_core.evaluate.predictions import atomic_write_text, write_predictions
    from vtg_core.evaluate.runner import evaluate
    from vtg_core.train.run import build_task

    if max_samples is not None and max_samples < 1:
        raise ConfigError(f"--max_samples must be >= 1, got {max_samples}")
    sets = list(overrides or [])
    if use_multi_image is not None:
        sets.append(f"task_options.use_multi_image={'true' if use_multi_image else 'false'}")
    config, _ = checkpoint_config(model_path, sets, task_name="robot_vqa")
    task = build_task(config)
    samples, _ = task.load(dataset_path, policy="fail")
    if max_samples is not None:
        samples = samples[:max_samples]
    backend = build_backend(config)
    model, processor = load_model(backend, model_path, config)
    result = evaluate(model, processor, backend, task, samples, config.video, batch_size=batch_size,
                      max_new_tokens=max_new_tokens, cache=make_cache(config.video), progress=progress,
                      desc="robot-vqa", seed=config.training.seed)
    report = {"model_path": os.fspath(model_path), "dataset_path": os.fspath(dataset_path),
              **seed_report(result.metrics), "metrics": result.metrics,
              "use_multi_image": task.use_multi_image}
    if save_predictions:
        path = Path(output_path).with_suffix(".predictions.jsonl")
        write_predictions(path, samples, result)
        report["predictions_path"] = str(path)
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_path, json.dumps(report, indent=2, default=float) + "\n")
    return report
