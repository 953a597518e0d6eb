"""Benchmark: the unsloth backend against the transformers backend, side by side in one run.

The same SFT steps, then the same GRPO steps from the SFT checkpoint, of the tiny Qwen3-VL on the
same generated clips (:mod:`vtg_backend_unsloth.compare`), once per backend and repetition, each
in a fresh process (importing unsloth patches transformers and TRL process-wide). Prints seconds
per step and peak GPU memory for both, and the ratios transformers / unsloth (above 1: unsloth is
faster / leaner). The tiny model is far too small for unsloth's kernels to matter: the figures
say what the backend costs or saves around them, not what it does for a 4B model.

Needs a GPU unsloth can use; elsewhere it prints why not and exits 1.
Run: ``python plugins/vtg-backend-unsloth/benchmarks/bench_unsloth_vs_transformers.py [--steps 4] [--reps 2]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from vtg_backend_unsloth.availability import unsloth_usable


def one(backend: str, workdir: Path, steps: int) -> dict:
    code = ("import json\nfrom vtg_backend_unsloth.compare import run_steps\n"
            f"print('RESULT:' + json.dumps(run_steps({backend!r}, {str(workdir)!r}, steps={steps})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    if proc.returncode or not lines:
        sys.exit(f"{backend} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(lines[-1][len("RESULT:"):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    usable, why = unsloth_usable()
    if not usable:
        print(f"unsloth cannot run here: {why}")
        sys.exit(1)
    rows: dict[str, list[dict]] = {"transformers": [], "unsloth": []}
    with tempfile.TemporaryDirectory(prefix="vtg-bench-unsloth-") as tmp:
        for rep in range(args.reps):
            order = ("transformers", "unsloth") if rep % 2 == 0 else ("unsloth", "transformers")
            for backend in order:
                rows[backend].append(one(backend, Path(tmp) / f"{backend}-{rep}", args.steps))
    med = {b: {k: statistics.median(r[k] for r in rs) for k in ("sft_s_per_step", "sft_peak_mib",
                                                                "grpo_s_per_step", "grpo_peak_mib")}
           for b, rs in rows.items()}
    print(f"device: {rows['unsloth'][0]['device']}; {args.steps} steps x {args.reps} repetitions (medians)")
    print(f"{'':24}{'transformers':>14}{'unsloth':>14}{'ratio t/u':>12}")
    for key, label in (("sft_s_per_step", "SFT s/step"), ("sft_peak_mib", "SFT peak MiB"),
                       ("grpo_s_per_step", "GRPO s/step"), ("grpo_peak_mib", "GRPO peak MiB")):
        t, u = med["transformers"][key], med["unsloth"][key]
        print(f"{label:24}{t:>14.3f}{u:>14.3f}{t / u:>12.2f}")


if __name__ == "__main__":
    main()
