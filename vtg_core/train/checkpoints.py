"""Trainer checkpoints that appear whole or not at all, and finding the one to resume from.

The Hugging Face ``Trainer`` writes ``checkpoint-N`` in place, file after file, then prunes old
ones (``save_total_limit``) before its ``on_save`` callbacks have even run: a kill in the middle
leaves a directory that ``get_last_checkpoint`` (and a resume) would pick up, with its optimizer,
RNG state or vtg files missing. :class:`AtomicCheckpointMixin` changes where it writes:

1. everything (weights, optimizer, scheduler, RNG states, ``trainer_state.json``, then the files
   of callbacks that define ``before_checkpoint_commit(folder)``, e.g. vtg's config and metadata)
   goes into ``<output_dir>/.vtg-staging/checkpoint-N``;
2. the files are flushed to disk and the folder is renamed to ``<output_dir>/checkpoint-N``
   (one ``rename``, atomic on POSIX file systems);
3. only then are old checkpoints pruned to ``save_total_limit``.

A kill at any point leaves either no ``checkpoint-N`` or a complete one; a half-written folder stays
under ``.vtg-staging`` (never read, cleared at the next save). :func:`latest_checkpoint` finds the
newest complete one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STAGING_DIR = ".vtg-staging"
TRAINER_STATE = "trainer_state.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    """``N`` of a ``checkpoint-N`` folder name, else None."""
    m = _CHECKPOINT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def is_complete(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a complete Trainer checkpoint: its trainer state (written last by the
    Trainer) and weights in safetensors are there."""
    path = Path(path)
    if not (path / TRAINER_STATE).is_file():
        return False
    return any(path.glob("*.safetensors"))


def latest_checkpoint(directory: str | os.PathLike[str]) -> str | None:
    """The complete ``checkpoint-N`` with the highest ``N`` in ``directory``, or None.

    Folders under ``.vtg-staging`` (a save that was interrupted) and incomplete folders (written by
    an older, non-atomic save) are never returned.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = []
    for child in directory.iterdir():
        step = checkpoint_step(child)
        if step is not None and child.is_dir():
            if is_complete(child):
                found.append((step, child))
            else:
                log.warning("ignoring incomplete checkpoint %s (no %s or no weights)", child, TRAINER_STATE)
    return str(max(found)[1]) if found else None


def _fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` and the folder itself, so the rename publishes data on disk."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def commit_folder(staged: Path, target: Path) -> None:
    """Rename ``staged`` to ``target``; an existing ``target`` is replaced only after that."""
    _fsync_tree(staged)
    old = None
    if target.exists():  # saving the same step twice: keep the old one until the new one is in place
        old = target.parent / f"{STAGING_DIR}" / f"{target.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(staged, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class AtomicCheckpointMixin:
    """Put before ``transformers.Trainer`` in a subclass's bases; see the module docstring."""

    _vtg_staging_root: str | None = None

    def _get_output_dir(self, trial: Any) -> str:
        if self._vtg_staging_root is not None:
            return self._vtg_staging_root
        return super()._get_output_dir(trial)  # type: ignore[misc]

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        from transformers.trainer_utils import rotate_checkpoints

        args = self.args  # type: ignore[attr-defined]
        state = self.state  # type: ignore[attr-defined]
        run_dir = Path(self._get_output_dir(trial))
        name = f"checkpoint-{state.global_step}"
        staging = run_dir / STAGING_DIR
        if args.should_save:
            # Leftovers of an interrupted save are never resumed from: clear them.
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True, exist_ok=True)
        self.accelerator.wait_for_everyone()  # type: ignore[attr-defined]
        limit = args.save_total_limit
        self._vtg_staging_root = str(staging)
        args.save_total_limit = None  # pruning waits until the new checkpoint is complete
        try:
            super()._save_checkpoint(model, trial)  # type: ignore[misc]
        finally:
            self._vtg_staging_root = None
            args.save_total_limit = limit
        # Every rank has written its part (DeepSpeed shards) before rank 0 publishes the folder.
        self.accelerator.wait_for_everyone()  # type: ignore[attr-defined]
        staged, target = staging / name, run_dir / name
        best = state.best_model_checkpoint
        if best and Path(best).parent == staging:
            state.best_model_checkpoint = str(run_dir / Path(best).name)
        if args.should_save:
            for callback in self.callback_handler.callbacks:  # type: ignore[attr-defined]
                write = getattr(callback, "before_checkpoint_commit", None)
                if callable(write):
                    write(staged, state)
            commit_folder(staged, target)
            shutil.rmtree(staging, ignore_errors=True)
            log.info("checkpoint %s complete", target)
            rotate_checkpoints(output_dir=str(run_dir), save_total_limit=limit,
                               best_model_checkpoint=state.best_model_checkpoint, use_mtime=False)
        self.accelerator.wait_for_everyone()  # type: ignore[attr-defined]
