"""What this plugin registers. Kept light: records only, the reward code is imported on use."""

from __future__ import annotations

import click

import vtg_core
from vtg_core import RewardSpec


@vtg_core.hookimpl
def vtg_register_rewards():
    return [
        RewardSpec(
            name="brevity",
            description="1.0 for answers up to max_chars characters, falling linearly to 0 at twice that.",
            factory="vtg_example_brevity.reward:brevity",
            options={"max_chars": 64},
        )
    ]


@vtg_core.hookimpl
def vtg_register_commands(cli):
    @cli.command(name="brevity")
    @click.argument("text")
    @click.option("--max-chars", default=64, show_default=True)
    def brevity_command(text: str, max_chars: int) -> None:
        """Score TEXT with the brevity reward."""
        from .reward import brevity

        click.echo(f"{brevity(max_chars=max_chars)(prompts=[''], completions=[text])[0]:.3f}")
