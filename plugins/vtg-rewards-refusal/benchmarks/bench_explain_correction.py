"""explain_correction: batched + cached SBERT vs the seed's one-encode-per-sentence loop, side by side.

Seed 001's reward encodes each correction, then each of its references, one ``encode`` call per
sentence. This plugin encodes a GRPO batch's corrections in one call and its uncached references
in one more. Both run here on the same completions with the same model in one process, and their
rewards are checked to agree before any time is printed.

    python plugins/vtg-rewards-refusal/benchmarks/bench_explain_correction.py            # 1000 x 5
    python plugins/vtg-rewards-refusal/benchmarks/bench_explain_correction.py --device cuda:0

The workload: ``--completions`` refusals to refusable queries, ``--generations`` per prompt (a
GRPO group shares its prompt's references, as in training), ``--references`` per prompt, every
correction and reference a distinct sentence. Model loading is outside every timing.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

COLORS = ("red", "green", "blue", "yellow", "magenta", "cyan", "white", "black", "orange", "purple")
SHAPES = ("square", "circle", "triangle", "diamond", "star", "ball", "box", "bar")
ACTIONS = ("appear", "move left", "move right", "bounce", "grow", "shrink", "flash", "rotate", "fade", "slide up")
PLACES = ("in the corner", "near the centre", "at the top", "at the bottom", "on the left", "on the right")


def sentences(n: int, offset: int) -> list[str]:
    combos = itertools.islice(itertools.product(COLORS, SHAPES, ACTIONS, PLACES), offset, offset + n)
    out = [f"when does the {c} {s} {a} {p}?" for c, s, a, p in combos]
    if len(out) < n:
        raise SystemExit(f"only {len(out)} distinct sentences available; ask for fewer")
    return out


def workload(num_completions: int, generations: int, num_refs: int) -> tuple[list[str], dict]:
    prompts = -(-num_completions // generations)
    refs = sentences(prompts * num_refs, 0)
    fixes = sentences(num_completions, prompts * num_refs)
    completions = [f"<think>no such shape</think> <answer>The query does not match the video.</answer> "
                   f"<correction>{fix}</correction>" for fix in fixes]
    per_row = [refs[(i // generations) * num_refs:(i // generations + 1) * num_refs] for i in range(num_completions)]
    columns = {"task_type": ["refusable"] * num_completions, "gt_answers": [[[-1.0, -1.0]]] * num_completions,
               "duration": [30.0] * num_completions, "refusable_queries": per_row}
    return completions, columns


def seed_loop_reward(model, threshold: float = 0.5):
    """Seed 001's explain_correction: one ``encode`` per correction and per reference."""
    from vtg_rewards_refusal.parser import correction, parse_refusal, refused

    from vtg_core.rewards import completion_text

    def cosine(a, b):
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    def reward(prompts, completions, refusable_queries, **_):
        out = []
        for completion, references in zip(completions, refusable_queries, strict=True):
            parsed = parse_refusal(completion_text(completion), duration=None)
            score = 1.0 if refused(parsed) else 0.0
            text = correction(parsed)
            if text and references:
                correction_emb = model.encode(text, show_progress_bar=False)
                reference_embs = [model.encode(ref, show_progress_bar=False) for ref in references]
                best = max(cosine(correction_emb, r) for r in reference_embs)
                score += max(0.0, best - threshold)
            out.append(score)
        return out

    return reward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=1000)
    parser.add_argument("--references", type=int, default=5)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default=None, help="SBERT model path or id (default: the packaged MiniLM)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from vtg_rewards_refusal.rewards import explain_correction
    from vtg_rewards_refusal.sbert import get_embedder

    embedder = get_embedder(args.model, device=args.device, batch_size=args.batch_size)
    embedder.encode(["warm up the model once before any timing"])
    completions, columns = workload(args.completions, args.generations, args.references)
    prompts = ["q"] * len(completions)
    print(f"model: {embedder.name} on {args.device} (torch threads: {torch.get_num_threads()})")
    print(f"workload: {len(completions)} completions, {args.generations} per prompt, {args.references} "
          f"references per prompt ({len(completions) // args.generations * args.references} distinct references)")

    batched = explain_correction(embedder=embedder)
    embedder.clear_cache()
    calls = embedder.encode_calls
    t0 = time.perf_counter()
    fast = batched(prompts=prompts, completions=completions, **columns)
    cold = time.perf_counter() - t0
    cold_calls = embedder.encode_calls - calls
    t0 = time.perf_counter()
    again = batched(prompts=prompts, completions=completions, **columns)
    warm = time.perf_counter() - t0

    loop = seed_loop_reward(embedder.model)
    t0 = time.perf_counter()
    slow = loop(prompts=prompts, completions=completions, **columns)
    looped = time.perf_counter() - t0

    diff = max(abs(a - b) for a, b in zip(fast, slow, strict=True))
    assert diff < 1e-4 and fast == again, f"the two implementations disagree (max difference {diff})"
    print(f"rewards agree: max |difference| = {diff:.2e}, mean reward {np.mean(fast):.4f}")
    print(f"seed loop (1 encode per sentence):     {looped:8.2f} s  "
          f"({len(completions) * (1 + args.references)} encode calls)")
    print(f"batched, references not cached (cold): {cold:8.2f} s  ({cold_calls} encode calls)")
    print(f"batched, references cached (warm):     {warm:8.2f} s  (1 encode call)")
    print(f"speed-up cold: {looped / cold:.1f}x   warm: {looped / warm:.1f}x   (target >= 10x)")


if __name__ == "__main__":
    main()
