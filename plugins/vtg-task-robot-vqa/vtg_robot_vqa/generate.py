"""Generate a static VQA data set from trajectories: what ``vtg robot-vqa generate`` runs.

The sample types are fixed up front (exact counts from ``sample_type_ratio``, placed by a seeded
permutation); each sample is then drawn from its own generator (:func:`.sampling.sample_rng`),
so the rows do not depend on the number of workers. Rows are written in batches of
``save_batch_size`` (each worker writes whole batches to a temporary folder), then the batches
are concatenated memory-mapped into the output, so memory holds one batch per worker, not the
data set. The output is a Hugging Face dataset (``save_to_disk``) plus ``generation_config.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import yaml

from vtg_core.errors import ConfigError

from . import __version__, schema
from .sampling import NoSampleError, Pools, preference_sample, progress_sample, sample_rng
from .trajectories import Trajectory, load_trajectories

log = logging.getLogger(__name__)


def _ratio(value: Any) -> tuple[float, float, float]:
    if isinstance(value, str):
        value = yaml.safe_load(value)
    if (not isinstance(value, list | tuple) or len(value) != 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise ConfigError(f"sample_type_ratio must be three numbers >= 0 [preference, progress, similarity], "
                          f"got {value!r}")
    if sum(value) <= 0:
        raise ConfigError(f"sample_type_ratio {list(value)} sums to 0; at least one type needs a share")
    if value[2] > 0:
        raise ConfigError(f"sample_type_ratio {list(value)} asks for similarity samples, which are not generated "
                          "yet (seed 004 lists them as future work); set the third value to 0")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _weights(value: Any, names: tuple[str, ...], key: str) -> dict[str, float]:
    if isinstance(value, str):
        value = yaml.safe_load(value)
    if not isinstance(value, dict) or any(k not in names for k in value):
        raise ConfigError(f"{key} must map strategies among {list(names)} to weights, got {value!r}")
    if any(not isinstance(v, int | float) or isinstance(v, bool) or v < 0 for v in value.values()):
        raise ConfigError(f"{key} weights must be numbers >= 0, got {value!r}")
    return {k: float(value[k]) for k in names if k in value}


@attrs.define(kw_only=True)
class GenerationConfig:
    """Everything that decides the rows (recorded in ``generation_config.json``)."""

    num_samples: int = 10000
    seed: int = 42
    sample_type_ratio: tuple[float, float, float] = attrs.field(default=(0.7, 0.3, 0.0), converter=_ratio)
    max_frames: int = 16
    eval_mode: bool = False
    preference_strategy_ratio: dict[str, float] = attrs.field(
        factory=lambda: {schema.REWIND: 1.0, schema.FORWARD_PROGRESS: 1.0, schema.QUALITY_LABEL: 1.0},
        converter=lambda v: _weights(v, schema.PREFERENCE_STRATEGIES, "preference_strategy_ratio"))
    progress_strategy_ratio: dict[str, float] = attrs.field(
        factory=lambda: {schema.FORWARD_PROGRESS: 1.0, schema.REWIND: 0.0},
        converter=lambda v: _weights(v, schema.PROGRESS_STRATEGIES, "progress_strategy_ratio"))

    def __attrs_post_init__(self) -> None:
        for name in ("num_samples", "max_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "num_samples" else 2):
                raise ConfigError(f"{name} must be an integer >= {1 if name == 'num_samples' else 2}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")

    def with_overrides(self, overrides: list[str]) -> GenerationConfig:
        """Apply seed-style ``key=value`` overrides (``data.max_frames=16``; the ``data.`` prefix is optional)."""
        fields = {f.name for f in attrs.fields(GenerationConfig)}
        changes: dict[str, Any] = {}
        for item in overrides:
            key, sep, text = item.partition("=")
            name = key.strip().removeprefix("data.")
            if not sep or name not in fields:
                raise ConfigError(f"config override {item!r}: expected KEY=VALUE with KEY among {sorted(fields)}")
            try:
                changes[name] = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ConfigError(f"config override {item!r}: cannot read the value: {exc}") from exc
        return attrs.evolve(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["sample_type_ratio"] = list(self.sample_type_ratio)
        return data


def type_counts(num_samples: int, ratio: tuple[float, float, float]) -> list[int]:
    """Exact counts per type (largest remainder), summing to ``num_samples``."""
    total = sum(ratio)
    raw = [num_samples * r / total for r in ratio]
    counts = [int(x) for x in raw]
    for i in sorted(range(3), key=lambda i: (counts[i] - raw[i], i))[: num_samples - sum(counts)]:
        counts[i] += 1
    return counts


def type_plan(config: GenerationConfig) -> np.ndarray:
    """Sample type code (index into ``schema.SAMPLE_TYPES``) of every sample, seeded."""
    counts = type_counts(config.num_samples, config.sample_type_ratio)
    codes = np.repeat(np.arange(3, dtype=np.int8), counts)
    return np.random.default_rng(config.seed).permutation(codes)


# -- per-process state: set once per worker (fork or spawn), not pickled per task ---------------------
_STATE: dict[str, Any] = {}


def _init_worker(trajectories: list[Trajectory], config: GenerationConfig, plan: np.ndarray) -> None:
    _STATE.update(pools=Pools.build(trajectories), config=config, plan=plan)


def make_rows(start: int, stop: int) -> list[dict[str, Any]]:
    """Rows ``start .. stop - 1`` (the per-process state must be set)."""
    pools, config, plan = _STATE["pools"], _STATE["config"], _STATE["plan"]
    rows = []
    for i in range(start, stop):
        rng = sample_rng(config.seed, i)
        make = preference_sample if plan[i] == 0 else progress_sample
        weights = config.preference_strategy_ratio if plan[i] == 0 else config.progress_strategy_ratio
        rows.append(make(rng, pools, max_frames=config.max_frames, eval_mode=config.eval_mode,
                         strategy_weights=weights))
    return rows


def rows_to_dataset(rows: list[dict[str, Any]], fingerprint: str) -> Any:
    import pyarrow as pa
    from datasets import Dataset, DatasetInfo

    feats = schema.features()
    table = pa.Table.from_pylist(rows, schema=feats.arrow_schema)
    return Dataset(table, info=DatasetInfo(features=feats), fingerprint=fingerprint)


def _write_batch(args: tuple[int, int, str, str]) -> tuple[str, dict[str, int]]:
    start, stop, folder, fingerprint = args
    rows = make_rows(start, stop)
    rows_to_dataset(rows, fingerprint).save_to_disk(folder)
    return folder, dict(Counter(f"{r['sample_type']}/{r['data_gen_strategy']}" for r in rows))


def _fingerprint(config: GenerationConfig, trajectories: list[Trajectory], part: str) -> str:
    text = json.dumps([config.to_dict(), [attrs.astuple(t) for t in trajectories], part], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def resolve_workers(num_workers: int) -> int:
    if num_workers == -1:
        return os.cpu_count() or 1
    if num_workers < 1:
        raise ConfigError(f"--num_workers must be -1 (all cores) or >= 1, got {num_workers}")
    return num_workers


def generate_dataset(trajectories: list[Trajectory] | str | os.PathLike[str], output_path: str | os.PathLike[str],
                     config: GenerationConfig, *, num_workers: int = 1, save_batch_size: int = 10000,
                     npz_root: str | None = None, source: str | None = None) -> dict[str, Any]:
    """Write the data set to ``output_path``; return what ``generation_config.json`` records."""
    if not isinstance(trajectories, list):
        source = os.fspath(trajectories)
        trajectories = load_trajectories(source, npz_root=npz_root)
    workers = resolve_workers(num_workers)
    if save_batch_size != -1 and save_batch_size < 1:
        raise ConfigError(f"--save_batch_size must be -1 (save all at once) or >= 1, got {save_batch_size}")
    out = Path(output_path)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output path {out} exists and is not empty; choose a new folder")
    plan = type_plan(config)
    # Fail now, in the parent, with a clear message, if a requested type cannot be drawn at all.
    _init_worker(trajectories, config, plan)
    for code in sorted(set(plan.tolist())):
        first = int(np.argmax(plan == code))
        try:
            make_rows(first, first + 1)
        except NoSampleError as exc:
            raise ConfigError(f"cannot generate {schema.SAMPLE_TYPES[code]} samples: {exc}") from None

    batch = config.num_samples if save_batch_size == -1 else save_batch_size
    ranges = [(s, min(s + batch, config.num_samples)) for s in range(0, config.num_samples, batch)]
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    bars_were_off = are_progress_bars_disabled()
    disable_progress_bars()  # one "Saving the dataset" bar per batch says nothing useful
    try:
        _generate(trajectories, out, config, plan, workers, save_batch_size, ranges, counts)
    finally:
        if not bars_were_off:
            enable_progress_bars()
    record = {
        "generator": f"vtg-task-robot-vqa {__version__}",
        "source": os.path.abspath(source) if source else None,
        "npz_root": os.path.abspath(npz_root) if npz_root else (_default_root(source) if source else None),
        "num_trajectories": len(trajectories),
        **config.to_dict(),
        "sample_types": {t: int((plan == i).sum()) for i, t in enumerate(schema.SAMPLE_TYPES)},
        "strategies": dict(sorted(counts.items())),
        "fields": list(schema.ALL_FIELDS),
        # How it was run: changes neither the rows nor the files of the data set.
        "runtime": {"num_workers": workers, "save_batch_size": save_batch_size},
    }
    (out / "generation_config.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _generate(trajectories, out, config, plan, workers, save_batch_size, ranges, counts) -> None:
    with tempfile.TemporaryDirectory(prefix=".vtg-robot-vqa-", dir=out.parent) as tmp:
        jobs = [(s, e, os.path.join(tmp, f"batch_{k:06d}"), _fingerprint(config, trajectories, f"{s}:{e}"))
                for k, (s, e) in enumerate(ranges)]
        if save_batch_size == -1:
            dataset = _all_at_once(trajectories, config, plan, workers, jobs[0][3], counts)
        else:
            dataset = _in_batches(trajectories, config, plan, workers, jobs, counts)
        dataset.save_to_disk(str(out))


def _default_root(source: str) -> str:
    return os.path.abspath(source) if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))


def _pool(workers: int, trajectories: list[Trajectory], config: GenerationConfig, plan: np.ndarray) -> Any:
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    return ctx.Pool(workers, initializer=_init_worker, initargs=(trajectories, config, plan))


def _all_at_once(trajectories, config, plan, workers, fingerprint, counts) -> Any:
    n = config.num_samples
    if workers == 1:
        rows = make_rows(0, n)
    else:
        step = -(-n // (workers * 4))
        with _pool(workers, trajectories, config, plan) as pool:
            parts = pool.starmap(make_rows, [(s, min(s + step, n)) for s in range(0, n, step)])
        rows = [r for part in parts for r in part]
    counts.update(f"{r['sample_type']}/{r['data_gen_strategy']}" for r in rows)
    return rows_to_dataset(rows, fingerprint)


def _in_batches(trajectories, config, plan, workers, jobs, counts) -> Any:
    from datasets import concatenate_datasets, load_from_disk

    if workers == 1 or len(jobs) == 1:
        results = map(_write_batch, jobs)
        folders = []
        for folder, c in results:
            folders.append(folder)
            counts.update(c)
    else:
        with _pool(workers, trajectories, config, plan) as pool:
            folders = []
            for folder, c in pool.imap(_write_batch, jobs):
                folders.append(folder)
                counts.update(c)
    parts = [load_from_disk(f) for f in folders]
    dataset = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    # Memory-mapped parts: the concatenation holds no rows in memory; save_to_disk streams them.
    return dataset
