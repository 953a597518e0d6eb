"""Registration, `vtg list` / `vtg plugins`, and the usability check (no torch, no unsloth import)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from vtg_backend_unsloth import availability
from vtg_backend_unsloth.availability import gpu_available, unsloth_usable, version_conflicts


def test_installed_plugin_registers_the_unsloth_backend():
    from vtg_core.plugins import get_registry

    registry = get_registry()
    spec = registry.get("backend", "unsloth")
    assert spec.factory == "vtg_backend_unsloth.backend:UnslothBackend"
    assert registry.provider("backend", "unsloth").name == "backend_unsloth"
    assert "transformers" in registry.all("backend")  # the built-in stays


def test_vtg_list_shows_whether_it_is_usable_here():
    from vtg_core.cli.main import cli

    result = CliRunner().invoke(cli, ["list", "backends", "--json"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.output) if r["name"] == "unsloth")
    assert row["plugin"] == "backend_unsloth"
    assert row["usable"] == unsloth_usable()[0]
    if not row["usable"]:
        assert "--backend transformers" in row["reason"]
        text = CliRunner().invoke(cli, ["list", "backends"]).output
        assert "[not usable here:" in text and "--backend transformers" in text
    plugins = CliRunner().invoke(cli, ["plugins"]).output
    assert "backend_unsloth" in plugins and "backends: unsloth" in plugins


def test_listing_imports_neither_torch_nor_unsloth():
    code = ("import sys\nfrom vtg_core.cli.main import main\n"
            "try:\n    main(['list', 'backends'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY:' + ','.join(m for m in ('torch', 'unsloth', 'transformers', 'trl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("HEAVY:")]
    assert line == ["HEAVY:"], out.stdout + out.stderr


def test_missing_unsloth_says_how_to_install_and_the_fallback(monkeypatch):
    monkeypatch.setattr(availability.importlib.util, "find_spec", lambda name: None)
    ok, why = unsloth_usable()
    assert not ok
    assert "unsloth and unsloth_zoo not installed" in why
    assert "pip install 'vtg-backend-unsloth[unsloth]'" in why and "--backend transformers" in why


def test_no_gpu_is_a_clear_no(monkeypatch):
    monkeypatch.setattr(availability.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(availability, "version_conflicts", lambda: [])
    monkeypatch.setattr(availability, "_torch_version", lambda: "2.14.1")
    monkeypatch.setattr(availability, "_nvidia_capabilities", lambda: None)
    ok, why = unsloth_usable()
    assert not ok and "no NVIDIA GPU found" in why and why.endswith(availability.FALLBACK)


@pytest.mark.parametrize("torch_version,caps,amd,ok,expected", [
    ("2.14.1+cpu", [(9, 0)], False, False, "CPU-only build"),
    ("2.14.1", None, False, False, "no NVIDIA GPU found"),
    ("2.14.1", [], False, False, "no NVIDIA GPU found"),
    ("2.14.1", [(6, 1)], False, False, "compute capability (6.1) is below 7.0"),
    ("2.14.1+cu130", [(6, 1), (8, 0)], False, True, "1 NVIDIA GPU(s), compute capability 8.0"),
    ("2.14.1", [(9, 0)], False, True, "compute capability 9.0"),
    ("2.14.1+rocm7.0", None, True, True, "AMD GPU"),
    ("2.14.1+rocm7.0", None, False, False, "no AMD GPU found"),
    (None, None, False, False, "torch is not installed"),
])
def test_gpu_detection(torch_version, caps, amd, ok, expected):
    got, why = gpu_available(torch_version=lambda: torch_version, nvidia_capabilities=lambda: caps,
                             amd_present=lambda: amd)
    assert got is ok and expected in why


def test_hidden_gpus_are_named(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    ok, why = gpu_available(torch_version=lambda: "2.14.1", nvidia_capabilities=lambda: [])
    assert not ok and "CUDA_VISIBLE_DEVICES=''" in why


@pytest.mark.parametrize("env,count,expected", [(None, 2, [0, 1]), ("", 2, []), ("1", 2, [1]), ("1,0", 2, [1, 0]),
                                                ("0,-1,1", 2, [0]), ("3", 2, []), ("GPU-abc", 2, [0, 1])])
def test_cuda_visible_devices(monkeypatch, env, count, expected):
    if env is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    assert availability._visible(count) == expected


def test_versions_outside_unsloths_ranges_are_reported():
    requires = {
        "unsloth": ["transformers!=5.0.0,<=5.17.0,>=4.52.4", "trl<=1.15.0,>=0.18.2", "xformers>=0.0.27",
                    'torch<2.15.0; sys_platform == "nowhere"', 'datasets<5; extra == "huggingface"'],
        "unsloth_zoo": ["transformers<=5.17.0", "peft>=0.18.0"],
    }
    installed = {"transformers": "5.23.0", "trl": "1.15.0", "torch": "2.16.0", "datasets": "5.1", "peft": "0.21.2"}
    conflicts = version_conflicts(requires=lambda d: requires[d], version=lambda n: installed[n])
    assert conflicts == ["transformers 5.23.0 (unsloth needs !=5.0.0,<=5.17.0,>=4.52.4)",
                         "transformers 5.23.0 (unsloth_zoo needs <=5.17.0)"]
    inside = dict(installed, transformers="5.17.0")
    assert version_conflicts(requires=lambda d: requires[d], version=lambda n: inside[n]) == []


def test_version_conflicts_make_it_unusable(monkeypatch):
    monkeypatch.setattr(availability.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(availability, "version_conflicts", lambda: ["trl 1.16.0 (unsloth needs <=1.15.0)"])
    ok, why = unsloth_usable()
    assert not ok and "trl 1.16.0 (unsloth needs <=1.15.0)" in why and "--backend transformers" in why
