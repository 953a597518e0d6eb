"""``vtg predict``: ask a checkpoint about one video (optionally drawn), or every row of a file (a submission)."""

from __future__ import annotations

import json

import click


def register(cli: click.Group) -> None:
    @cli.command("predict")
    @click.option("--model", required=True, help="Checkpoint folder (or an exported / base model).")
    @click.option("--base-model", default=None,
                  help="The base model of a LoRA checkpoint, when it moved from where training found it.")
    @click.option("--video", type=click.Path(dir_okay=False), default=None, help="The video file (one-video mode).")
    @click.option("--query", default=None, help='What to find, e.g. "the person opens the door" (with --video).')
    @click.option("--data", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="Predict every row of this annotation file (read by the task's loader) instead.")
    @click.option("--video-dir", type=click.Path(file_okay=False), default=None,
                  help="With --data: where relative video paths resolve.")
    @click.option("--submission", type=click.Path(dir_okay=False), default=None,
                  help="With --data: write the complete id,answer CSV here (+ .unparsed.json, .predictions.jsonl).")
    @click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
                  help="Samples per generation batch.")
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
    def predict(model: str, base_model: str | None, video: str | None, query: str | None, data: str | None,
                video_dir: str | None, submission: str | None, batch_size: int, task: str | None, output: str | None,
                ground_truth: tuple[float, float] | None, video_start: float | None, video_end: float | None,
                overrides: tuple[str, ...], max_new_tokens: int | None, device: str | None, as_json: bool) -> None:
        """Print the start and end (seconds) of QUERY in VIDEO as the model answers; or, with --data,
        answer every row of a file and write a submission CSV.

        \b
        vtg predict --model runs/.../checkpoints/final --video clip.mp4 --query "the red square appears"
        vtg predict --model CKPT --video clip.mp4 --query "..." --output viz.png --ground-truth 2.0 4.5
        vtg predict --model CKPT --task dashcam_mcq --data public_test.json --submission out.csv
        Exit status 1 when the one video's answer holds no segment (the raw answer is printed). With
        --data every id gets a row; answers that did not parse get the task's fallback, and their
        count and ids are printed and stored in <out>.unparsed.json.
        """
        if data is not None:
            if video or query or output:
                raise click.UsageError("--data predicts a whole file: leave out --video, --query and --output")
            if not submission:
                raise click.UsageError("--data needs --submission FILE.csv (where the id,answer rows go)")
        elif not (video and query):
            raise click.UsageError("give --video and --query (one video), or --data and --submission (a file)")
        elif video_dir or submission:
            raise click.UsageError("--video-dir and --submission go with --data")
        from ..predict.inference import VideoTemporalInference

        engine = VideoTemporalInference(model, task=task, overrides=overrides, device=device,
                                        max_new_tokens=max_new_tokens, base_model=base_model, batch_size=batch_size)
        if data is not None:
            _submit(engine, data, video_dir, submission)
            return
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


def _submit(engine: object, data: str, video_dir: str | None, submission: str) -> None:
    from ..predict.batch import predict_file, write_submission

    samples, texts = predict_file(engine, data, video_dir=video_dir)
    out = write_submission(engine.task, samples, texts, submission)
    click.echo(f"wrote {out.num_rows} rows to {out.path} (raw answers: {out.predictions})")
    if out.unparsed:
        click.secho(f"{len(out.unparsed)} of {out.num_rows} answers did not parse and got the fallback answer "
                    f"{sorted({r['written'] for r in out.unparsed})}: {', '.join(out.unparsed_ids)} "
                    f"(raw answers in {out.sidecar})", fg="yellow", err=True)
    else:
        click.echo(f"every answer parsed (recorded in {out.sidecar})")
