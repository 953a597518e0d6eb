"""``vtg doctor``: versions against the tested ranges, GPU, decoders, and smoke runs per backend.

Only click is imported here, so ``vtg --help`` stays free of torch; the checks live in
:mod:`vtg_core.doctor` and import what they need when they run.
"""

from __future__ import annotations

import json

import click


def register(cli: click.Group) -> None:
    @cli.command("doctor")
    @click.option("--no-smoke", is_flag=True, help="Skip the SFT / GRPO smoke runs (seconds instead of ~20 s).")
    @click.option("--backend", "backends", multiple=True, metavar="NAME",
                  help="Smoke-test only this backend (repeatable). Default: every registered backend.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable report (failed runs keep their traceback).")
    def doctor(no_smoke: bool, backends: tuple[str, ...], as_json: bool) -> None:
        """Check this machine's stack: versions, GPU, video decoders, and a two-step SFT and GRPO
        run of a tiny offline model through every installed backend.

        Exits 1 when a required package is missing, PyAV cannot decode, or a smoke run fails.
        """
        from .. import doctor as doc

        checks = []
        if not as_json:
            click.echo(doc.report_header())
        section = None
        # Lines are printed as each check finishes: the smoke runs take a while, the rest not.
        for check in doc.run_checks(smoke=not no_smoke, backends=list(backends) or None):
            checks.append(check)
            if as_json:
                continue
            if check.section != section:
                section = check.section
                click.secho(doc.section_title(section), bold=True)
            line = doc.format_check(check)
            if check.problem:
                click.secho(line, fg="red")
            elif check.verdict in ("untested", "FAILED"):
                click.secho(line, fg="yellow")
            else:
                click.echo(line)
        if as_json:
            click.echo(json.dumps(doc.to_json(checks), indent=2, default=str))
        else:
            click.echo(doc.format_summary(checks))
        if any(c.problem for c in checks):
            raise SystemExit(1)
