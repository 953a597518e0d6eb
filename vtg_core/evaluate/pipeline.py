"""One evaluation from start to finish: what ``vtg eval`` does.

- **A checkpoint**: its saved ``vtg_config.yaml`` (+ ``--set``) decides the task options, prompts
  and frame sampling; answers are generated greedily in batches (a strided shard per rank when
  launched with torchrun / accelerate), parsed by the task's own parser, scored by its metrics.
- **Stored predictions** (``--from-pred``, or no ``--model`` and every row has ``pred``): the
  ``pred`` fields are scored directly; no model, no torch.

Either way the output folder gets ``metrics.json`` (overall + breakdowns), ``predictions.jsonl``
and ``manifest.json`` (:mod:`.manifest`), each written atomically; ``--plots`` adds timelines of
the best / median / worst samples and an IoU histogram (grounding tasks). A task's extra tables
(``report_tables``, e.g. a confusion matrix; see :mod:`.tables`) are printed, stored in
``metrics.json`` and drawn as PNGs by ``--plots``.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError, DataError
from . import manifest as mf
from .breakdown import DEFAULT_BINS, breakdown
from .distributed import DEFAULT_TIMEOUT_S, DistContext, context_from_env, run_token
from .predictions import (
    atomic_write_text,
    has_stored_predictions,
    score_stored_predictions,
    write_predictions,
)
from .runner import EvalResult

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_ROOT = "eval_outputs"


@attrs.define
class EvalOutcome:
    """What rank 0 returns: the numbers, where they were written, and the manifest."""

    metrics: dict[str, float]
    breakdowns: dict[str, Any]
    output_dir: str
    manifest: dict[str, Any]
    result: EvalResult
    samples: list[Any]
    plots: list[str] = attrs.field(factory=list)
    tables: dict[str, Any] = attrs.field(factory=dict)

    @property
    def files(self) -> dict[str, str]:
        return {name: os.path.join(self.output_dir, name)
                for name in ("metrics.json", "predictions.jsonl", "manifest.json")}


def _stat_identity(path: str | None) -> Any:
    """Cheap identity of a checkpoint for the shard token (file names, sizes, mtimes)."""
    if path is None or not Path(path).is_dir():
        return path
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(path).iterdir() if p.is_file())


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass
    import torch

    torch.manual_seed(seed)


def _task_section(config: Any, task: Any) -> dict[str, Any]:
    from ..config.loader import to_dict

    return {"name": config.task, "options": dict(config.task_options), "temporal": to_dict(config.temporal),
            "repr": repr(task)}


def run_evaluation(
    data: str,
    *,
    model: str | None = None,
    base_model: str | None = None,
    task: str | None = None,
    video_dir: str | None = None,
    batch_size: int | None = None,
    by: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    output_dir: str | None = None,
    plots_dir: str | None = None,
    overrides: Sequence[str] = (),
    from_pred: bool | None = None,
    max_new_tokens: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    shard_timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> EvalOutcome | None:
    """Evaluate ``model`` (or stored predictions) on ``data``; see the module docstring.

    ``rank`` / ``world_size`` default to the launcher's ``RANK`` / ``WORLD_SIZE``; passing them
    runs one shard in this process (tests do, with both ranks in turn). Returns ``None`` on
    ranks other than 0, which only generate their shard. ``base_model`` replaces the base a LoRA
    checkpoint recorded (when it moved).
    """
    from ..train.run import build_task, load_split
    from .loading import checkpoint_config

    if not os.path.exists(data):  # a folder is fine for tasks that read data sets saved to disk
        raise DataError(f"annotation file not found: {data}")
    if rank is not None or world_size is not None:
        ctx = DistContext(rank=rank or 0, world_size=world_size or 1, local_rank=rank or 0)
        if not 0 <= ctx.rank < ctx.world_size:
            raise ConfigError(f"rank {ctx.rank} is not within world size {ctx.world_size}")
    else:
        ctx = context_from_env()
    if from_pred and model:
        raise ConfigError("--from-pred scores the file's 'pred' fields; it takes no --model")
    config, config_source = checkpoint_config(model, overrides, task_name=task)
    task_obj = build_task(config)
    samples = load_split(task_obj, data, config, video_dir)
    if model is None:
        if from_pred is False:
            raise ConfigError("no --model given: pass --model CKPT, or --from-pred to score stored predictions")
        if from_pred is None and not has_stored_predictions(samples):
            raise DataError(f"{data}: no --model given and not every row has a 'pred' field; pass --model CKPT "
                            "to evaluate a checkpoint, or --from-pred to score stored predictions (it names the "
                            "rows without one)")
        if not ctx.is_main:
            return None  # scoring a file is instant: rank 0 does it alone
        return _finish(_stored(task_obj, config, samples, data, video_dir, overrides), task_obj, samples, by,
                       bins, output_dir, plots_dir, data)

    bs = int(batch_size or config.validation.batch_size)
    if bs < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {bs}")
    from .loading import default_max_new_tokens

    new_tokens = int(max_new_tokens or default_max_new_tokens(task_obj, config))
    seed = int(config.training.seed)
    from ..config.loader import to_dict

    token = run_token({"model": str(Path(model).resolve()) if Path(model).exists() else model,
                       "checkpoint": _stat_identity(model), "base_model": base_model, "data": mf.sha256_path(data),
                       "config": to_dict(config), "batch_size": bs, "max_new_tokens": new_tokens,
                       "world_size": ctx.world_size, "video_dir": video_dir})
    out_dir = output_dir or os.path.join(DEFAULT_OUTPUT_ROOT, f"{config.task}-{Path(data).stem}-{token}")
    answers, runtime = _generate(model, base_model, config, task_obj, samples, ctx, out_dir, token, bs,
                                 new_tokens, seed, shard_timeout, progress)
    if answers is None:
        return None
    from .runner import score_answers

    result = score_answers(task_obj, samples, answers)
    manifest = mf.finish({
        "task": _task_section(config, task_obj),
        "source": {"kind": "model", "checkpoint": mf.checkpoint_fingerprint(model, base_model=base_model),
                   "config": config_source, "overrides": list(overrides)},
        "data": {**mf.data_fingerprint(data, samples), "video_dir": video_dir and str(Path(video_dir).resolve()),
                 "invalid_policy": config.dataset.invalid_policy},
        "prompts": mf.prompt_fingerprint(task_obj, samples),
        "frame_sampling": mf.frame_sampling(config.video),
        "code": mf.code_fingerprint(task_obj),
        "packages": mf.package_versions(),
        "seed": seed,
        "generation": {"greedy": True, "do_sample": False, "max_new_tokens": new_tokens, "batch_size": bs,
                       "world_size": ctx.world_size, "backend": config.model.backend},
        "runtime": runtime,
    })
    return _finish((result, manifest), task_obj, samples, by, bins, out_dir, plots_dir, data)


def _stored(task: Any, config: Any, samples: list[Any], data: str, video_dir: str | None,
            overrides: Sequence[str]) -> tuple[EvalResult, dict[str, Any]]:
    result = score_stored_predictions(task, samples, path=data)
    manifest = mf.finish({
        "task": _task_section(config, task),
        "source": {"kind": "stored_predictions", "field": "pred", "overrides": list(overrides)},
        "data": {**mf.data_fingerprint(data, samples), "video_dir": video_dir and str(Path(video_dir).resolve()),
                 "invalid_policy": config.dataset.invalid_policy},
        "prompts": None,  # no model, no prompts
        "frame_sampling": None,
        "code": mf.code_fingerprint(task),
        "packages": mf.package_versions(),
        "seed": None,
        "generation": None,
        "runtime": None,
    })
    return result, manifest


def _generate(model_path: str, base_model: str | None, config: Any, task: Any, samples: list[Any], ctx: DistContext, out_dir: str,
              token: str, batch_size: int, max_new_tokens: int, seed: int, timeout: float,
              progress: bool) -> tuple[list[str] | None, dict[str, str]]:
    from ..data.sample_frames import make_cache
    from .distributed import gather_answers, init_from_env, shard, shutdown
    from .loading import build_backend, device_map_for, load_model, runtime_info
    from .runner import generate_answers

    _seed_everything(seed)
    backend = build_backend(config)
    started = init_from_env(ctx)
    try:
        model, processor = load_model(backend, model_path, config, device_map=device_map_for(ctx.local_rank),
                                      base_model=base_model)
        mine = shard(samples, ctx.rank, ctx.world_size)
        desc = "evaluating" if not ctx.distributed else f"evaluating (rank {ctx.rank} of {ctx.world_size})"
        texts = generate_answers(model, processor, backend, task, [s for _, s in mine], config.video,
                                 batch_size=batch_size, max_new_tokens=max_new_tokens,
                                 cache=make_cache(config.video), progress=progress and ctx.is_main, desc=desc,
                                 seed=seed)
        runtime = runtime_info(model)
        if not ctx.distributed:
            return texts, runtime
        records = [(i, s.id, t) for (i, s), t in zip(mine, texts, strict=True)]
        answers = gather_answers(out_dir, token, ctx, records, [s.id for s in samples], timeout=timeout)
        return answers, runtime
    finally:
        shutdown(started)


def _finish(scored: tuple[EvalResult, dict[str, Any]], task: Any, samples: list[Any], by: Sequence[str],
            bins: int, output_dir: str | None, plots_dir: str | None, data: str) -> EvalOutcome:
    result, manifest = scored
    out_dir = output_dir or os.path.join(DEFAULT_OUTPUT_ROOT, f"{manifest['task']['name']}-{Path(data).stem}-"
                                                              f"{manifest['id'][:12]}")
    tables = {}
    for field in by:
        if not any(field in s.metadata for s in samples):
            log.warning("no sample has the metadata field %r; its breakdown is one '(missing)' group", field)
        tables[field] = breakdown(task, samples, result, field, bins)
    from .tables import task_tables

    extra = task_tables(task, result, samples)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_predictions(Path(out_dir) / "predictions.jsonl", samples, result)
    summary = {"task": manifest["task"]["name"], "manifest_id": manifest["id"], "metrics": result.metrics,
               "by": tables, **({"tables": extra} if extra else {})}
    atomic_write_text(Path(out_dir) / "metrics.json", json.dumps(summary, indent=2, default=float) + "\n")
    mf.write_manifest(Path(out_dir) / "manifest.json", manifest)
    plots: list[str] = []
    if plots_dir:
        plots = _plots(samples, result, plots_dir, extra)
    return EvalOutcome(result.metrics, tables, str(out_dir), manifest, result, list(samples), plots, extra)


def _plots(samples: list[Any], result: EvalResult, plots_dir: str, extra: dict[str, Any]) -> list[str]:
    from .tables import plot_table

    drawn = [plot_table(name, table, Path(plots_dir) / f"{name}.png") for name, table in extra.items()]
    if not result.predictions or "iou" not in result.predictions[0].scores:
        if not drawn:
            log.warning("--plots draws temporal-grounding timelines (per-sample 'iou') and the task's tables; "
                        "this task has neither")
        return drawn
    from ..visualize.timeline import eval_plots

    return drawn + eval_plots(samples, result, plots_dir)


def format_report(outcome: EvalOutcome) -> str:
    """The table ``vtg eval`` prints."""
    keys = list(outcome.metrics)
    widths = [max(10, len(k) + 2) for k in keys]

    def row(name: str, m: dict[str, float]) -> str:
        return f"{name:<28}" + "".join(f"{m.get(k, float('nan')):>{w}.3f}" if k != "num_samples"
                                       else f"{int(m.get(k, 0)):>{w}d}" for k, w in zip(keys, widths, strict=True))

    lines = [f"{'':<28}" + "".join(f"{k:>{w}}" for k, w in zip(keys, widths, strict=True)),
             row("all", outcome.metrics)]
    for field, table in outcome.breakdowns.items():
        how = " (quantile bins)" if table.get("binning") == "quantile" else ""
        lines.append(f"by {field}{how}:")
        for group, m in table["groups"].items():
            lines.append(row(f"  {group}", m))
    if "R1@0.5" in outcome.metrics:
        lines.append("(R1@k and mIoU in %, parse_failure_rate a fraction)")
    from .tables import format_table

    lines.extend(format_table(name, table) for name, table in outcome.tables.items())
    lines.append(f"output:    {outcome.output_dir}  (metrics.json, predictions.jsonl, manifest.json; "
                 f"manifest id {outcome.manifest['id']})")
    if outcome.plots:
        lines.append(f"plots:     {os.path.dirname(outcome.plots[0])}  ({len(outcome.plots)} files)")
    return "\n".join(lines)
