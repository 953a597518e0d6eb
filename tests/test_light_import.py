"""`import vtg_core`, `vtg --help` and `vtg plugins` must not import the heavy stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "trl", "decord", "peft", "accelerate", "deepspeed", "cv2")

PROBE = """
import sys, runpy
sys.argv = {argv!r}
{body}
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
"""


def _heavy_after(body: str, argv: list[str]) -> list[str]:
    code = PROBE.format(argv=argv, body=body, heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("HEAVY:")]
    assert line, f"probe failed:\n{result.stdout}\n{result.stderr}"
    return [m for m in line[-1][len("HEAVY:"):].split(",") if m]


def test_import_vtg_core_is_light():
    assert _heavy_after("import vtg_core, vtg_core.plugins, vtg_core.records, vtg_core.config", ["x"]) == []


@pytest.mark.parametrize("argv", [["vtg", "--help"], ["vtg", "plugins", "--all"], ["vtg", "list"],
                                  ["vtg", "train", "--help"]])
def test_cli_commands_are_light(argv):
    body = (
        "from vtg_core.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass"
    )
    assert _heavy_after(body, argv) == []
