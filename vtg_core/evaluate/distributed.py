"""Evaluation split across processes (torchrun / accelerate launch), merged back in order.

Each rank takes a strided shard of the samples (``rank, rank + world, ...``), generates its
answers and writes them to a part file; rank 0 waits until every part exists, puts the answers
back in the data file's order and scores them exactly as a single process would. Parsing and
scoring happen once, on rank 0, over the merged answers, so the metrics cannot differ from a
single-process run's except through the answers themselves.

Waiting: when ``torch.distributed`` is initialised (``init_from_env`` starts a gloo group under a
launcher that sets ``MASTER_ADDR``), every rank meets at a barrier after writing; otherwise rank 0
polls the part files until a timeout, which also lets shards run as separate jobs on a cluster.

Part files are written atomically (a part that exists is complete) into
``<output_dir>/.parts-<run token>/``; the token hashes what decides the answers, so a part left by
an earlier, different run is never merged. Rank 0 removes the folder after merging.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..errors import VtgError
from .predictions import atomic_write_text

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 1800.0


@attrs.frozen
class DistContext:
    """Where this process sits: ``rank`` of ``world_size`` (``local_rank`` picks its GPU)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def context_from_env(environ: Mapping[str, str] | None = None) -> DistContext:
    """``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` as torchrun and accelerate set them."""
    env = os.environ if environ is None else environ

    def number(name: str, default: int) -> int:
        value = env.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError as exc:
            raise VtgError(f"environment variable {name}={value!r} is not an integer") from exc

    world = number("WORLD_SIZE", 1)
    rank = number("RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise VtgError(f"RANK={rank} is not within WORLD_SIZE={world}; check the launcher's settings")
    return DistContext(rank=rank, world_size=world, local_rank=number("LOCAL_RANK", rank))


def shard(items: Sequence[T], rank: int, world_size: int) -> list[tuple[int, T]]:
    """``(index, item)`` of this rank's strided share.

    Striding rather than cutting into blocks keeps the shards alike when a data file is sorted by
    length or difficulty, so ranks finish at about the same time.
    """
    return [(i, items[i]) for i in range(rank, len(items), world_size)]


def init_from_env(ctx: DistContext) -> bool:
    """Start a gloo process group when a launcher asked for several processes and none is running.

    Returns True when this call started it (the caller then ends it with :func:`shutdown`).
    gloo works on CPU-only machines and for a barrier on GPU machines alike; nothing but the
    barrier travels through it.
    """
    if not ctx.distributed or "MASTER_ADDR" not in os.environ:
        return False
    import torch.distributed as dist

    if not dist.is_available() or dist.is_initialized():
        return False
    dist.init_process_group("gloo", rank=ctx.rank, world_size=ctx.world_size)
    return True


def _initialised() -> bool:
    import sys

    if "torch" not in sys.modules:  # nothing can have started a group without importing torch
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> bool:
    """Wait for every rank when a process group is running; False when there is none."""
    if not _initialised():
        return False
    import torch.distributed as dist

    dist.barrier()
    return True


def shutdown(started: bool) -> None:
    if started and _initialised():
        import torch.distributed as dist

        dist.destroy_process_group()


def parts_dir(output_dir: str | os.PathLike[str], token: str) -> Path:
    return Path(output_dir) / f".parts-{token}"


def part_path(output_dir: str | os.PathLike[str], token: str, rank: int, world_size: int) -> Path:
    return parts_dir(output_dir, token) / f"rank-{rank:05d}-of-{world_size:05d}.jsonl"


def write_part(output_dir: str | os.PathLike[str], token: str, ctx: DistContext,
               records: Sequence[tuple[int, str, str]]) -> Path:
    """Write this rank's ``(index, sample_id, raw answer)`` records; returns the part's path."""
    path = part_path(output_dir, token, ctx.rank, ctx.world_size)
    text = "".join(json.dumps({"index": i, "sample_id": sid, "raw": raw}, ensure_ascii=False) + "\n"
                   for i, sid, raw in records)
    atomic_write_text(path, text)
    return path


def wait_for_parts(output_dir: str | os.PathLike[str], token: str, world_size: int, *,
                   timeout: float = DEFAULT_TIMEOUT_S, poll: float = 0.5) -> list[Path]:
    """Paths of every rank's part, waiting up to ``timeout`` seconds for the missing ones."""
    paths = [part_path(output_dir, token, r, world_size) for r in range(world_size)]
    deadline = time.monotonic() + timeout
    while True:
        missing = [p for p in paths if not p.is_file()]
        if not missing:
            return paths
        if time.monotonic() >= deadline:
            names = ", ".join(p.name for p in missing)
            raise VtgError(f"evaluation shards did not finish within {timeout:g} s: missing {names} in "
                           f"{parts_dir(output_dir, token)}. A rank crashed or is still running; rerun it "
                           f"(finished parts are kept) or raise --shard-timeout.")
        time.sleep(poll)


def merge_parts(paths: Sequence[Path], sample_ids: Sequence[str]) -> list[str]:
    """Raw answers of every sample, in the original order, from the ranks' parts.

    Checks that each index arrives exactly once and belongs to the same sample as here: ranks
    that read a different data file or shard differently would otherwise be merged silently.
    """
    answers: list[str | None] = [None] * len(sample_ids)
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                rec = json.loads(line)
                i = rec["index"]
                if not 0 <= i < len(sample_ids) or answers[i] is not None:
                    raise VtgError(f"{path}: index {i} is out of range or given twice; the ranks disagree "
                                   "about the data (same --data, --set and world size on every rank?)")
                if rec["sample_id"] != sample_ids[i]:
                    raise VtgError(f"{path}: index {i} is sample {rec['sample_id']!r} there but "
                                   f"{sample_ids[i]!r} here; every rank must read the same data file")
                answers[i] = rec["raw"]
    missing = [sample_ids[i] for i, a in enumerate(answers) if a is None]
    if missing:
        raise VtgError(f"the shards hold no answer for {len(missing)} sample(s), e.g. {missing[:3]}")
    return [a for a in answers if a is not None]


def gather_answers(output_dir: str | os.PathLike[str], token: str, ctx: DistContext,
                   records: Sequence[tuple[int, str, str]], sample_ids: Sequence[str], *,
                   timeout: float = DEFAULT_TIMEOUT_S) -> list[str] | None:
    """Write this rank's part; on rank 0 wait, merge and clean up. Other ranks get ``None``."""
    write_part(output_dir, token, ctx, records)
    synced = barrier()
    if not ctx.is_main:
        return None
    # After a barrier every part is written; the short wait only covers a shared file system
    # (NFS) showing another node's rename late.
    paths = wait_for_parts(output_dir, token, ctx.world_size, timeout=min(timeout, 60.0) if synced else timeout)
    answers = merge_parts(paths, sample_ids)
    shutil.rmtree(parts_dir(output_dir, token), ignore_errors=True)
    return answers


def run_token(parts: Mapping[str, Any]) -> str:
    """Short hash naming one run's part folder (see the module docstring)."""
    from .manifest import sha256_json

    return sha256_json(parts)[:12]
