"""Every hook is documented with its exact signature and an example, and every hook is tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from vtg_core import hookspecs

TESTS = Path(__file__).parent
DOCS = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"
HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("vtg_"))


def test_there_is_one_register_hook_per_category():
    assert {"vtg_register_tasks", "vtg_register_rewards", "vtg_register_backends",
            "vtg_register_samplers"} <= set(HOOKS)


def test_every_hook_has_docstring_with_contract_arguments_returns_example():
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        for section in ("Contract:", "Arguments:", "Returns:", "Example::"):
            assert section in doc, f"hook {name} docstring lacks {section!r}"
        assert f"def {name}(" in doc, f"hook {name}: the example must implement the hook itself"


def test_every_hook_is_documented_in_the_plugin_guide_with_its_signature():
    text = DOCS.read_text(encoding="utf-8")
    for name in HOOKS:
        fn = getattr(hookspecs, name)
        params = ", ".join(inspect.signature(fn).parameters)
        assert re.search(rf"{name}\({re.escape(params)}\)", text), (
            f"docs/writing-plugins.md must document `{name}({params})` with that exact signature"
        )


def test_every_hook_has_a_test():
    test_sources = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.glob("test_*.py")
                             if p.name != Path(__file__).name)
    for name in HOOKS:
        assert name in test_sources, f"no test mentions hook {name}"
