"""``vtg eval``: score a checkpoint (or a file of stored predictions) on an annotation file."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    @cli.command("eval")
    @click.option("--task", default=None,
                  help="Task name (`vtg list`). Default: the checkpoint's own task (temporal_grounding without one).")
    @click.option("--model", type=str, default=None,
                  help="Checkpoint folder (or a base model id/path). Omit to score the rows' 'pred' fields.")
    @click.option("--base-model", default=None,
                  help="The base model of a LoRA checkpoint, when it moved from where training found it.")
    @click.option("--data", required=True, type=click.Path(),
                  help="Annotation file (JSONL or JSON), or a data set folder for tasks that read one (robot_vqa).")
    @click.option("--video-dir", type=click.Path(file_okay=False), default=None,
                  help="Where relative video paths resolve.")
    @click.option("--batch-size", type=click.IntRange(min=1), default=None,
                  help="Samples per generation batch (default: validation.batch_size of the checkpoint's config).")
    @click.option("--by", "by", multiple=True, metavar="FIELD",
                  help="Also report metrics per value of this metadata field, e.g. --by difficulty (repeatable). "
                       "Numeric fields with many values are cut into --bins quantile bins.")
    @click.option("--bins", type=click.IntRange(min=1), default=4, show_default=True,
                  help="Quantile bins for numeric --by fields.")
    @click.option("--output-dir", type=click.Path(file_okay=False), default=None,
                  help="Where metrics.json, predictions.jsonl and manifest.json go "
                       "(default: eval_outputs/<task>-<data>-<hash>).")
    @click.option("--plots", "plots_dir", type=click.Path(file_okay=False), default=None,
                  help="Draw timelines of the best / median / worst samples and an IoU histogram here "
                       "(grounding tasks), and the task's tables (e.g. a confusion matrix) as PNGs.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override a key of the checkpoint's saved config, e.g. --set video.max_frames=16.")
    @click.option("--from-pred", is_flag=True, default=None,
                  help="Score the rows' stored 'pred' [start, end] fields instead of running a model.")
    @click.option("--max-new-tokens", type=click.IntRange(min=1), default=None,
                  help="Generation length (default 32; the GRPO completion length for reasoning tasks).")
    @click.option("--shard-timeout", type=float, default=1800.0, show_default=True,
                  help="Multi-process runs: how long rank 0 waits for the other ranks' answers (seconds).")
    @click.option("--no-progress", is_flag=True, help="No progress bar.")
    def eval_command(task: str | None, model: str | None, base_model: str | None, data: str, video_dir: str | None, batch_size: int | None,
                     by: tuple[str, ...], bins: int, output_dir: str | None, plots_dir: str | None,
                     overrides: tuple[str, ...], from_pred: bool | None, max_new_tokens: int | None,
                     shard_timeout: float, no_progress: bool) -> None:
        """Evaluate a checkpoint on an annotation file with the task's own parser and metrics.

        \b
        vtg eval --model runs/.../checkpoints/final --data val.jsonl --video-dir videos --by difficulty
        vtg eval --data preds.jsonl --from-pred           # score stored 'pred' fields, no model
        torchrun --nproc_per_node 4 -m vtg_core.cli.main eval --model CKPT --data val.jsonl
        """
        from ..evaluate.pipeline import format_report, run_evaluation

        outcome = run_evaluation(data, model=model, base_model=base_model, task=task, video_dir=video_dir, batch_size=batch_size, by=by,
                                 bins=bins, output_dir=output_dir, plots_dir=plots_dir, overrides=overrides,
                                 from_pred=from_pred, max_new_tokens=max_new_tokens, shard_timeout=shard_timeout,
                                 progress=not no_progress)
        if outcome is not None:  # ranks other than 0 only generate their shard
            click.echo(format_report(outcome))
