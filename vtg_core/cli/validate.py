"""``vtg validate``: check an annotation file (and optionally its videos) before a run."""

from __future__ import annotations

import json

import click


def register(cli: click.Group) -> None:
    @cli.command("validate")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--task", "task_name", default="temporal_grounding", show_default=True,
                  help="Task whose annotation schema to check against (`vtg tasks` lists them).")
    @click.option("--video-dir", type=click.Path(file_okay=False), default=None,
                  help="Directory that relative `video` paths resolve against.")
    @click.option("--check-videos", is_flag=True,
                  help="Also open every video and check it covers the annotated timestamps.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
    def validate(file: str, task_name: str, video_dir: str | None, check_videos: bool, as_json: bool) -> None:
        """Check FILE against a task's schema; print a summary and every problem with its line."""
        from ..data.validate import validate_file
        from ..plugins import get_registry

        spec = get_registry().get("task", task_name)
        task = spec.load()()
        report = validate_file(file, task=task, video_dir=video_dir, check_videos=check_videos)
        if as_json:
            click.echo(json.dumps(report.to_dict(), indent=2, default=str))
        else:
            click.echo(report.format())
        if report.num_invalid:
            raise SystemExit(1)
