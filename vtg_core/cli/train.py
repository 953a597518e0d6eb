"""``vtg train``: SFT or GRPO for any registered task; with no data and no model, the offline demo."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    @cli.command("train")
    @click.option("--task", default="temporal_grounding", show_default=True, help="Task name (`vtg tasks`).")
    @click.option("--method", type=click.Choice(["sft", "grpo"]), default="sft", show_default=True,
                  help="Supervised fine-tuning or GRPO.")
    @click.option("-c", "--config", "configs", multiple=True, type=click.Path(dir_okay=False, exists=True),
                  help="YAML config file(s), merged in order over the packaged defaults.")
    @click.option("--data", type=click.Path(), help="Training annotations (dataset.annotation_file); a data set "
                  "folder for tasks that read one (robot_vqa).")
    @click.option("--val-data", type=click.Path(), help="Held-out annotations (validation.annotation_file).")
    @click.option("--video-dir", type=click.Path(file_okay=False), help="Where relative video paths resolve.")
    @click.option("--model", help="Base model: Hub id or local path (model.name_or_path).")
    @click.option("--backend", help="Model backend (model.backend; `vtg backends`).")
    @click.option("--quantization", type=click.Choice(["none", "4bit", "8bit"]), is_flag=False, flag_value="4bit",
                  default=None, help="Quantized base weights, QLoRA (model.quantization; alone: 4bit). "
                                     "Needs a backend that can: --backend unsloth.")
    @click.option("--sft-checkpoint", "--model-path", "sft_checkpoint", type=click.Path(file_okay=False),
                  help="GRPO: start from this SFT checkpoint.")
    @click.option("--output-dir", type=click.Path(file_okay=False), help="Parent of the run directory.")
    @click.option("--deepspeed", help="DeepSpeed config: a path, or zero2 / zero3_offload.")
    @click.option("--nproc-per-node", "nproc_per_node", type=click.IntRange(min=1), default=None,
                  help="Start this many training processes on this machine (through torchrun).")
    @click.option("--max-steps", type=int, help="Stop after this many optimizer steps.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override one config key, e.g. --set training.learning_rate=1e-5 (repeatable).")
    @click.option("--demo/--no-demo", default=None,
                  help="Tiny offline model + generated clips. Default: on when no data and no model are given.")
    @click.option("--no-eval", is_flag=True, help="Skip the held-out evaluation after training.")
    @click.option("--resume", is_flag=False, flag_value="latest", default=None, metavar="[RUN_DIR]",
                  help="Continue a stopped run from its newest complete checkpoint (alone: the newest run "
                       "of this task and method under the output dir).")
    def train(task: str, method: str, configs: tuple[str, ...], data: str | None, val_data: str | None,
              video_dir: str | None, model: str | None, backend: str | None, quantization: str | None,
              sft_checkpoint: str | None,
              output_dir: str | None, deepspeed: str | None, max_steps: int | None, overrides: tuple[str, ...],
              demo: bool | None, no_eval: bool, resume: str | None, nproc_per_node: int | None) -> None:
        """Train a video language model on TASK with SFT or GRPO.

        \b
        vtg train --task temporal_grounding            # offline demo: tiny model, generated clips
        vtg train --data train.jsonl --video-dir videos --model Qwen/Qwen3-VL-4B-Instruct
        vtg train --method grpo --sft-checkpoint outputs/sft/.../final --data train.jsonl
        vtg train --nproc-per-node 2 --deepspeed zero2 --data train.jsonl --model ...   # 2 processes
        """
        if nproc_per_node is not None and nproc_per_node > 1:
            import sys

            from ..train.launch import relaunch

            argv = sys.argv[1:]
            if "train" not in argv:
                raise click.UsageError("--nproc-per-node works from the vtg command line; otherwise start "
                                       "torchrun --nproc_per_node N -m vtg_core.cli.main train ...")
            sys.exit(relaunch(nproc_per_node, argv[argv.index("train") + 1:]))
        from ..config import default_config, load_config
        from ..config.defaults import default_config_paths, drop_packaged_rewards, resolve_deepspeed_config

        stage = "rl" if method == "grpo" else "sft"
        sets = [f"task={task}"]
        if data:
            sets.append(f"dataset.annotation_file={data}")
        if val_data:
            sets.append(f"validation.annotation_file={val_data}")
        if video_dir:
            sets.append(f"dataset.video_dir={video_dir}")
        if model:
            sets.append(f"model.name_or_path={model}")
        if backend:
            sets.append(f"model.backend={backend}")
        if quantization:
            sets.append(f"model.quantization={quantization}")
        if max_steps is not None:
            sets.append(f"training.max_steps={max_steps}")
        if deepspeed:
            sets.append(f"deepspeed={resolve_deepspeed_config(deepspeed)}")
        sets.extend(overrides)
        if configs:
            config = load_config([*default_config_paths(stage), *configs], sets)
        else:
            config = default_config(stage, sets)
        config = drop_packaged_rewards(config, configs, overrides)
        from ..config.task_defaults import apply_task_defaults

        config = apply_task_defaults(config, configs, sets)  # the task's own defaults, under the user's
        if data and not val_data:
            config = _holdout_when_no_val_file(config)
        if resume:
            demo = False  # the run's saved config.yaml says everything; only --set / --max-steps apply on top
            sets = [*([f"training.max_steps={max_steps}"] if max_steps is not None else []), *overrides]
        if demo is None:
            demo = not (configs or data or model or sft_checkpoint)
        if demo:
            click.secho("No data and no model given: running the offline demo (tiny Qwen3-VL, generated clips).",
                        fg="cyan", err=True)

        from ..train.run import format_report
        from ..train.run import train as run_train

        result = run_train(config, method=method, demo=demo, output_dir=output_dir,
                           sft_checkpoint=sft_checkpoint, evaluate_after=not no_eval, user_overrides=sets,
                           resume=resume)
        from ..train.distributed import is_main_process

        if is_main_process():
            click.echo(format_report(result))


def _holdout_when_no_val_file(config):
    """``--data`` without ``--val-data``: a packaged default validation path that does not exist here
    means the user has no validation file, so hold out part of ``--data`` instead of failing on it."""
    import os

    import attrs

    from ..config.schema import ValidationConfig

    path = config.validation.annotation_file
    if path is None or path != ValidationConfig().annotation_file or os.path.exists(path):
        return config
    fraction = config.validation.split_fraction if config.validation.split_fraction > 0 else 0.1
    click.secho(f"No --val-data and no {path}: holding out {fraction:.0%} of --data for evaluation "
                "(--val-data FILE or --set validation.split_fraction=F to choose).", fg="cyan", err=True)
    validation = attrs.evolve(config.validation, annotation_file=None, split_fraction=fraction)
    return attrs.evolve(config, validation=validation)
