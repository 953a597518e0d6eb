"""Evaluate on the held-out split after every epoch and keep the best checkpoint (a TrainerCallback).

After each epoch :class:`EpochEvalCallback` generates answers for the held-out samples with the
same code as ``vtg eval`` (:func:`~vtg_core.evaluate.runner.generate_answers`, the task's parser
and metrics), appends the metrics to ``<output_dir>/epoch_eval.jsonl``, and when the configured
metric beats every earlier epoch saves a complete checkpoint to ``<output_dir>/best`` (atomically,
replacing the previous best) and records it in ``<output_dir>/best.json``. The metrics also go
into the Trainer's log as ``heldout_<name>``.

:func:`epoch_eval_callbacks` builds it when ``training.eval_strategy`` is ``epoch``, there are
held-out samples, and the task names the metric to pick by (``best_metric = ("accuracy",
"max")``; ``"min"`` for a loss-like metric). Tasks without one are left alone.

Only the main process generates and saves (other ranks go on); on a cluster, keep the held-out
split small enough for one process. Under ZeRO-3 on several processes it is refused before training
(rank 0 alone cannot generate with partitioned weights).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ..errors import ConfigError

log = logging.getLogger(__name__)

BEST_DIR = "best"
HISTORY_FILE = "epoch_eval.jsonl"
BEST_FILE = "best.json"


def _metric_spec(value: Any) -> tuple[str, str]:
    name, mode = (value, "max") if isinstance(value, str) else tuple(value)
    if mode not in ("max", "min"):
        raise ConfigError(f"best_metric mode must be 'max' or 'min', got {mode!r}")
    return str(name), str(mode)


class EpochEvalCallback(TrainerCallback):
    """See the module docstring. ``metric``/``mode``: what "best" means (``accuracy``, ``max``)."""

    def __init__(self, *, task: Any, samples: Sequence[Any], backend: Any, config: Any, output_dir: str,
                 metric: str, mode: str = "max", batch_size: int = 4, max_new_tokens: int = 32,
                 added_tokens: Sequence[str] = ()):
        if not samples:
            raise ConfigError("epoch evaluation needs held-out samples")
        self.task, self.samples, self.backend, self.config = task, list(samples), backend, config
        self.output_dir = Path(output_dir)
        self.metric, self.mode = _metric_spec((metric, mode))
        self.batch_size, self.max_new_tokens = int(batch_size), int(max_new_tokens)
        self.added_tokens = list(added_tokens)
        # A resumed run keeps competing with the best of its earlier epochs.
        self.best: dict[str, Any] | None = best_checkpoint(str(self.output_dir))
        self.history: list[dict[str, Any]] = []
        self._cache = None

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best["value"] if self.mode == "max" else value < self.best["value"]

    def evaluate(self, model: Any, processor: Any) -> dict[str, float]:
        from ..data.sample_frames import make_cache
        from ..evaluate.runner import generate_answers, score_answers

        if self._cache is None:
            self._cache = make_cache(self.config.video)
        answers = generate_answers(model, processor, self.backend, self.task, self.samples, self.config.video,
                                   batch_size=self.batch_size, max_new_tokens=self.max_new_tokens,
                                   cache=self._cache, progress=False, seed=int(self.config.training.seed))
        return score_answers(self.task, self.samples, answers).metrics

    def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None,
                     **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        metrics = self.evaluate(model, processing_class)
        if self.metric not in metrics:
            raise ConfigError(f"best_metric {self.metric!r} is not among the task's metrics "
                              f"({', '.join(sorted(metrics))})")
        value = float(metrics[self.metric])
        record = {"epoch": round(float(state.epoch or 0), 4), "step": int(state.global_step),
                  "metrics": metrics, "metric": self.metric, "value": value}
        self.history.append(record)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / HISTORY_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=float) + "\n")
        state.log_history.append({"epoch": record["epoch"], "step": record["step"],
                                  **{f"heldout_{k}": v for k, v in metrics.items()}})
        if self._better(value):
            from ..evaluate.predictions import atomic_write_text

            path = self.backend.save_checkpoint(model, processing_class, str(self.output_dir / BEST_DIR),
                                                config=self.config, added_tokens=self.added_tokens)
            self.best = {**record, "checkpoint": path}
            atomic_write_text(self.output_dir / BEST_FILE, json.dumps(self.best, indent=2, default=float) + "\n")
            log.info("epoch %.2f: held-out %s = %.4f, the best so far; saved %s", record["epoch"], self.metric,
                     value, path)
        else:
            log.info("epoch %.2f: held-out %s = %.4f (best %.4f at epoch %.2f)", record["epoch"], self.metric,
                     value, self.best["value"] if self.best else float("nan"),
                     self.best["epoch"] if self.best else float("nan"))


def _refuse_partitioned_model(config: Any) -> None:
    """Per-epoch evaluation runs on rank 0 alone; under ZeRO-3 on several processes rank 0 holds a
    shard of each weight, and generating would wait forever for the other ranks: stop before training."""
    from .distributed import dist_info

    if not config.deepspeed or not dist_info().distributed:
        return
    from .distributed_deepspeed import load_deepspeed_json

    path, data = load_deepspeed_json(config.deepspeed)
    stage = (data.get("zero_optimization") or {}).get("stage", 0)
    if str(stage) == "3":
        raise ConfigError(f"training.eval_strategy=epoch evaluates on rank 0 alone, which ZeRO-3 ({path}) cannot do "
                          f"on {dist_info().world_size} processes (each holds a shard of the weights): use "
                          "ZeRO-2 (--deepspeed zero2), or --set training.eval_strategy=no and run `vtg eval` "
                          "on the saved checkpoints")


def best_checkpoint(output_dir: str) -> dict[str, Any] | None:
    """The ``best.json`` record of a run's checkpoints folder (``checkpoint``, ``epoch``, ``value``...)."""
    path = Path(output_dir) / BEST_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    return record if Path(record.get("checkpoint", "")).is_dir() else None


def epoch_eval_callbacks(config: Any, task: Any, eval_samples: Sequence[Any], backend: Any,
                         output_dir: str) -> list[EpochEvalCallback]:
    """``[EpochEvalCallback]`` when the config and task ask for it (see the module docstring), else ``[]``."""
    spec = getattr(task, "best_metric", None)
    if config.training.eval_strategy != "epoch" or not eval_samples or spec is None:
        return []
    from ..evaluate.loading import default_max_new_tokens

    _refuse_partitioned_model(config)
    name, mode = _metric_spec(spec)
    return [EpochEvalCallback(task=task, samples=eval_samples, backend=backend, config=config,
                              output_dir=output_dir, metric=name, mode=mode,
                              batch_size=config.validation.batch_size,
                              max_new_tokens=default_max_new_tokens(task, config),
                              added_tokens=list(getattr(task, "extra_tokens", None) or []))]
