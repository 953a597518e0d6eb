"""``vtg robot-vqa``: generate a VQA data set from trajectories, make synthetic ones, evaluate a model.

Option names follow seed 004's scripts (``--num_samples``, ``--output_path``...); the dashed forms
(``--num-samples``) work too. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
import os

import click


@click.group(name="robot-vqa")
def robot_vqa() -> None:
    """Robot progress and preference VQA (RFM): generate data sets, evaluate models."""


@robot_vqa.command(name="generate")
@click.option("--input", "--trajectories", "input_path", required=True,
              help="Trajectories: a JSONL index (task, frames=.npz path, data_source, quality_label) "
                   "or a Hugging Face dataset saved to disk.")
@click.option("--output_path", "--output-path", required=True, help="Folder for the generated dataset.")
@click.option("--num_samples", "--num-samples", type=int, default=10000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same data set, byte for byte.")
@click.option("--num_workers", "--num-workers", type=int, default=8, show_default=True,
              help="Parallel workers; -1 = all cores. The output does not depend on it.")
@click.option("--save_batch_size", "--save-batch-size", type=int, default=10000, show_default=True,
              help="Write every N samples to disk (memory stays flat); -1 = all at once.")
@click.option("--max_frames", "--max-frames", type=int, default=None, help="Frames per clip (default 16).")
@click.option("--sample_type_ratio", "--sample-type-ratio", default=None,
              help="[preference, progress, similarity], e.g. [0.7,0.3,0.0].")
@click.option("--eval_mode", "--eval-mode", is_flag=True,
              help="Real quality differences only (quality-label pairs, forward clips), no augmentation.")
@click.option("--npz_root", "--npz-root", default=None, help="Where relative npz paths resolve (default: the index's folder).")
@click.option("--config_overrides", "--config-overrides", "overrides", multiple=True,
              help="KEY=VALUE (data.max_frames=16, data.sample_type_ratio=[0.7,0.3,0.0]); repeatable.")
@click.argument("more_overrides", nargs=-1)
def generate_command(input_path: str, output_path: str, num_samples: int, seed: int, num_workers: int,
                     save_batch_size: int, max_frames: int | None, sample_type_ratio: str | None, eval_mode: bool,
                     npz_root: str | None, overrides: tuple[str, ...], more_overrides: tuple[str, ...]) -> None:
    """Generate a preference / progress VQA data set (paths and frame indices, never pixels).

    Overrides may also follow the options, as in seed 004:
    `--config_overrides data.max_frames=16 data.sample_type_ratio=[0.7,0.3,0.0]`.
    """
    from vtg_core.errors import VtgError

    from .generate import GenerationConfig, generate_dataset

    try:
        config = GenerationConfig(num_samples=num_samples, seed=seed, eval_mode=eval_mode)
        sets = list(overrides) + list(more_overrides)
        if max_frames is not None:
            sets.append(f"max_frames={max_frames}")
        if sample_type_ratio is not None:
            sets.append(f"sample_type_ratio={sample_type_ratio}")
        config = config.with_overrides(sets)
        record = generate_dataset(input_path, output_path, config, num_workers=num_workers,
                                  save_batch_size=save_batch_size, npz_root=npz_root)
    except VtgError as exc:
        raise click.ClickException(str(exc)) from None
    types = ", ".join(f"{n} {t}" for t, n in record["sample_types"].items() if n)
    click.echo(f"wrote {config.num_samples} samples ({types}) to {output_path}")
    click.echo(f"strategies: {json.dumps(record['strategies'])}")
    click.echo(f"generation config: {os.path.join(output_path, 'generation_config.json')}")


@robot_vqa.command(name="synth")
@click.option("--output_dir", "--output-dir", required=True, help="Folder for the npz files and trajectories.jsonl.")
@click.option("--num_trajectories", "--num-trajectories", type=int, default=12, show_default=True)
@click.option("--num_frames", "--num-frames", type=int, default=16, show_default=True)
@click.option("--size", type=int, default=64, show_default=True, help="Frame height and width in pixels.")
@click.option("--seed", type=int, default=0, show_default=True)
def synth_command(output_dir: str, num_trajectories: int, num_frames: int, size: int, seed: int) -> None:
    """Write synthetic trajectories (a block pushed to a goal) and their JSONL index."""
    from .synthetic import make_trajectories

    try:
        out = make_trajectories(output_dir, num_trajectories=num_trajectories, num_frames=num_frames, size=size,
                                seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {num_trajectories} trajectories; index: {out['index']}")


@robot_vqa.command(name="evaluate")
@click.option("--model_path", "--model-path", required=True, help="A vtg checkpoint (or a model id / folder).")
@click.option("--dataset_path", "--dataset-path", required=True, help="A data set from `vtg robot-vqa generate`.")
@click.option("--output_path", "--output-path", default="./eval_results.json", show_default=True)
@click.option("--batch_size", "--batch-size", type=int, default=1, show_default=True)
@click.option("--max_new_tokens", "--max-new-tokens", type=int, default=10, show_default=True)
@click.option("--max_samples", "--max-samples", type=int, default=None, help="Evaluate the first N samples only.")
@click.option("--save_predictions", "--save-predictions", is_flag=True,
              help="Also write each prediction (JSONL next to the results).")
@click.option("--use_multi_image", "--use-multi-image", is_flag=True, default=None,
              help="Frames as images (default: as the checkpoint was trained).")
@click.option("--set", "sets", multiple=True, help="Config override KEY=VALUE on the checkpoint's config.")
@click.option("--no-progress", is_flag=True)
def evaluate_command(model_path: str, dataset_path: str, output_path: str, batch_size: int, max_new_tokens: int,
                     max_samples: int | None, save_predictions: bool, use_multi_image: bool | None,
                     sets: tuple[str, ...], no_progress: bool) -> None:
    """Preference accuracy, progress MAE / RMSE, counts per type and parse failures (seed 004's report)."""
    from vtg_core.errors import VtgError

    from .evaluate import evaluate_dataset

    try:
        report = evaluate_dataset(model_path, dataset_path, output_path, batch_size=batch_size,
                                  max_new_tokens=max_new_tokens, max_samples=max_samples,
                                  save_predictions=save_predictions, use_multi_image=use_multi_image,
                                  overrides=list(sets), progress=not no_progress)
    except VtgError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({k: report[k] for k in ("total_samples", "sample_types", "preference", "progress",
                                                  "parse_failures")}, indent=2))
    click.echo(f"results: {output_path}")
    if save_predictions:
        click.echo(f"predictions: {report['predictions_path']}")
