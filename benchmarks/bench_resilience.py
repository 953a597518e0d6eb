"""Resilience report: malformed rows, bad videos, kill-and-resume, decoder memory, measured in one run.

    .venv/bin/python benchmarks/bench_resilience.py [--rows-per-task 3000] [--clips 2000] [--skip-resume]

Prints four tables:

1. every registered task's loader fed hypothesis-generated malformed rows (tests/resilience/fuzz_rows.py):
   rows fuzzed, accepted, rejected with line and reason, crashes, hangs, unexplained rows;
2. each kind of bad video (tests/resilience/bad_videos.py): outcome vs the documented one, time taken;
3. `vtg train` SIGKILLed after checkpoint-10 and resumed with `vtg train --resume`: how many of the
   following steps have the same loss / gradient norm / learning rate as an uninterrupted run, and
   the largest weight difference of the final checkpoints (ratio of equal steps, side by side);
4. resident memory over N decodes in a row, per decoder: growth in % (the issue's bound: 5%).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "resilience"))


def _fuzz_task(name: str, rows_per_task: int, work: Path) -> tuple[str, dict[str, int], list[str]]:
    from fuzz_rows import Hang, check_load, file_format, malformed_lines, seed_rows
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from vtg_core.plugins import get_registry

    task = get_registry().get("task", name).load()()
    root = work / f"fuzz-{name}"
    root.mkdir()
    seeds = seed_rows(task, name, root)
    fmt = file_format(task, root / "probe.jsonl", seeds, str(root))
    t = {"rows": 0, "accepted": 0, "rejected": 0, "file_errors": 0, "crashes": 0, "hangs": 0, "unexplained": 0}
    examples: list[str] = []

    @settings(max_examples=max(1, rows_per_task // 40), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(lines=st.lists(malformed_lines(seeds), min_size=20, max_size=60))
    def run(lines):
        try:
            counts = check_load(task, root / ("rows.jsonl" if fmt == "jsonl" else "rows.json"), lines,
                                video_dir=str(root), fmt=fmt)
        except Hang:
            t["hangs"] += 1
            t["rows"] += len(lines)
            return
        except AssertionError as exc:
            t["unexplained"] += 1
            t["rows"] += len(lines)
            examples.append(f"{name}: {str(exc)[:160]}")
            return
        except Exception as exc:  # a crash: what the loader must never do
            t["crashes"] += 1
            t["rows"] += len(lines)
            examples.append(f"{name}: {type(exc).__name__}: {str(exc)[:160]}")
            return
        for key in ("rows", "accepted", "rejected", "file_errors"):
            t[key] += counts[key]

    run()
    return fmt, t, examples


def fuzz(rows_per_task: int, work: Path) -> None:
    from vtg_core.plugins import get_registry

    print(f"\n1. malformed annotation rows (hypothesis), about {rows_per_task} per task")
    print(f"{'task':<22}{'format':>9}{'rows':>8}{'accepted':>10}{'rejected':>10}{'file errors':>12}{'crashes':>9}"
          f"{'hangs':>7}{'unexplained':>12}")
    for name in sorted(get_registry().all("task")):
        fmt, t, examples = _fuzz_task(name, rows_per_task, work)
        print(f"{name:<22}{fmt:>9}{t['rows']:>8}{t['accepted']:>10}{t['rejected']:>10}{t['file_errors']:>12}"
              f"{t['crashes']:>9}{t['hangs']:>7}{t['unexplained']:>12}")
        for line in examples[:3]:
            print(f"    {line}")


def clips(work: Path) -> None:
    from bad_videos import make_catalogue, outcome

    from vtg_core.config import VtgConfig

    cfg = VtgConfig().video
    cfg.max_frames, cfg.resolution.height, cfg.resolution.width = 4, 32, 32
    print("\n2. bad videos: outcome of decoding each kind as training does")
    print(f"{'kind':<26}{'documented':>22}{'got':>22}{'ms':>8}")
    for kind, (sample, expected) in make_catalogue(work / "videos").items():
        start = time.perf_counter()
        got = outcome(sample, cfg, timeout=0.001 if kind == "decode_timeout" else 30)
        ms = 1000 * (time.perf_counter() - start)
        mark = "" if got == expected else "   <-- differs"
        print(f"{kind:<26}{':'.join(expected):>22}{':'.join(got):>22}{ms:>8.0f}{mark}")


def resume(work: Path) -> None:
    from vtg_core.data.synthetic import make_grounding_dataset
    from vtg_core.testing import save_tiny_model

    child = ROOT / "tests" / "resilience" / "child.py"
    data = make_grounding_dataset(work / "data", num_train=24, num_val=2, seed=5, duration_range=(3, 4), fps=4,
                                  size=(32, 32), max_distractors=0)
    model = str(save_tiny_model(work / "model", seed=0))
    sets = ["model.torch_dtype=float32", "model.attn_implementation=sdpa", "model.gradient_checkpointing=false",
            "video.max_frames=4", "video.resolution.height=32", "video.resolution.width=32", "training.bf16=false",
            "lora.r=4", "lora.lora_alpha=8", "training.logging_steps=1", "training.save_steps=5",
            "training.save_total_limit=2", "training.per_device_train_batch_size=2",
            "training.gradient_accumulation_steps=1", "dataloader.num_workers=0", "training.learning_rate=1e-3",
            "training.warmup_ratio=0.1"]
    steps = 35

    def args(out: Path) -> list[str]:
        a = ["train", "--data", data["train"], "--val-data", data["val"], "--video-dir", data["video_dir"],
             "--model", model, "--no-eval", "--max-steps", str(steps), "--output-dir", str(out)]
        for s in sets:
            a += ["--set", s]
        return a

    env = dict(os.environ, OMP_NUM_THREADS="1")
    print("\n3. kill -9 after checkpoint-10, then `vtg train --resume`, vs an uninterrupted run")
    start = time.perf_counter()
    subprocess.run([sys.executable, str(child), *args(work / "reference")], env=env, check=True,
                   capture_output=True)
    killed = subprocess.Popen([sys.executable, str(child), *args(work / "killed")],
                              env=dict(env, VTG_TEST_SLOW_AFTER="10"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    while not list((work / "killed").glob("*/checkpoints/checkpoint-10/trainer_state.json")):
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    run_dir = next((work / "killed").iterdir())
    at_kill = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    subprocess.run([sys.executable, str(child), "train", "--resume", str(run_dir), "--no-eval"], env=env,
                   check=True, capture_output=True)

    def history(root: Path) -> dict:
        state = json.loads((next(root.glob(f"*/checkpoints/checkpoint-{steps}")) / "trainer_state.json").read_text())
        return {e["step"]: (e["loss"], e["grad_norm"], e["learning_rate"]) for e in state["log_history"] if "loss" in e}

    ref, got = history(work / "reference"), history(work / "killed")
    after = list(range(11, steps + 1))
    equal = sum(ref[s] == got[s] for s in after)
    from safetensors.torch import load_file

    wa = load_file(str(next((work / "reference").glob("*/checkpoints/final")) / "adapter_model.safetensors"))
    wb = load_file(str(run_dir / "checkpoints" / "final" / "adapter_model.safetensors"))
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    print(f"checkpoints when killed: {at_kill}; after the resume: "
          f"{sorted(p.name for p in (run_dir / 'checkpoints').iterdir())}")
    print(f"steps after the kill with identical loss, grad norm and lr: {equal}/{len(after)} "
          f"(ratio {equal / len(after):.3f}); largest final weight difference: {diff:g}; "
          f"{time.perf_counter() - start:.0f} s for the three runs")


def memory(n: int, work: Path) -> None:
    from vtg_core.data.synthetic import make_clip
    from vtg_core.data.video import load_frames

    def rss() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    paths = [str(make_clip(work / f"m{i}.mp4", duration=2.0, fps=8, size=(64, 64), seed=i)) for i in range(20)]
    print(f"\n4. resident memory over {n} decodes in a row (20 clips in turn, 8 frames each, 100 warm-up decodes)")
    print(f"{'decoder':<10}{'before MiB':>12}{'after MiB':>12}{'growth %':>10}{'decodes/s':>11}")
    for decoder in ("decord", "pyav", "auto"):
        for i in range(100):
            load_frames(paths[i % 20], max_frames=8, decoder=decoder)
        before, start = rss(), time.perf_counter()
        for i in range(n):
            load_frames(paths[i % 20], max_frames=8, decoder=decoder, timeout=30)
        after = rss()
        print(f"{decoder:<10}{before:>12.1f}{after:>12.1f}{100 * (after / before - 1):>10.2f}"
              f"{n / (time.perf_counter() - start):>11.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-task", type=int, default=3000)
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--skip-resume", action="store_true")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)  # skipped-row warnings would drown the tables
    with tempfile.TemporaryDirectory(prefix="vtg-resilience-") as tmp:
        work = Path(tmp)
        fuzz(args.rows_per_task, work)
        clips(work)
        if not args.skip_resume:
            resume(work)
        memory(args.clips, work)


if __name__ == "__main__":
    main()
