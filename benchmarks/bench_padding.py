"""How many padded visual tokens fixed-size, duration and token-budget batching cost, side by side.

A batch is padded to its longest sample, so its padding is ``sum(max - each)`` visual tokens and
its memory is about ``batch_size * max``. Two synthetic duration distributions stand in for the
data sets users train on:

- Charades-STA-like: about 30 s, narrow (normal, sd 8 s, clipped to 8-90 s);
- ActivityNet-like: about 2 min, wide (lognormal, median 90 s, clipped to 5-755 s).

Visual tokens per clip come from ``vtg_core.data.video.tokens.estimate_sample_tokens`` (Qwen3-VL
arithmetic) when it is importable, else from the same arithmetic inlined here. Frames are taken at
``--fps`` (default 1) up to ``--max-frames`` (default 256) at 384x384, so tokens grow with
duration; with ``fps: 0`` (the shipped default, a fixed ``max_frames`` per clip) every clip costs
the same and no sampler pads, which the last line checks.

Budgets are matched so every sampler makes about the same number of batches: duration batching
targets ``batch_size * mean duration``, token batching ``batch_size * mean tokens``, and a second
fixed-size row uses the mean batch size duration batching reached.

    python benchmarks/bench_padding.py [--samples 5000] [--batch-size 4] [--fps 1] [--max-frames 256]
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import statistics
import time

from vtg_core.samplers import DurationBasedBatchSampler, RandomBatchSampler, TokenBudgetBatchSampler

HEIGHT = WIDTH = 384


def token_estimator(fps: float, max_frames: int):
    try:
        from vtg_core.data.video.tokens import estimate_sample_tokens

        def estimate(duration: float) -> int:
            return estimate_sample_tokens(duration, max_frames=max_frames, fps=fps, height=HEIGHT, width=WIDTH)

        return estimate, "vtg_core.data.video.tokens"
    except ImportError:
        def estimate(duration: float) -> int:
            frames = max_frames if fps <= 0 else min(max_frames, max(1, math.floor(duration * fps + 0.5)))
            return math.ceil(frames / 2) * (HEIGHT // 32) * (WIDTH // 32)

        return estimate, "inline Qwen3-VL arithmetic"


def charades_like(n: int, rng: random.Random) -> list[float]:
    return [min(90.0, max(8.0, rng.gauss(30.0, 8.0))) for _ in range(n)]


def activitynet_like(n: int, rng: random.Random) -> list[float]:
    return [min(755.0, max(5.0, rng.lognormvariate(math.log(90.0), 0.75))) for _ in range(n)]


def measure(batches: list[list[int]], tokens: list[int]) -> dict[str, float]:
    real = pad = 0
    memory = []
    for batch in batches:
        costs = [tokens[i] for i in batch]
        longest = max(costs)
        real += sum(costs)
        pad += sum(longest - c for c in costs)
        memory.append(longest * len(batch))
    mean_memory = statistics.fmean(memory)
    return {
        "batches": len(batches),
        "mean_bs": statistics.fmean(len(b) for b in batches),
        "padded": pad / (pad + real),
        "peak": max(memory),
        "cv": statistics.pstdev(memory) / mean_memory,
    }


def run_dataset(name: str, durations: list[float], tokens: list[int], batch_size: int, seed: int) -> None:
    n = len(durations)
    mean_d = statistics.fmean(durations)
    mean_t = statistics.fmean(tokens)
    duration = DurationBasedBatchSampler(durations, target_batch_duration=batch_size * mean_d, seed=seed)
    token = TokenBudgetBatchSampler(tokens, max_visual_tokens=int(batch_size * mean_t), seed=seed)
    matched = max(1, round(n / len(duration)))
    rows = [
        (f"fixed batch_size={batch_size}", list(RandomBatchSampler(n, batch_size, seed=seed))),
        (f"fixed batch_size={matched} (matched)", list(RandomBatchSampler(n, matched, seed=seed))),
        (f"duration target={batch_size * mean_d:.0f}s", list(duration)),
        (f"token budget={int(batch_size * mean_t)}", list(token)),
    ]
    results = [(label, measure(batches, tokens)) for label, batches in rows]
    base = results[0][1]["padded"]
    print(f"\n{name}: {n} clips, duration mean {mean_d:.1f}s (min {min(durations):.1f}, max {max(durations):.1f}), "
          f"visual tokens mean {mean_t:.0f} (min {min(tokens)}, max {max(tokens)})")
    print(f"  {'sampler':34s} {'batches':>7s} {'mean bs':>7s} {'padded share':>12s} {'vs fixed':>9s} "
          f"{'peak batch tokens':>17s} {'CV of batch tokens':>18s}")
    for label, r in results:
        ratio = f"{r['padded'] / base:8.3f}x" if base else "      n/a"
        print(f"  {label:34s} {r['batches']:7d} {r['mean_bs']:7.2f} {r['padded']:11.1%} {ratio:>9s} "
              f"{r['peak']:17.0f} {r['cv']:18.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--max-frames", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    estimate, source = token_estimator(args.fps, args.max_frames)
    print(f"Padding benchmark: tokens from {source}, fps={args.fps}, max_frames={args.max_frames}, "
          f"{HEIGHT}x{WIDTH}, batch_size={args.batch_size}, seed={args.seed}")
    started = time.perf_counter()
    rng = random.Random(args.seed)
    for name, make in (("Charades-STA-like", charades_like), ("ActivityNet-like", activitynet_like)):
        durations = make(args.samples, rng)
        run_dataset(name, durations, [estimate(d) for d in durations], args.batch_size, args.seed)

    fixed_estimate, _ = token_estimator(0.0, 32)
    durations = activitynet_like(args.samples, rng)
    tokens = [fixed_estimate(d) for d in durations]
    fixed = measure(list(RandomBatchSampler(len(tokens), args.batch_size, seed=args.seed)), tokens)
    print(f"\nWith fps=0, max_frames=32 (shipped default) every clip costs {tokens[0]} tokens: "
          f"fixed batch_size={args.batch_size} pads {fixed['padded']:.1%} on ActivityNet-like clips.")
    print(f"({time.perf_counter() - started:.1f}s)")


if __name__ == "__main__":
    main()
