"""``vtg doctor``: version verdicts on made-up metadata, the report's shapes, and real smoke runs.

The version logic runs on fake requirement strings and a dict of "installed" versions, with
packaging and with the fallback comparator. The command is invoked on a fresh click group (as
``vtg_core.cli.main`` wires it). The smoke runs train the tiny model for real: they share the
per-process tiny model (``tiny_model_dir``), so they cost a few seconds each.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

import vtg_core
from vtg_core import doctor
from vtg_core.cli import doctor as doctor_cli
from vtg_core.records import BackendSpec

FAKE_REQUIREMENTS = [
    "av>=12.0",
    'torch>=2.9; extra == "train"',
    'trl<1.17,>=1.0; extra == "train"',
    'transformers<5.24,>=5.0; extra == "train"',
    'peft<0.22,>=0.17; extra == "train"',
    'decord>=0.6.0; platform_machine == "x86_64" and extra == "decord"',
    'matplotlib>=3.8; extra == "viz"',
]
FAKE_INSTALLED = {
    "av": "11.0.0",  # below the range
    "torch": "2.14.1+cpu",  # in range, with a local version label
    "trl": "1.17.0",  # above the range
    "transformers": "5.24.0.dev0",  # a pre-release of the first untested line
    "peft": None,  # required, not installed
    "decord": None,  # optional, not installed
    "deepspeed": None,  # not in the requirements at all
    "flash-attn": "2.8.3",  # not in the requirements, installed
}
PACKAGES = ("torch", "trl", "transformers", "peft", "av", "decord", "deepspeed", "flash-attn")


def _have_packaging() -> bool:
    try:
        import packaging.specifiers  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=["packaging", "fallback"])
def use_packaging(request) -> bool:
    if request.param == "packaging" and not _have_packaging():
        pytest.skip("packaging is not installed")
    return request.param == "packaging"


def _by_name(checks):
    return {c.name: c for c in checks}


def test_version_verdicts_on_fake_metadata(use_packaging):
    checks = _by_name(doctor.check_versions(FAKE_REQUIREMENTS, ">=3.11", packages=PACKAGES,
                                            installed=FAKE_INSTALLED, python_version="3.10.4",
                                            use_packaging=use_packaging))
    verdicts = {name: c.verdict for name, c in checks.items()}
    assert verdicts == {
        "python": "untested",
        "torch": "ok",
        "trl": "untested",
        "transformers": "untested",
        "peft": "missing",
        "av": "untested",
        "decord": "absent",
        "deepspeed": "absent",
        "flash-attn": "ok",
    }
    # Only a missing *required* package is a problem; untested versions are information.
    assert [name for name, c in checks.items() if c.problem] == ["peft"]
    assert "vtg-core[train]" in checks["peft"].detail
    assert checks["trl"].range == ">=1.0,<1.17"  # lower bound first, as people write ranges
    assert (checks["decord"].required, checks["deepspeed"].required, checks["torch"].required) == (False, False, True)
    assert checks["deepspeed"].range == "any"


def test_versions_inside_the_range_are_ok(use_packaging):
    installed = {"torch": "2.9.0", "trl": "1.16.2", "transformers": "5.23.0", "peft": "0.17", "av": "12.0",
                 "decord": "0.6.0"}
    checks = doctor.check_versions(FAKE_REQUIREMENTS, ">=3.11", packages=tuple(installed), installed=installed,
                                   python_version="3.11.7", use_packaging=use_packaging)
    assert {c.name: c.verdict for c in checks} == {name: "ok" for name in ("python", *installed)}


@pytest.mark.parametrize(("version", "specs", "inside"), [
    ("2.14.1", [(">=", "2.9")], True),
    ("2.8.9", [(">=", "2.9")], False),
    ("5.23.9", [(">=", "5.0"), ("<", "5.24")], True),
    ("5.24", [(">=", "5.0"), ("<", "5.24")], False),
    ("0.6", [(">=", "0.6.0")], True),  # 0.6 == 0.6.0
    ("1.4.2", [("~=", "1.4")], True),
    ("2.0", [("~=", "1.4")], False),
    ("3.11.7", [("==", "3.11.*")], True),
    ("3.12.0", [("==", "3.11.*")], False),
    ("1.0", [], True),
])
def test_range_comparison_agrees_with_and_without_packaging(version, specs, inside):
    assert doctor.version_in_range(version, specs, use_packaging=False) is inside
    if _have_packaging():
        assert doctor.version_in_range(version, specs, use_packaging=True) is inside


@pytest.mark.skipif(not _have_packaging(), reason="marker evaluation needs packaging")
def test_a_requirement_for_another_platform_is_not_needed_here():
    reqs = ['decord>=0.6.0; platform_machine == "no-such-machine" and extra == "decord"']
    (check,) = [c for c in doctor.check_versions(reqs, None, packages=("decord",), installed={"decord": None})
                if c.name == "decord"]
    assert (check.verdict, check.range, check.problem) == ("absent", "not needed on this platform", False)


def test_ranges_come_from_vtg_cores_own_requirements():
    """The doctor's ranges are pyproject's: the installed metadata and the checkout's file agree."""
    requirements, requires_python, source = doctor.vtg_requirements()
    assert requirements and requires_python, source
    from_file = doctor._source_requirements()
    if from_file is None:
        pytest.skip("not running from a source checkout")

    def table(reqs):
        return {(r.name, r.extra): set(r.specs) for r in map(doctor.parse_requirement, reqs)
                if r.extra != "all"}

    assert table(from_file[0]) == table(requirements), (
        "pyproject.toml and the installed vtg-core metadata differ: reinstall (pip install -e .)")
    trl = doctor.parse_requirement(next(r for r in requirements if r.startswith("trl")))
    assert (trl.extra, trl.range) == ("train", ">=1.0,<1.17")


def _cli() -> click.Group:
    @click.group()
    def cli() -> None:
        pass

    doctor_cli.register(cli)
    return cli


def test_json_report_shape_without_smoke_runs():
    result = CliRunner().invoke(_cli(), ["doctor", "--no-smoke", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"vtg_core", "ranges_from", "ok", "problems", "checks"}
    assert report["ok"] is True and report["problems"] == []
    assert report["vtg_core"] == vtg_core.__version__
    keys = {"section", "name", "verdict", "version", "range", "detail", "seconds", "required", "problem",
            "traceback"}
    assert all(set(c) == keys for c in report["checks"])
    sections = [c["section"] for c in report["checks"]]
    assert sections == sorted(sections, key=doctor.SECTIONS.index)  # grouped, in report order
    assert set(sections) == {"versions", "gpu", "decoders"}  # --no-smoke: no smoke section
    names = [c["name"] for c in report["checks"] if c["section"] == "versions"]
    assert names == ["python", *doctor.PACKAGES]
    used = next(c for c in report["checks"] if c["name"] == "used")
    assert used["verdict"] in ("decord", "pyav")


def test_no_smoke_is_fast_and_trains_nothing():
    """--no-smoke imports torch (to ask it about CUDA) but none of the training stack."""
    code = (
        "import sys, time, click\n"
        "from vtg_core.cli import doctor\n"
        "@click.group()\n"
        "def cli(): pass\n"
        "doctor.register(cli)\n"
        "start = time.perf_counter()\n"
        "try:\n    cli(['doctor', '--no-smoke'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('ELAPSED', time.perf_counter() - start)\n"
        "print('HEAVY', ','.join(m for m in ('transformers', 'trl', 'peft', 'datasets') if m in sys.modules))\n"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - start
    assert out.returncode == 0, out.stdout + out.stderr
    heavy = next(line for line in out.stdout.splitlines() if line.startswith("HEAVY"))
    assert heavy == "HEAVY ", heavy
    assert "smoke runs" not in out.stdout and "verdict: ok" in out.stdout
    assert wall < 30, f"vtg doctor --no-smoke took {wall:.1f} s"


def test_missing_required_package_fails_the_command(monkeypatch):
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda name: None if name == "trl" else real(name))
    result = CliRunner().invoke(_cli(), ["doctor", "--no-smoke"])
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("trl "))
    assert line.split()[1:4] == ["-", ">=1.0,<1.17", "missing"], line
    assert "verdict: 1 problem(s): trl missing" in result.output


def test_smoke_run_through_the_transformers_backend(grpo_steps_here, tmp_path):
    checks = list(doctor.check_smoke(tmp_path, backends=["transformers"]))
    assert [(c.name, c.verdict) for c in checks] == [
        ("setup", "ok"), ("transformers sft", "ok"), ("transformers grpo", "ok")], [c.detail for c in checks]
    assert all(c.seconds is not None and c.seconds > 0 for c in checks)
    assert not any(c.problem for c in checks)
    finals = sorted(p.parent.parent.name.split("-")[1] for p in (tmp_path / "runs").glob("*/checkpoints/final"))
    assert finals == ["grpo", "sft"]


def _broken_backend(**options):
    raise RuntimeError("the accelerator library is not initialised\n(second line of detail)")


_FAKE_BACKENDS = SimpleNamespace(
    vtg_register_backends=vtg_core.hookimpl(lambda: [
        BackendSpec(name="needs_gpu", description="test: never usable here", factory=_broken_backend,
                    check=lambda: (False, "needs a CUDA GPU")),
        BackendSpec(name="broken", description="test: fails when built", factory=_broken_backend),
    ]),
    __name__="fake_backends",
)


def test_failed_and_skipped_backends_are_one_line_each(tmp_path):
    from vtg_core.testing import fresh_registry

    registry = fresh_registry(("fake_backends", _FAKE_BACKENDS))
    checks = _by_name(doctor.check_smoke(tmp_path, backends=["needs_gpu", "broken", "nope"], registry=registry))
    assert checks["needs_gpu"].verdict == "skipped" and checks["needs_gpu"].detail == "skipped: needs a CUDA GPU"
    assert not checks["needs_gpu"].problem
    for method in ("sft", "grpo"):
        check = checks[f"broken {method}"]
        assert (check.verdict, check.problem) == ("FAILED", True)
        assert check.detail == "RuntimeError: the accelerator library is not initialised"
        assert "Traceback" in check.traceback
    assert checks["nope"].verdict == "FAILED" and "known:" in checks["nope"].detail
    line = doctor.format_check(checks["broken sft"])
    assert "\n" not in line and line.split()[2] == "FAILED"


def test_failed_smoke_run_fails_the_command(monkeypatch):
    from vtg_core.testing import fresh_registry

    fresh_registry(("fake_backends", _FAKE_BACKENDS))  # the process-wide registry the command reads
    result = CliRunner().invoke(_cli(), ["doctor", "--backend", "broken", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["problems"] == [
        "smoke: broken sft FAILED: RuntimeError: the accelerator library is not initialised",
        "smoke: broken grpo FAILED: RuntimeError: the accelerator library is not initialised",
    ]
