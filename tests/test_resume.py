"""Nothing lost: `vtg train` killed (SIGKILL, mid-run or mid-save), stopped (SIGTERM / SIGINT) and
resumed with `vtg train --resume` continues exactly as an uninterrupted run.

Each run is a real `vtg` process (tests/resilience/child.py) on the tiny model and generated clips.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")

pytestmark = pytest.mark.torch

CHILD = Path(__file__).parent / "resilience" / "child.py"
MAX_STEPS = 30  # the kill lands at step 10-11: the 20 steps after checkpoint-10 are compared


SAMPLERS = {"random": [], "duration": ["duration_batching.enabled=true",
                                      "duration_batching.target_batch_duration=8"]}  # 12 batches of 2 per epoch


def _args(data: dict, model: str, out: Path, max_steps: int = MAX_STEPS, sampler: str = "random") -> list[str]:
    sets = ["model.torch_dtype=float32", "model.attn_implementation=sdpa", "model.gradient_checkpointing=false",
            "video.max_frames=4", "video.resolution.height=32", "video.resolution.width=32",
            "training.bf16=false", "lora.r=4", "lora.lora_alpha=8", "training.logging_steps=1",
            "training.save_steps=5", "training.save_total_limit=2", "training.per_device_train_batch_size=2",
            "training.gradient_accumulation_steps=1", "dataloader.num_workers=0", "training.learning_rate=1e-3",
            "training.warmup_ratio=0.1", *SAMPLERS[sampler]]
    args = ["train", "--data", data["train"], "--val-data", data["val"], "--video-dir", data["video_dir"], "--model", model, "--no-eval",
            "--max-steps", str(max_steps), "--output-dir", str(out)]
    for s in sets:
        args += ["--set", s]
    return args


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


def _vtg(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHILD), *args], env=_env(**env), capture_output=True, text=True,
                          timeout=300)


def _start(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), *args], env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(pattern: str, root: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(root.glob(pattern))
        if found:
            return found[0]
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {pattern} appeared:\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"{pattern} did not appear within {timeout} s")


def _run_dir(root: Path) -> Path:
    (run,) = [d for d in root.iterdir() if d.is_dir()]
    return run


def _history(checkpoint: Path) -> dict[int, tuple[float, float, float]]:
    log = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return {e["step"]: (e["loss"], e["grad_norm"], e["learning_rate"]) for e in log if "loss" in e}


def _weights(checkpoint: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Generated clips, the tiny model, and one uninterrupted reference run."""
    from vtg_core.data.synthetic import make_grounding_dataset
    from vtg_core.testing import save_tiny_model

    root = tmp_path_factory.mktemp("resume")
    data = make_grounding_dataset(root / "data", num_train=24, num_val=2, seed=5, duration_range=(3, 4), fps=4,
                                  size=(32, 32), max_distractors=0)
    model = str(save_tiny_model(root / "model", seed=0))
    return {"root": root, "data": data, "model": model, "references": {}}


def _reference(setup: dict, sampler: str) -> Path:
    """The uninterrupted run's checkpoints folder (made once per sampler)."""
    if sampler not in setup["references"]:
        out = setup["root"] / f"reference-{sampler}"
        done = _vtg(_args(setup["data"], setup["model"], out, sampler=sampler))
        assert done.returncode == 0, done.stderr[-3000:]
        setup["references"][sampler] = _run_dir(out) / "checkpoints"
    return setup["references"][sampler]


def _assert_same_as_reference(setup: dict, checkpoints: Path, resumed_from: int, sampler: str = "random") -> int:
    reference = _reference(setup, sampler)
    ref, got = _history(reference / f"checkpoint-{MAX_STEPS}"), _history(checkpoints / f"checkpoint-{MAX_STEPS}")
    after = range(resumed_from + 1, MAX_STEPS + 1)
    assert len(after) >= 20
    for step in after:  # loss, gradient norm and learning rate, bit for bit
        assert got[step] == ref[step], f"step {step}: resumed {got[step]} vs uninterrupted {ref[step]}"
    ref_w, got_w = _weights(reference / "final"), _weights(checkpoints / "final")
    assert ref_w.keys() == got_w.keys()
    assert all(bool((ref_w[k] == got_w[k]).all()) for k in ref_w)
    return len(after)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(setup, tmp_path, sampler):
    """Killed at step 10-11, mid-epoch (12 steps per epoch): data position, RNG, optimizer, scheduler
    and, with the duration sampler, its batch plan all come back."""
    _reference(setup, sampler)
    out = tmp_path / "runs"
    proc = _start(_args(setup["data"], setup["model"], out, sampler=sampler), VTG_TEST_SLOW_AFTER="10")
    _wait_for("*/checkpoints/checkpoint-10/trainer_state.json", out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    run = _run_dir(out)
    assert not (run / "checkpoints" / "final").exists()
    # --resume alone finds the newest run of the task under --output-dir and its newest complete checkpoint.
    done = _vtg(["train", "--resume", "--output-dir", str(out), "--no-eval"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming run {run} from {run / 'checkpoints' / 'checkpoint-10'}" in done.stderr
    assert _assert_same_as_reference(setup, run / "checkpoints", resumed_from=10, sampler=sampler) >= 20
    assert _run_dir(out) == run  # the same run directory, not a new one


def test_kill_during_a_save_leaves_nothing_resume_would_pick(setup, tmp_path):
    out = tmp_path / "runs"
    done = _vtg(_args(setup["data"], setup["model"], out), VTG_TEST_DIE_SAVING="15")
    assert done.returncode == -signal.SIGKILL
    checkpoints = _run_dir(out) / "checkpoints"
    names = sorted(p.name for p in checkpoints.iterdir())
    # checkpoint-15 was half written (weights, optimizer, no RNG or trainer state): only under staging.
    assert "checkpoint-15" not in names
    staged = checkpoints / ".vtg-staging" / "checkpoint-15"
    assert (staged / "optimizer.pt").is_file() and not (staged / "trainer_state.json").exists()
    # save_total_limit=2: checkpoint-5 is pruned only once a newer one is complete, so it is still here.
    assert {"checkpoint-5", "checkpoint-10"} <= set(names)
    from vtg_core.train.checkpoints import latest_checkpoint

    assert latest_checkpoint(checkpoints) == str(checkpoints / "checkpoint-10")
    done = _vtg(["train", "--resume", str(checkpoints.parent), "--no-eval"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (checkpoints / ".vtg-staging").exists()
    _assert_same_as_reference(setup, checkpoints, resumed_from=10)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-25", "checkpoint-30", "final"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_finish_the_step_save_and_say_how_to_resume(setup, tmp_path, sig):
    out = tmp_path / "runs"
    proc = _start(_args(setup["data"], setup["model"], out), VTG_TEST_SLOW_AFTER="6")
    _wait_for("*/checkpoints/checkpoint-5/trainer_state.json", out, proc)
    time.sleep(0.5)  # inside step 7 or 8
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr[-3000:]
    run = _run_dir(out)
    saved = [p for p in (run / "checkpoints").glob("checkpoint-*") if p.name not in ("checkpoint-5",)]
    assert len(saved) == 1, saved
    step = int(saved[0].name.split("-")[1])
    assert 6 <= step < 12
    state = json.loads((saved[0] / "trainer_state.json").read_text())
    assert state["global_step"] == step  # the step in progress finished; the checkpoint is complete
    assert (saved[0] / "optimizer.pt").is_file() and (saved[0] / "vtg_checkpoint.json").is_file()
    assert not (run / "checkpoints" / "final").exists()
    assert f"{sig.name} received" in stderr and f"Resume with: vtg train --method sft --resume {run}" in stderr
    assert "Traceback" not in stderr
