"""Real SFT and GRPO steps through unsloth, on a GPU where unsloth can run (skipped elsewhere).

Each backend runs in its own process: importing unsloth patches transformers and TRL for the
whole process, which would otherwise change the transformers backend's run too.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from vtg_backend_unsloth.availability import unsloth_usable

USABLE, WHY = unsloth_usable()
pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not USABLE, reason=f"unsloth cannot run here: {WHY}")]


def run_in_subprocess(backend: str, workdir: Path, steps: int = 2) -> dict:
    code = ("import json, sys\nfrom vtg_backend_unsloth.compare import run_steps\n"
            f"out = run_steps({backend!r}, {str(workdir)!r}, steps={steps})\n"
            "print('RESULT:' + json.dumps(out))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    assert proc.returncode == 0 and lines, proc.stdout[-4000:] + proc.stderr[-8000:]
    return json.loads(lines[-1][len("RESULT:"):])


def test_sft_then_grpo_through_unsloth_and_reload(tmp_path):
    out = run_in_subprocess("unsloth", tmp_path)
    assert len(out["sft_losses"]) == 2 and all(math.isfinite(x) for x in out["sft_losses"])
    assert len(out["grpo_rewards"]) == 2
    for key in ("sft_checkpoint", "grpo_checkpoint"):
        ckpt = Path(out[key])
        assert (ckpt / "adapter_model.safetensors").is_file() and (ckpt / "vtg_checkpoint.json").is_file()
    # The unsloth checkpoint loads with the plain transformers backend too.
    from vtg_core.backends.transformers_backend import TransformersBackend

    model, processor = TransformersBackend().load_checkpoint(out["grpo_checkpoint"])
    assert model.peft_config and processor.tokenizer is not None


def test_unsloth_and_transformers_side_by_side(tmp_path):
    rows = [run_in_subprocess(b, tmp_path / b) for b in ("transformers", "unsloth")]
    for row in rows:
        print(f"{row['backend']:>12} on {row['device']}: SFT {row['sft_s_per_step']:.3f} s/step, "
              f"peak {row['sft_peak_mib']:.0f} MiB; GRPO {row['grpo_s_per_step']:.3f} s/step, "
              f"peak {row['grpo_peak_mib']:.0f} MiB")
        assert all(math.isfinite(x) for x in row["sft_losses"])
