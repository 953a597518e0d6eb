"""Read the trajectories a data set is generated from: a JSONL index or a Hugging Face dataset on disk.

Each trajectory row has ``task`` (instruction text), ``frames`` (path of a ``.npz`` file holding a
``T x H x W x 3`` array; ``npz_path`` is accepted as the key too), ``data_source`` and, optionally,
``quality_label`` (``successful`` / ``suboptimal`` / ``failure``) or ``success`` (boolean) and
``id``. Relative npz paths resolve against the index file's folder (or ``npz_root``).

Frames are never loaded here: the array shape is read from the ``.npy`` header inside the npz,
so a million-sample data set is generated without touching pixel data.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from vtg_core.data.annotations import RowReader, load_rows
from vtg_core.data.sample import Location
from vtg_core.errors import DataError
from vtg_core.tasks.base import RowProblem

QUALITY_RANK = {"failure": 0, "suboptimal": 1, "successful": 2}
FRAMES_KEY = "frames"


@attrs.frozen
class Trajectory:
    """One trajectory: where its frames are and what it shows (no pixels)."""

    id: str
    task: str
    npz_path: str  # as written in the index (relative paths stay relative in the data set)
    resolved_path: str
    data_source: str
    quality_label: str | None
    frames_shape: tuple[int, ...]

    @property
    def num_frames(self) -> int:
        return self.frames_shape[0]

    @property
    def has_progress(self) -> bool:
        """Progress along time is defined for trajectories that reach the goal (or carry no label)."""
        return self.quality_label in (None, "successful")


def npz_array_name(path: str) -> str:
    """The member of ``path`` holding the frames: ``frames``, or the only array."""
    with zipfile.ZipFile(path) as zf:
        names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    if FRAMES_KEY in names:
        return FRAMES_KEY
    if len(names) == 1:
        return names[0]
    raise DataError(f"{path}: expected an array named {FRAMES_KEY!r} or a single array, found {sorted(names)}")


def npz_shape(path: str) -> tuple[int, ...]:
    """Shape of the frames array in ``path`` read from its header, without loading the data."""
    name = npz_array_name(path)
    with zipfile.ZipFile(path) as zf, zf.open(name + ".npy") as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(fp)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(fp)
    return tuple(int(s) for s in shape)


def _validate(where: Location, row: dict[str, Any], root: str, shapes: dict[str, tuple[int, ...]]
              ) -> Trajectory | list[Any]:
    r = RowReader(row, where)
    task = r.text("task")
    key = "frames" if "frames" in row or "npz_path" not in row else "npz_path"
    npz = r.text(key)
    source = r.text("data_source")
    quality = r.text("quality_label", required=False)
    success = r.get("success", bool, required=False)
    if quality is not None and quality not in QUALITY_RANK:
        r.problem("quality_label", f"must be one of {sorted(QUALITY_RANK)}, got {quality!r}", "out_of_range")
    if quality is None and success is not None:
        quality = "successful" if success else "failure"
    ident = row.get("id")
    if ident is not None and not isinstance(ident, str | int):
        r.problem("id", f"expected a string or integer, got {type(ident).__name__}", "wrong_type")
    shape: tuple[int, ...] | None = None
    resolved = ""
    if npz is not None:
        resolved = npz if os.path.isabs(npz) else os.path.join(root, npz)
        if resolved in shapes:
            shape = shapes[resolved]
        elif not os.path.isfile(resolved):
            r.problem(key, f"npz file not found: {resolved}", "missing_file")
        else:
            try:
                shape = npz_shape(resolved)
            except (OSError, ValueError, zipfile.BadZipFile, DataError) as exc:
                r.problem(key, f"cannot read the frames array of {resolved}: {exc}", "bad_npz")
        if shape is not None:
            if len(shape) != 4 or shape[-1] != 3:
                r.problem(key, f"{resolved}: frames must be T x H x W x 3, got shape {list(shape)}", "bad_npz")
            elif shape[0] < 2:
                r.problem(key, f"{resolved}: a trajectory needs at least 2 frames, got {shape[0]}", "bad_npz")
            shapes[resolved] = shape
    if r.problems:
        return r.problems
    return Trajectory(id=str(ident) if ident is not None else str(where), task=task, npz_path=npz,
                      resolved_path=resolved, data_source=source, quality_label=quality, frames_shape=shape)


def _dataset_rows(path: str):
    from datasets import load_from_disk

    ds = load_from_disk(path)
    if hasattr(ds, "keys") and not hasattr(ds, "column_names"):  # a DatasetDict: take its only split
        splits = list(ds.keys())
        if len(splits) != 1:
            raise DataError(f"{path}: a DatasetDict with splits {splits}; save the trajectory split on its own")
        ds = ds[splits[0]]
    for i, row in enumerate(ds):
        yield Location(path, index=i), dict(row)


def is_dataset_dir(path: str | os.PathLike[str]) -> bool:
    """True for a folder written by ``save_to_disk`` (a Dataset or a DatasetDict)."""
    p = Path(path)
    return p.is_dir() and ((p / "state.json").is_file() or (p / "dataset_dict.json").is_file())


def load_trajectories(path: str | os.PathLike[str], *, npz_root: str | None = None) -> list[Trajectory]:
    """Every trajectory of ``path``; any invalid row stops with its location, field and reason."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"trajectory index not found: {path}")
    if os.path.isdir(path):
        if not is_dataset_dir(path):
            raise DataError(f"{path} is a folder but not a Hugging Face dataset saved with save_to_disk; "
                            "pass a JSONL index or a dataset folder")
        rows = _dataset_rows(path)
        root = npz_root or path
    else:
        rows = load_rows(path)
        root = npz_root or os.path.dirname(os.path.abspath(path))
    shapes: dict[str, tuple[int, ...]] = {}
    trajectories: list[Trajectory] = []
    problems: list[RowProblem] = []
    for where, row in rows:
        result = row if isinstance(row, RowProblem) else _validate(where, row, root, shapes)
        if isinstance(result, Trajectory):
            trajectories.append(result)
        else:
            problems.extend([result] if isinstance(result, RowProblem) else result)
    if problems:
        shown = "\n".join(f"  {p}  [{p.code}]" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"{path}: {len(problems)} problem(s) in the trajectory rows:\n{shown}{more}")
    if not trajectories:
        raise DataError(f"{path} holds no trajectories")
    return trajectories
