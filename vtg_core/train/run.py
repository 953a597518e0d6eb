"""One training run from start to finish: what ``vtg train`` does.

Resolves the config, makes a run directory (resolved config, log file, checkpoints), loads the
task's data (or, for the demo, generates a synthetic grounding set of real video files and a tiny
offline model), trains with SFT or GRPO, evaluates the final checkpoint on the held-out split next
to a constant-prediction baseline, and says where everything went.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from ..config import VtgConfig, apply_overrides, dump_yaml
from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)

# The offline demo: a tiny Qwen3-VL learns "when does the <colour> <shape> appear?" on generated
# clips. Small clips and few frames keep it within minutes on two CPU cores; full fine-tuning of
# the tiny model (LoRA is exercised by the tests) is what lets it learn that fast. What makes it
# learn from the video rather than the answer prior: 32x32 frames (one visual token per pair of
# frames, so each time slot is one token that shows the shape or not), 16 frames (8 slots), one
# temporal token per boundary (a 10-way choice, not three digits), one prompt template, and no
# distractor shapes. Data loading stays in-process, so the frame cache survives between epochs.
DEMO_OVERRIDES: tuple[str, ...] = (
    "model.torch_dtype=float32",
    "model.attn_implementation=sdpa",
    "model.gradient_checkpointing=false",
    "model.freeze_vision_tower=false",
    "lora.enabled=false",
    "video.max_frames=16",
    "video.resolution={height: 32, width: 32}",
    "video.fps=0",
    "video.cache.enabled=true",
    "temporal.use_relative_timestamps=true",
    "temporal.use_temporal_tokens=true",
    "temporal.num_bins=10",
    "task_options={prompt_template: 0}",
    "dataloader.num_workers=0",
    "training.learning_rate=2e-3",
    "training.mm_projector_lr=2e-3",
    "training.vision_tower_lr=2e-3",
    "training.head_lr=2e-3",
    "training.per_device_train_batch_size=8",
    "training.gradient_accumulation_steps=1",
    "training.num_train_epochs=8",
    "training.warmup_ratio=0.05",
    "training.weight_decay=0.0",
    "training.lr_scheduler_type=cosine",
    "training.logging_steps=10",
    "training.save_steps=1000000",
    "training.eval_strategy='no'",
    "training.save_total_limit=1",
    "training.bf16=false",
    "rl.num_generations=4",
    "rl.max_completion_length=16",
    "rl.max_prompt_length=null",
)
DEMO_DATA = {"num_train": 600, "num_val": 48, "duration_range": (4.0, 8.0), "fps": 4, "size": (32, 32),
             "max_distractors": 0, "shape_size": 0.3}


@attrs.define
class RunResult:
    run_dir: str
    checkpoint_dir: str | None
    metrics: dict[str, float]
    baseline: dict[str, float] | None
    predictions_path: str | None


def make_run_dir(config: VtgConfig, method: str, output_dir: str | None = None) -> Path:
    """``<output_dir>/<task>-<method>-<timestamp>``; a fresh name if that exists already."""
    root = Path(output_dir or config.training.output_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{config.task}-{method}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{config.task}-{method}-{stamp}-{n}"
    run_dir.mkdir(parents=True)
    return run_dir


def _attach_log_file(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    return handler


def build_task(config: VtgConfig) -> Any:
    """The configured task object, with the ``temporal:`` section passed to tasks that take it."""
    from ..plugins import get_registry

    spec = get_registry().get("task", config.task)
    options = dict(config.task_options)
    factory = spec.load()
    if config.task == "temporal_grounding" or getattr(factory, "accepts_temporal_options", False):
        t = config.temporal
        options.setdefault("use_relative_timestamps", t.use_relative_timestamps)
        options.setdefault("num_bins", t.num_bins)
        options.setdefault("use_temporal_tokens", t.use_temporal_tokens)
        options.setdefault("seed", config.training.seed)
    return factory(**options)


def load_split(task: Any, path: str, config: VtgConfig, video_dir: str | None) -> list[Any]:
    """Samples of one annotation file, under the config's invalid-row policy."""
    if not os.path.exists(path):  # a folder is fine for tasks that read data sets saved to disk
        raise DataError(f"annotation file not found: {path}")
    samples = task.load(path, video_dir=video_dir, policy=config.dataset.invalid_policy,
                        max_invalid_fraction=config.dataset.max_invalid_fraction)
    if isinstance(samples, tuple):  # tasks may return (samples, problems)
        samples = samples[0]
    if not samples:
        raise DataError(f"{path}: no valid samples")
    return list(samples)


def split_holdout(samples: Sequence[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Carve a reproducible held-out split (by shuffled order) from ``samples``."""
    if fraction <= 0:
        return list(samples), []
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(samples) * fraction))
    val_idx = set(order[:n_val])
    return ([s for i, s in enumerate(samples) if i not in val_idx], [s for i, s in enumerate(samples) if i in val_idx])


def prepare_demo(config: VtgConfig, run_dir: Path, user_overrides: Sequence[str] = ()) -> VtgConfig:
    """Generate the synthetic data set and the tiny model inside ``run_dir``; point the config at them.

    ``user_overrides`` (the command line's ``--set`` and options) are applied last, so a user can
    still change any demo setting (``--set lora.enabled=true``).
    """
    from ..data.synthetic import make_grounding_dataset
    from ..testing import save_tiny_model

    demo_overrides: list[str] = list(DEMO_OVERRIDES)
    if config.task == "temporal_grounding":
        log.info("generating the synthetic grounding data set (%d train / %d val clips)",
                 DEMO_DATA["num_train"], DEMO_DATA["num_val"])
        paths = make_grounding_dataset(run_dir / "data", seed=config.training.seed, **DEMO_DATA)
    else:
        # A plugin task offers a demo through ``make_demo_data(directory, seed=) -> {"train", "val",
        # "video_dir", "overrides"}`` (all but "train" optional).
        task = build_task(config)
        maker = getattr(task, "make_demo_data", None)
        if not callable(maker):
            raise ConfigError(f"task {config.task!r} has no offline demo data (no make_demo_data); "
                              f"pass --data FILE (and --model) to train it")
        log.info("generating the demo data of task %r", config.task)
        paths = dict(maker(run_dir / "data", seed=config.training.seed))
        demo_overrides = [o for o in DEMO_OVERRIDES if not o.startswith(("temporal.", "task_options"))]
        demo_overrides.extend(paths.get("overrides", ()))
    model_dir = save_tiny_model(run_dir / "base-model", seed=config.training.seed)
    log.info("built the tiny offline Qwen3-VL model in %s", model_dir)
    overrides = [*demo_overrides, f"model.name_or_path={model_dir}", f"dataset.annotation_file={paths['train']}"]
    if paths.get("video_dir"):
        overrides.append(f"dataset.video_dir={paths['video_dir']}")
    if paths.get("val"):
        overrides.append(f"validation.annotation_file={paths['val']}")
    return apply_overrides(config, [*overrides, *user_overrides])


def train(config: VtgConfig, *, method: str = "sft", demo: bool = False, output_dir: str | None = None,
          sft_checkpoint: str | None = None, evaluate_after: bool = True, progress: bool = True,
          user_overrides: Sequence[str] = (), resume: str | None = None) -> RunResult:
    """Run one training job; see the module docstring.

    ``user_overrides`` are the ``--set`` style overrides ``config`` was built with; the demo
    re-applies them over its own settings. ``resume`` continues an earlier run instead (see
    :func:`vtg_core.train.resume.resume_config`): its run directory, its saved config with
    ``user_overrides`` on top, from its newest complete checkpoint. A run stopped by SIGTERM /
    SIGINT raises :class:`~vtg_core.errors.TrainingInterrupted` saying how to resume it.
    """
    if method not in ("sft", "grpo"):
        raise ConfigError(f"unknown training method {method!r}; expected 'sft' or 'grpo'")
    from ..plugins import get_registry

    get_registry().get("task", config.task)  # an unknown task fails before any directory is made
    usable, why = get_registry().get("backend", config.model.backend).usable()
    if not usable:  # so does a backend that cannot run here (missing package, no GPU)
        raise ConfigError(f"backend {config.model.backend!r} cannot run on this machine: {why}")
    # Under torchrun / accelerate / deepspeed every process runs this: rank 0 makes the run
    # directory (and demo data) and the others use the same (vtg_core.train.distributed).
    from .distributed import init_process_group, is_main_process, main_computes

    init_process_group()
    if resume:
        from .resume import resume_config

        run_dir, config = main_computes(lambda: resume_config(resume, config, method, output_dir, user_overrides))
        demo = False
    else:
        run_dir = main_computes(lambda: make_run_dir(config, method, output_dir))
    handler = _attach_log_file(run_dir) if is_main_process() else None
    try:
        if demo:
            config = main_computes(lambda: prepare_demo(config, run_dir, user_overrides))
        if resume:
            log.info("resuming %s from %s", run_dir, config.training.resume_from_checkpoint)
        elif is_main_process():
            dump_yaml(config, run_dir / "config.yaml")
        log.info("run directory: %s", run_dir)

        task = build_task(config)
        if not config.dataset.annotation_file:
            raise ConfigError("dataset.annotation_file is not set: pass --data FILE or a data config")
        video_dir = config.dataset.video_dir
        train_samples = load_split(task, config.dataset.annotation_file, config, video_dir)
        if config.validation.annotation_file:
            eval_samples = load_split(task, config.validation.annotation_file, config, video_dir)
        else:
            train_samples, eval_samples = split_holdout(train_samples, config.validation.split_fraction,
                                                        config.training.seed)
        log.info("data: %d training samples, %d held-out samples", len(train_samples), len(eval_samples))

        from ..plugins import get_registry

        backend = get_registry().get("backend", config.model.backend).load()()
        checkpoints = run_dir / "checkpoints"
        from ..errors import TrainingInterrupted

        try:
            if method == "sft":
                from .epoch_eval import epoch_eval_callbacks
                from .sft import run_sft

                result = run_sft(config, task=task, train_samples=train_samples, output_dir=str(checkpoints),
                                 backend=backend, callbacks=epoch_eval_callbacks(config, task, eval_samples, backend,
                                                                                 str(checkpoints)))
            else:
                from .grpo import run_grpo

                result = _run_grpo_guarded(run_grpo, config, task=task, train_samples=train_samples,
                                           output_dir=str(checkpoints), backend=backend,
                                           sft_checkpoint=sft_checkpoint)
        except TrainingInterrupted as exc:
            hint = f"vtg train --method {method} --resume {run_dir}"
            log.warning("%s; resume with: %s", exc, hint)
            raise TrainingInterrupted(f"{exc}. Resume with: {hint}", signum=exc.signum,
                                      checkpoint=exc.checkpoint) from None
        checkpoint_dir = getattr(result, "checkpoint_dir", None) or getattr(result, "checkpoint", None)
        from .epoch_eval import best_checkpoint

        best = best_checkpoint(str(checkpoints)) if method == "sft" else None
        if best:  # evaluation after each epoch kept the best one: that is the run's result
            log.info("best checkpoint: epoch %s, held-out %s = %.4f (%s)", best["epoch"], best["metric"],
                     best["value"], best["checkpoint"])
            checkpoint_dir = best["checkpoint"]

        metrics: dict[str, float] = {}
        baseline = None
        predictions_path = None
        if not is_main_process():  # rank 0 evaluates and writes the summary
            return RunResult(str(run_dir), checkpoint_dir, metrics, baseline, predictions_path)
        if evaluate_after and eval_samples and checkpoint_dir and hasattr(task, "aggregate"):
            metrics, baseline, predictions_path = _evaluate(config, task, backend, checkpoint_dir, train_samples,
                                                            eval_samples, run_dir, progress)
        summary = {"method": method, "checkpoint": checkpoint_dir, "metrics": metrics, "baseline": baseline,
                   "num_train": len(train_samples), "num_eval": len(eval_samples)}
        from ..evaluate.predictions import atomic_write_text

        atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2, default=float))
        return RunResult(str(run_dir), checkpoint_dir, metrics, baseline, predictions_path)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _run_grpo_guarded(run_grpo: Any, config: VtgConfig, *, output_dir: str, **kwargs: Any) -> Any:
    """``run_grpo`` with what ``run_sft`` has built in: SIGTERM / SIGINT finish the step and save,
    non-finite steps are refused (``training.on_nonfinite``)."""
    from ..errors import TrainingInterrupted
    from .checkpoints import latest_checkpoint
    from .guards import GracefulStop, NonFiniteGuard

    stop = GracefulStop()
    guard = NonFiniteGuard(policy=config.training.on_nonfinite, max_skips=config.training.max_nonfinite_steps,
                           checkpoint_dir=output_dir)
    try:
        result = run_grpo(config, output_dir=output_dir, callbacks=[stop, guard], **kwargs)
    finally:
        stop.restore()
    if stop.received is not None:
        last = latest_checkpoint(output_dir)
        raise TrainingInterrupted(f"{stop.signal_name} received: stopped with a checkpoint in {last}",
                                  signum=stop.received, checkpoint=last)
    return result


def _evaluate(config: VtgConfig, task: Any, backend: Any, checkpoint_dir: str, train_samples: Sequence[Any],
              eval_samples: Sequence[Any], run_dir: Path, progress: bool) -> tuple[dict, dict | None, str]:
    from ..data.sample_frames import make_cache
    from ..evaluate.loading import default_max_new_tokens
    from ..evaluate.runner import evaluate

    # Only the user's config turns trust_remote_code on, never the checkpoint (see load_checkpoint).
    trust = {"trust_remote_code": True} if config.model.trust_remote_code else {}
    model, processor = backend.load_checkpoint(checkpoint_dir, **trust)
    result = evaluate(model, processor, backend, task, eval_samples, config.video,
                      batch_size=config.validation.batch_size,
                      max_new_tokens=default_max_new_tokens(task, config), cache=make_cache(config.video),
                      progress=progress, desc="evaluating held-out split")
    from ..evaluate.predictions import write_predictions

    # The same file format as `vtg eval`, so the two can be compared row by row.
    predictions_path = run_dir / "predictions.jsonl"
    write_predictions(predictions_path, eval_samples, result)
    baseline = None
    if config.task == "temporal_grounding":
        from ..tasks.temporal_grounding.baseline import constant_baseline

        baseline = constant_baseline(task, train_samples, eval_samples)
    elif callable(getattr(task, "baseline", None)):  # a plugin task's own constant prediction
        baseline = task.baseline(train_samples, eval_samples)
    return result.metrics, baseline, str(predictions_path)


def format_report(result: RunResult) -> str:
    """The table ``vtg train`` prints at the end."""
    lines = []
    if result.metrics:
        # One metric per line (plugin tasks report a dozen), the baseline beside the model.
        keys = [k for k in result.metrics if k != "num_samples"]
        width = max(len(k) for k in keys) + 2 if keys else 10
        cols = ["trained model"] + (["constant baseline"] if result.baseline else [])
        lines.append(f"{'metric':<{width}}" + "".join(f"{c:>20}" for c in cols))
        for k in keys:
            values = [result.metrics.get(k)] + ([result.baseline.get(k)] if result.baseline else [])
            lines.append(f"{k:<{width}}" + "".join(
                f"{v:>20.3f}" if isinstance(v, int | float) else f"{'-':>20}" for v in values))
        units = "; R1@k and mIoU in %" if "mIoU" in result.metrics else ""
        lines.append(f"(held-out samples: {int(result.metrics.get('num_samples', 0))}{units})")
    lines.append(f"run directory:  {result.run_dir}")
    if result.checkpoint_dir:
        lines.append(f"checkpoint:     {result.checkpoint_dir}")
    if result.predictions_path:
        lines.append(f"predictions:    {result.predictions_path}")
    lines.append(f"config, log:    {result.run_dir}/config.yaml, {result.run_dir}/train.log")
    return "\n".join(lines)
