"""Entry point of the ``vtg`` command: the root group, error handling and plugin commands.

``vtg --help`` and ``vtg plugins`` must not import torch, transformers, trl or decord: commands
that need them import inside their bodies.
"""

from __future__ import annotations

import logging
import sys

import click

from .. import __version__
from ..errors import VtgError


class _VtgGroup(click.Group):
    """Prints a :class:`VtgError` as one clean line (exit 2) instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VtgError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            ctx.exit(getattr(exc, "exit_code", 2))


@click.group(cls=_VtgGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vtg")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Fine-tune video language models on video understanding tasks.

    \b
    Start with:  vtg train --task temporal_grounding     (a tiny offline demo run)
    See what is installed:  vtg plugins --all, vtg list
    """
    level = logging.WARNING - 10 * min(verbose, 2) if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _register_builtin_commands() -> None:
    from . import listing, validate

    listing.register(cli)
    validate.register(cli)
    from . import train

    train.register(cli)
    from . import eval as eval_cmd
    from . import export, predict

    eval_cmd.register(cli)
    predict.register(cli)
    export.register(cli)
    try:
        from . import doctor
    except ImportError:  # pragma: no cover - written alongside; absent only mid-change
        return
    doctor.register(cli)


def _register_plugin_commands() -> None:
    from ..plugins import call_hook_isolated

    try:
        call_hook_isolated("vtg_register_commands", cli=cli)
    except VtgError as exc:  # strict mode: a broken plugin stops here, loudly
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(2)


_register_builtin_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        _register_plugin_commands()
    except VtgError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(2)
    cli.main(args=argv, prog_name="vtg")


if __name__ == "__main__":  # pragma: no cover
    main()
