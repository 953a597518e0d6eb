"""``vtg plugins`` and ``vtg list``: what is installed and what each name means."""

from __future__ import annotations

import json
import sys

import click

from ..errors import PluginError
from ..records import BackendSpec

KINDS = ("task", "reward", "backend", "sampler")


def _registry():
    from ..plugins import get_registry

    return get_registry()


def plugins_command(show_all: bool, as_json: bool) -> None:
    registry = _registry()
    infos = [p for p in registry.plugins if show_all or not p.builtin]
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in infos], indent=2))
    elif not infos:
        click.echo("No plugins installed. `vtg plugins --all` includes the built-ins.")
    else:
        rows = []
        for p in infos:
            what = "; ".join(f"{kind}s: {', '.join(names)}" for kind, names in sorted(p.registers.items()))
            rows.append((p.name, p.version, p.status, what or "-", p.distribution))
        widths = [max(len(r[i]) for r in [("PLUGIN", "VERSION", "STATUS", "REGISTERS", "DIST"), *rows]) for i in range(5)]
        header = ("PLUGIN", "VERSION", "STATUS", "REGISTERS", "DIST")
        for row in [header, *rows]:
            click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        for p in infos:
            if p.error:
                click.secho(f"{p.name}: {p.status}: {p.error}", fg="yellow" if p.status == "disabled" else "red")
    if registry.strict and any(p.status in ("error", "conflict") for p in registry.plugins):
        sys.exit(1)


def list_command(kind: str | None, as_json: bool) -> None:
    registry = _registry()
    kinds = [kind] if kind else list(KINDS)
    out = []
    for k in kinds:
        for name, spec in registry.all(k).items():
            row = {"kind": k, "name": name, "description": spec.description,
                   "plugin": registry.provider(k, name).name}
            if isinstance(spec, BackendSpec):
                usable, reason = spec.usable()
                row["usable"] = usable
                row["reason"] = reason
            if hasattr(spec, "options") and spec.options:
                row["options"] = dict(spec.options)
            out.append(row)
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    for k in kinds:
        rows = [r for r in out if r["kind"] == k]
        click.secho(f"{k}s:", bold=True)
        if not rows:
            click.echo("  (none)")
        width = max((len(r["name"]) for r in rows), default=0)
        for r in rows:
            extra = ""
            if "usable" in r and not r["usable"]:
                extra = f"  [not usable here: {r['reason']}]"
            if "options" in r:
                extra += "  options: " + ", ".join(f"{key}={val!r}" for key, val in r["options"].items())
            click.echo(f"  {r['name'].ljust(width)}  {r['description']}{extra}")


def register(cli: click.Group) -> None:
    @cli.command("plugins")
    @click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def plugins(show_all: bool, as_json: bool) -> None:
        """List installed plugins: version, status, what each registers."""
        plugins_command(show_all, as_json)

    @cli.command("list")
    @click.argument("kind", required=False, type=click.Choice([f"{k}s" for k in KINDS] + list(KINDS)))
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def list_(kind: str | None, as_json: bool) -> None:
        """List what --task, rewards:, --backend and samplers accept, with descriptions."""
        list_command(kind.rstrip("s") if kind else None, as_json)

    for k in KINDS:
        def _make(kind: str):
            @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
            def command(as_json: bool) -> None:
                list_command(kind, as_json)

            command.__doc__ = f"List the {kind}s that are available (same as `vtg list {kind}s`)."
            return command

        cli.command(f"{k}s")(_make(k))


__all__ = ["PluginError", "register"]
