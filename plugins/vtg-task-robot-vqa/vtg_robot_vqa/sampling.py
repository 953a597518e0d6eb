"""Draw one preference or progress sample from trajectories: the strategies of seed 004.

A sample depends only on the generation seed, its own index and the trajectory list, never on
which worker draws it or in what order, so any number of workers writes the same data set.

Progress along a trajectory is linear in time (frame ``t`` of ``T`` is ``t / (T - 1)``) for
trajectories that reach the goal (``successful`` or unlabelled); ``suboptimal`` and ``failure``
trajectories only take part in quality-label pairs.

Preference strategies (``data_gen_strategy``):

- ``rewind``: one trajectory played forward to frame ``e`` (chosen) against the same trajectory
  played forward to ``e`` and then partly backward to ``r < e`` (rejected, less progress);
- ``forward_progress``: two forward clips of one trajectory, the chosen one ending later;
- ``quality_label``: two trajectories of the same task with different quality labels, the better
  one chosen (the only strategy of ``eval_mode``: real quality differences, no augmentation).

Progress strategies: ``forward_progress`` (a forward clip from the start) and ``rewind`` (forward
then backward; the score is the progress of the last frame shown). ``eval_mode`` uses forward clips only.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import attrs

from . import schema
from .trajectories import QUALITY_RANK, Trajectory

MAX_RESAMPLE_ATTEMPTS = 50


class NoSampleError(RuntimeError):
    """No valid sample of a kind can be drawn from these trajectories."""


def even_indices(start: int, end: int, k: int) -> list[int]:
    """``k`` (or fewer, if the span is shorter) evenly spaced frame indices from ``start`` to ``end``."""
    span = end - start
    if span + 1 <= k:
        return list(range(start, end + 1))
    if k == 1:
        return [end]
    return [start + (span * j + (k - 1) // 2) // (k - 1) for j in range(k)]


def rewind_indices(end: int, back_to: int, k: int) -> list[int]:
    """Forward from 0 to ``end``, then backward to ``back_to``: at most ``k`` indices in all."""
    k_back = max(1, min(end - back_to, k // 3))
    k_fwd = max(2, k - k_back)
    forward = even_indices(0, end, k_fwd)
    backward = even_indices(back_to, end - 1, k_back)[::-1]
    return forward + backward


def progress_of(indices: Sequence[int], num_frames: int) -> list[float]:
    return [i / (num_frames - 1) for i in indices]


@attrs.frozen
class Pools:
    """The trajectories grouped the ways the strategies draw them (built once per process)."""

    progress: tuple[Trajectory, ...]
    quality_pairs: tuple[tuple[Trajectory, tuple[Trajectory, ...]], ...]  # (trajectory, worse ones of its task)

    @classmethod
    def build(cls, trajectories: Sequence[Trajectory]) -> Pools:
        with_progress = tuple(t for t in trajectories if t.has_progress and t.num_frames >= 3)
        by_task: dict[str, list[Trajectory]] = defaultdict(list)
        for t in trajectories:
            if t.quality_label is not None:
                by_task[t.task].append(t)
        pairs = []
        for t in trajectories:
            if t.quality_label is None:
                continue
            worse = tuple(o for o in by_task[t.task] if QUALITY_RANK[o.quality_label] < QUALITY_RANK[t.quality_label])
            if worse:
                pairs.append((t, worse))
        return cls(with_progress, tuple(pairs))


def _pick(rng: random.Random, weights: dict[str, float], available: set[str]) -> str:
    names = [n for n, w in weights.items() if w > 0 and n in available]
    if not names:
        raise NoSampleError(f"no strategy among {sorted(n for n, w in weights.items() if w > 0)} can draw a sample "
                            f"from these trajectories (available: {sorted(available) or 'none'})")
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def preference_strategies(pools: Pools, eval_mode: bool) -> set[str]:
    available = set()
    if pools.quality_pairs:
        available.add(schema.QUALITY_LABEL)
    if pools.progress and not eval_mode:
        available |= {schema.REWIND, schema.FORWARD_PROGRESS}
    return available


def _clip_end(rng: random.Random, traj: Trajectory) -> int:
    return rng.randint(traj.num_frames // 2, traj.num_frames - 1)


def _preference_pair(rng: random.Random, strategy: str, pools: Pools, max_frames: int
                     ) -> tuple[Trajectory, list[int], Trajectory, list[int]] | None:
    """(chosen, its indices, rejected, its indices), or None to draw again."""
    if strategy == schema.QUALITY_LABEL:
        better, worse = rng.choice(pools.quality_pairs)
        other = rng.choice(worse)
        return (better, even_indices(0, better.num_frames - 1, max_frames),
                other, even_indices(0, other.num_frames - 1, max_frames))
    traj = rng.choice(pools.progress)
    last = traj.num_frames - 1
    if strategy == schema.REWIND:
        end = _clip_end(rng, traj)
        back_to = rng.randint(0, end - 1)
        if end - back_to < max(1, last // 8):
            return None
        return traj, even_indices(0, end, max_frames), traj, rewind_indices(end, back_to, max_frames)
    end_a, end_b = rng.randint(1, last), rng.randint(1, last)
    if abs(end_a - end_b) < max(1, last // 8):
        return None
    late, early = max(end_a, end_b), min(end_a, end_b)
    return traj, even_indices(0, late, max_frames), traj, even_indices(0, early, max_frames)


def preference_sample(rng: random.Random, pools: Pools, *, max_frames: int, eval_mode: bool,
                      strategy_weights: dict[str, float]) -> dict[str, Any]:
    strategy = _pick(rng, strategy_weights, preference_strategies(pools, eval_mode))
    attempt, pair = 0, None
    while pair is None and attempt < MAX_RESAMPLE_ATTEMPTS:
        attempt += 1
        pair = _preference_pair(rng, strategy, pools, max_frames)
    if pair is None:
        raise NoSampleError(f"no valid {strategy!r} preference pair in {MAX_RESAMPLE_ATTEMPTS} attempts: "
                            "are the trajectories too short?")
    chosen, chosen_idx, rejected, rejected_idx = pair
    chosen_is_first = rng.random() < 0.5
    first, first_idx, second, second_idx = ((chosen, chosen_idx, rejected, rejected_idx) if chosen_is_first
                                            else (rejected, rejected_idx, chosen, chosen_idx))
    row = schema.empty_row()
    row.update(sample_type=schema.PREFERENCE, prompt=schema.PREFERENCE_PROMPT.format(task=chosen.task),
               answer="1" if chosen_is_first else "2", task=chosen.task, data_source=chosen.data_source,
               data_gen_strategy=strategy, resample_attempts=attempt,
               first_npz_path=first.npz_path, second_npz_path=second.npz_path,
               first_frame_indices=first_idx, second_frame_indices=second_idx,
               first_frames_shape=list(first.frames_shape), second_frames_shape=list(second.frames_shape),
               chosen_is_first=chosen_is_first)
    return row


def progress_sample(rng: random.Random, pools: Pools, *, max_frames: int, eval_mode: bool,
                    strategy_weights: dict[str, float]) -> dict[str, Any]:
    if not pools.progress:
        raise NoSampleError("progress samples need trajectories that reach the goal (quality_label 'successful' "
                            "or none) with at least 3 frames; there are none")
    weights = {schema.FORWARD_PROGRESS: 1.0} if eval_mode else strategy_weights
    strategy = _pick(rng, weights, set(schema.PROGRESS_STRATEGIES))
    traj = rng.choice(pools.progress)
    attempt = 1
    if strategy == schema.REWIND:
        end = _clip_end(rng, traj)
        indices = rewind_indices(end, rng.randint(0, end - 1), max_frames)
    else:
        indices = even_indices(0, rng.randint(1, traj.num_frames - 1), max_frames)
    target = progress_of(indices, traj.num_frames)
    row = schema.empty_row()
    row.update(sample_type=schema.PROGRESS, prompt=schema.PROGRESS_PROMPT.format(task=traj.task),
               answer=str(int(round(100 * target[-1]))), task=traj.task, data_source=traj.data_source,
               data_gen_strategy=strategy, resample_attempts=attempt, npz_path=traj.npz_path,
               frame_indices=indices, frames_shape=list(traj.frames_shape), target_progress=target)
    return row


def sample_rng(seed: int, index: int) -> random.Random:
    """The generator of sample ``index``: a function of the seed and the index only."""
    return random.Random(seed * 0x9E3779B1 + index)
