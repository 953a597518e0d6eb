"""Safety: weights as safetensors, no pickle loading of files a user did not make, trust_remote_code
only when the user turns it on. (Plugin allow / deny lists: tests/test_plugins.py,
test_disable_and_allow_list and test_disable_via_environment.)"""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sources() -> list[Path]:
    files = list((ROOT / "vtg_core").rglob("*.py"))
    for plugin in (ROOT / "plugins").glob("*/"):
        files += [p for p in plugin.rglob("*.py") if "tests" not in p.relative_to(plugin).parts]
    return files


def _unsafe_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords if k.arg}
        if name in ("pickle.load", "pickle.loads", "cPickle.load", "joblib.load", "dill.load", "dill.loads",
                    "pickle.Unpickler"):
            found.append(name)
        elif name.endswith("torch.load") and kwargs.get("weights_only") != "True":
            found.append(f"{name} without weights_only=True")
        elif name in ("np.load", "numpy.load") and kwargs.get("allow_pickle") not in (None, "False"):
            found.append(f"{name}(allow_pickle={kwargs['allow_pickle']})")
        elif name.endswith("from_pretrained") and kwargs.get("trust_remote_code") == "True":
            found.append(f"{name}(trust_remote_code=True) hard-coded")
        elif name.endswith("save_pretrained") and kwargs.get("safe_serialization") == "False":
            found.append(f"{name}(safe_serialization=False)")
    return found


def test_no_pickle_loading_and_no_hard_coded_remote_code_in_core_or_plugins():
    problems = []
    for path in _sources():
        for call in _unsafe_calls(ast.parse(path.read_text(encoding="utf-8"))):
            problems.append(f"{path.relative_to(ROOT)}: {call}")
    assert not problems, "\n".join(problems)


def test_the_scan_finds_what_it_looks_for():
    code = ("import pickle, torch, numpy as np\npickle.load(f)\ntorch.load(p)\nnp.load(p, allow_pickle=True)\n"
            "M.from_pretrained(p, trust_remote_code=True)\nm.save_pretrained(d, safe_serialization=False)\n"
            "torch.load(p, weights_only=True)\nnp.load(p)\n")
    assert len(_unsafe_calls(ast.parse(code))) == 5


def test_transformers_resume_loads_its_pickles_with_weights_only():
    """Resuming reads optimizer.pt / scheduler.pt / rng_state.pth, which torch writes as pickles:
    the installed Trainer must load every one with the restricted (weights_only) unpickler."""
    import transformers.trainer as trainer_module

    source = Path(trainer_module.__file__).read_text(encoding="utf-8")
    calls = [m.start() for m in re.finditer(r"torch\.load\(", source)]
    assert calls
    for start in calls:
        depth, end = 0, start
        for end in range(start + len("torch.load"), len(source)):
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            if depth == 0:
                break
        assert "weights_only=True" in source[start:end], source[start:end + 1]


def test_trust_remote_code_is_off_unless_the_user_turns_it_on():
    import inspect

    from vtg_core.backends.checkpoint import load_checkpoint
    from vtg_core.backends.loading import load_model_and_processor
    from vtg_core.config import default_config

    assert default_config("sft").model.trust_remote_code is False
    assert default_config("rl").model.trust_remote_code is False
    for fn in (load_checkpoint, load_model_and_processor):
        assert inspect.signature(fn).parameters["trust_remote_code"].default is False


class _Payload:
    """Unpickling this creates a marker file: what a malicious pickle would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_cannot_turn_on_remote_code_by_itself(tmp_path):
    from vtg_core.backends.checkpoint import load_checkpoint
    from vtg_core.errors import ConfigError

    ckpt = tmp_path / "downloaded"
    ckpt.mkdir()
    marker = tmp_path / "code-ran"
    (ckpt / "vtg_checkpoint.json").write_text(json.dumps({"format": 1, "kind": "full", "trust_remote_code": True}))
    (ckpt / "config.json").write_text(json.dumps({"model_type": "evil", "auto_map": {
        "AutoModelForImageTextToText": "evil_model.EvilModel", "AutoConfig": "evil_model.EvilConfig"}}))
    (ckpt / "evil_model.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\n")
    with pytest.raises(ConfigError, match="trained with model.trust_remote_code=true.*If you trust where it came"):
        load_checkpoint(ckpt)
    assert not marker.exists()


@pytest.mark.torch
def test_pickled_weights_are_refused_not_executed(tmp_path):
    pytest.importorskip("torch")
    from vtg_core.backends.loading import load_model_and_processor
    from vtg_core.testing import tiny_model_dir

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    src = Path(tiny_model_dir())
    for f in src.iterdir():
        if f.suffix != ".safetensors" and f.is_file():
            (model_dir / f.name).write_bytes(f.read_bytes())
    marker = tmp_path / "pickle-ran"
    (model_dir / "pytorch_model.bin").write_bytes(pickle.dumps({"model.weight": _Payload(marker)}))
    with pytest.raises(Exception) as info:  # noqa: PT011 - transformers' own error type varies by version
        load_model_and_processor(str(model_dir), torch_dtype="float32", attn_implementation="sdpa")
    assert not marker.exists(), "a pickle in a model folder was executed"
    assert "weights_only" in str(info.value) or "Unpickl" in repr(info.value) or "safetensors" in str(info.value)


@pytest.mark.torch
def test_vtg_checkpoints_hold_weights_only_as_safetensors(tmp_path):
    pytest.importorskip("peft")
    from vtg_core.backends.checkpoint import save_checkpoint
    from vtg_core.testing import tiny_model

    model, processor = tiny_model()
    out = Path(save_checkpoint(model, processor, tmp_path / "final"))
    assert (out / "model.safetensors").is_file() or (out / "adapter_model.safetensors").is_file()
    assert not [p.name for p in out.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle")]
