"""``vtg predict``: ask a checkpoint when something happens in one video; optionally draw it."""

from __future__ import annotations

import json

import click


def register(cli: click.Group) -> None:
    @cli.command("predict")
    @click.option("--model", required=True, help="Checkpoint folder (or an exported / base model).")
    @click.option("--base-model", default=None,
                  help="The base model of a LoRA checkpoint, when it moved from where training found it.")
    @click.option("--video", required=True, type=click.Path(dir_okay=False), help="The video file.")
    @click.option("--query", required=True, help='What to find, e.g. "the person opens the door".')
    @click.option("--task", default=None, help="Task (default: the checkpoint's own).")
    @click.option("--output", type=click.Path(dir_okay=False), default=None,
                  help="Also draw a timeline PNG of the prediction here.")
    @click.option("--ground-truth", nargs=2, type=float, default=None, metavar="START END",
                  help="A known segment to draw (and score) next to the prediction.")
    @click.option("--video-start", type=float, default=None, help="Trim: start of the window (seconds in the file).")
    @click.option("--video-end", type=float, default=None, help="Trim: end of the window (seconds in the file).")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override a key of the checkpoint's saved config, e.g. --set video.max_frames=16.")
    @click.option("--max-new-tokens", type=click.IntRange(min=1), default=None, help="Generation length.")
    @click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: the first GPU if any).")
    @click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
    def predict(model: str, base_model: str | None, video: str, query: str, task: str | None, output: str | None,
                ground_truth: tuple[float, float] | None, video_start: float | None, video_end: float | None,
                overrides: tuple[str, ...], max_new_tokens: int | None, device: str | None, as_json: bool) -> None:
        """Print the start and end (seconds) of QUERY in VIDEO as the model answers.

        \b
        vtg predict --model runs/.../checkpoints/final --video clip.mp4 --query "the red square appears"
        vtg predict --model CKPT --video clip.mp4 --query "..." --output viz.png --ground-truth 2.0 4.5
        Exit status 1 when the answer holds no segment (the raw answer is printed).
        """
        from ..predict.inference import VideoTemporalInference

        engine = VideoTemporalInference(model, task=task, overrides=overrides, device=device,
                                        max_new_tokens=max_new_tokens, base_model=base_model)
        result = engine.predict(video_path=video, query=query, video_start=video_start, video_end=video_end)
        if output:
            from ..visualize.timeline import visualize_temporal_grounding

            result["plot"] = visualize_temporal_grounding(
                video, predictions=[result], ground_truths=[ground_truth] if ground_truth else None,
                output_path=output, query=query, duration=result["duration"], video_start=video_start,
                video_end=video_end)
        if as_json:
            click.echo(json.dumps(result, indent=2, default=float))
        elif result["parsed"] and result["start_time"] is not None:
            click.echo(f"start: {result['start_time']:.2f} s")
            click.echo(f"end:   {result['end_time']:.2f} s")
            click.echo(f"raw:   {result['raw']!r}")
        elif result["parsed"]:
            click.echo(f"answer: {result.get('answer')!r}")
            click.echo(f"raw:    {result['raw']!r}")
        else:
            click.echo(f"no segment in the model's answer: {result['error']}", err=True)
            click.echo(f"raw:   {result['raw']!r}")
        if output:
            click.echo(f"timeline: {result['plot']}")
        if not result["parsed"]:
            raise SystemExit(1)
