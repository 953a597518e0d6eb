"""Data set generation: throughput with 1 worker vs all cores, peak memory with vs without incremental saving.

Each measurement runs in a fresh Python process, side by side in one run, on the same synthetic
trajectories and seed. Peak memory is the process's own peak RSS (``VmHWM``, Linux), measured with
one worker so the comparison is the saving strategy alone; it includes the interpreter and its
imports (``baseline``), printed too. Also checks that every run wrote the same rows.

    .venv/bin/python plugins/vtg-task-robot-vqa/benchmarks/bench_generate.py --num-samples 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
from vtg_robot_vqa.generate import GenerationConfig, generate_dataset
import datasets, pyarrow  # imported before the baseline: both runs need them

import threading

def status_kb(key):  # from this process's own /proc status (ru_maxrss would carry the parent's over fork + exec)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":"))

peak_anon = [status_kb("RssAnon")]
done = threading.Event()

def watch():  # RssAnon has no high-water mark: sample it
    while not done.wait(0.005):
        peak_anon[0] = max(peak_anon[0], status_kb("RssAnon"))

index, out, n, workers, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
baseline, baseline_anon = status_kb("VmHWM"), status_kb("RssAnon")
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
start = time.perf_counter()
generate_dataset(index, out, GenerationConfig(num_samples=n, seed=0), num_workers=workers, save_batch_size=batch)
seconds = time.perf_counter() - start
done.set()
watcher.join()
print(json.dumps({"seconds": seconds, "peak_kb": status_kb("VmHWM"), "baseline_kb": baseline,
                  "peak_anon_kb": peak_anon[0], "baseline_anon_kb": baseline_anon}))
"""

def run(index: str, out: str, n: int, workers: int, batch: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, index, out, str(n), str(workers), str(batch)],
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    arrow = sorted(f for f in os.listdir(out) if f.endswith(".arrow"))
    digest = hashlib.sha256()
    from datasets import load_from_disk

    for batch in load_from_disk(out).iter(batch_size=10_000):
        digest.update(json.dumps(batch, sort_keys=True).encode())
    result["rows_sha256"] = digest.hexdigest()[:16]
    result["files"] = arrow
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=100_000)
    parser.add_argument("--save-batch-size", type=int, default=10_000)
    parser.add_argument("--trajectories", type=int, default=48)
    args = parser.parse_args()

    from vtg_robot_vqa.synthetic import make_trajectories

    cores = os.cpu_count() or 1
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vtg-robot-bench-") as tmp:
        index = make_trajectories(os.path.join(tmp, "traj"), num_trajectories=args.trajectories, num_frames=32,
                                  size=64, seed=0)["index"]
        n, b = args.num_samples, args.save_batch_size
        one = run(index, os.path.join(tmp, "w1"), n, 1, b)
        alln = run(index, os.path.join(tmp, "wall"), n, -1, b)
        whole = run(index, os.path.join(tmp, "whole"), n, 1, -1)
    print(f"generation of {n} samples from {args.trajectories} trajectories, save_batch_size={b}, {cores} cores "
          f"(load average before: {load[0]:.1f}; other work on the machine competes with the workers)")
    print(f"  1 worker:           {one['seconds']:7.2f} s  ({n / one['seconds']:9.0f} samples/s)")
    print(f"  {cores} workers (-1):    {alln['seconds']:7.2f} s  ({n / alln['seconds']:9.0f} samples/s)")
    print(f"  throughput ratio all cores / 1 worker: {one['seconds'] / alln['seconds']:.2f}x")
    print("peak memory, 1 worker (baseline: the interpreter and its imports, before generating):")
    for name, r in ((f"incremental (save_batch_size={b})", one), ("all at once (save_batch_size=-1)", whole)):
        print(f"  {name:<34} peak RSS {r['peak_kb'] / 1024:7.1f} MiB (baseline {r['baseline_kb'] / 1024:.1f}); "
              f"peak anonymous {r['peak_anon_kb'] / 1024:7.1f} MiB (baseline {r['baseline_anon_kb'] / 1024:.1f})")
    print(f"  peak RSS ratio all-at-once / incremental: {whole['peak_kb'] / one['peak_kb']:.2f}x; "
          f"peak anonymous memory above baseline: "
          f"{(whole['peak_anon_kb'] - whole['baseline_anon_kb']) / 1024:.1f} vs "
          f"{(one['peak_anon_kb'] - one['baseline_anon_kb']) / 1024:.1f} MiB = "
          f"{(whole['peak_anon_kb'] - whole['baseline_anon_kb']) / max(1, one['peak_anon_kb'] - one['baseline_anon_kb']):.2f}x")
    print("  (peak RSS counts pages of the memory-mapped batch files the final save reads; anonymous memory does not)")
    same = one["rows_sha256"] == alln["rows_sha256"] == whole["rows_sha256"]
    print(f"same rows in all three runs: {same} ({one['rows_sha256']})")


if __name__ == "__main__":
    main()
