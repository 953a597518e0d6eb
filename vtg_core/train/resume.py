"""``vtg train --resume``: which run to continue, from which checkpoint, with which config.

``--resume`` alone continues the newest run of this task and method under the output directory
that has a complete checkpoint; ``--resume PATH`` takes a run directory, its ``checkpoints/``
folder, or one ``checkpoint-N`` inside it. The run keeps its directory and its saved
``config.yaml`` (the resolved config it started with: same data, model, seed, batch sizes), so the
continuation sees the same sample order; ``--set`` overrides given with ``--resume`` go on top
(e.g. a larger ``training.max_steps``). Training restarts from the newest *complete*
``checkpoint-N`` (see :mod:`vtg_core.train.checkpoints`): model, optimizer, scheduler, RNG states
and the position in the data all come back from it, through the Trainer's own resume.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .checkpoints import checkpoint_step, is_complete, latest_checkpoint

log = logging.getLogger(__name__)

LATEST = "latest"
CHECKPOINTS = "checkpoints"


def _run_dir_of(path: Path) -> tuple[Path, str | None]:
    """``(run_dir, checkpoint or None)`` for a run dir, its checkpoints folder or a checkpoint-N."""
    if checkpoint_step(path) is not None:
        if not is_complete(path):
            raise ConfigError(f"--resume {path}: this checkpoint is incomplete (an interrupted save?); "
                              f"pass its run directory to resume from the newest complete one")
        return path.parent.parent, str(path)
    if path.name == CHECKPOINTS and (path.parent / "config.yaml").is_file():
        return path.parent, None
    return path, None


def find_latest_run(root: Path, task: str, method: str) -> Path:
    """The run under ``root`` for ``task``/``method`` whose newest complete checkpoint is newest."""
    candidates = []
    if root.is_dir():
        for run in root.glob(f"{task}-{method}-*"):
            ckpt = latest_checkpoint(run / CHECKPOINTS)
            if ckpt and (run / "config.yaml").is_file():
                candidates.append((os.stat(ckpt).st_mtime, run))
    if not candidates:
        raise ConfigError(f"--resume: no run of task {task!r} ({method}) with a complete checkpoint under {root}; "
                          f"pass the run directory (--resume DIR) or --output-dir")
    return max(candidates)[1]


def resume_config(resume: str, config: Any, method: str, output_dir: str | None,
                  overrides: Sequence[str] = ()) -> tuple[Path, Any]:
    """``(run_dir, config)`` to continue; ``config`` is the run's saved one, ``overrides`` applied,
    ``training.resume_from_checkpoint`` set to the checkpoint to start from."""
    from ..config import load_config

    if resume == LATEST:
        run_dir, checkpoint = find_latest_run(Path(output_dir or config.training.output_dir), config.task,
                                              method), None
    else:
        path = Path(resume)
        if not path.is_dir():
            raise ConfigError(f"--resume {resume}: no such directory")
        run_dir, checkpoint = _run_dir_of(path)
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"--resume {run_dir}: not a vtg run directory (no config.yaml)")
    checkpoint = checkpoint or latest_checkpoint(run_dir / CHECKPOINTS)
    if checkpoint is None:
        raise ConfigError(f"--resume {run_dir}: no complete checkpoint in {run_dir / CHECKPOINTS} (the run stopped "
                          f"before its first save, training.save_steps); start it again instead")
    config = load_config([saved], [*overrides, f"training.resume_from_checkpoint={checkpoint}"])
    log.info("resuming run %s from %s", run_dir, checkpoint)
    return run_dir, config
