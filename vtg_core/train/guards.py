"""Trainer callbacks that keep a run's work: stop cleanly on a signal, refuse non-finite steps.

- :class:`GracefulStop`: SIGTERM (preemption) or SIGINT (Ctrl-C) lets the current optimizer step
  finish, then the Trainer saves a checkpoint and stops; the caller raises
  :class:`~vtg_core.errors.TrainingInterrupted` saying how to resume. A second signal while
  waiting stops at once (the default behaviour).
- :class:`NonFiniteGuard`: before each optimizer step, checks the step's losses and gradients. A
  non-finite one means the step is not applied (every gradient is dropped, so the optimizer moves
  no weight and no moment). ``policy="stop"`` (default) raises
  :class:`~vtg_core.errors.NonFiniteError` naming the step, the batch's sample ids and the last
  complete checkpoint; ``policy="skip"`` goes on, counting and logging each skipped step, and
  stops the same way once more than ``max_skips`` steps were skipped.

The trainer tells the guard what it saw through :meth:`NonFiniteGuard.observe` (called from
``training_step`` with the micro-batch's loss and sample ids); a trainer that does not call it
still gets the gradient check.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from typing import Any

from transformers import TrainerCallback

from ..errors import NonFiniteError
from .checkpoints import latest_checkpoint

log = logging.getLogger(__name__)

NONFINITE_POLICIES = ("stop", "skip")


class GracefulStop(TrainerCallback):
    """Turns SIGTERM / SIGINT into "finish this step, save, stop"; see the module docstring."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.received).name if self.received is not None else None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # asked twice: stop now, as without this callback
            self.restore()
            handler = signal.getsignal(signum)
            if callable(handler):
                handler(signum, frame)
            else:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)
            return
        self.received = signum
        log.warning("%s received: finishing the current step, then saving a checkpoint and stopping "
                    "(send it again to stop at once)", signal.Signals(signum).name)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return  # signal handlers can only be set from the main thread
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.install()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.restore()


class NonFiniteGuard(TrainerCallback):
    """Refuses optimizer steps with a non-finite loss or gradient; see the module docstring."""

    def __init__(self, policy: str = "stop", max_skips: int = 10, checkpoint_dir: str | None = None):
        if policy not in NONFINITE_POLICIES:
            raise ValueError(f"unknown non-finite policy {policy!r}; expected one of {', '.join(NONFINITE_POLICIES)}")
        self.policy = policy
        self.max_skips = int(max_skips)
        self.checkpoint_dir = checkpoint_dir
        self.skipped: list[int] = []
        self._ids: list[str] = []
        self._bad_losses: list[float] = []

    def observe(self, loss: Any, sample_ids: Any = None) -> None:
        """Record one micro-batch of the current step: its loss and the ids of its samples."""
        if sample_ids:
            self._ids.extend(str(i) for i in sample_ids)
        value = float(loss.detach().float().sum()) if hasattr(loss, "detach") else float(loss)
        if not math.isfinite(value):
            self._bad_losses.append(value)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._ids, self._bad_losses = [], []

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        bad_grads = _nonfinite_gradients(model) if model is not None else []
        if not self._bad_losses and not bad_grads:
            return
        step = state.global_step + 1
        what = []
        if self._bad_losses:
            what.append(f"loss {self._bad_losses[0]}")
        if bad_grads:
            shown = ", ".join(bad_grads[:3]) + (f" and {len(bad_grads) - 3} more" if len(bad_grads) > 3 else "")
            what.append(f"non-finite gradients in {shown}")
        ids = ", ".join(self._ids[:16]) + (" ..." if len(self._ids) > 16 else "") if self._ids else "unknown"
        last = latest_checkpoint(self.checkpoint_dir or args.output_dir)
        _drop_gradients(model)  # whatever happens next, this step must not move the weights
        self.skipped.append(step)
        if self.policy == "skip" and len(self.skipped) <= self.max_skips:
            log.warning("step %d skipped (training.on_nonfinite=skip, %d of at most %d): %s; batch samples: %s",
                        step, len(self.skipped), self.max_skips, "; ".join(what), ids)
            return
        why = (f"more than training.max_nonfinite_steps={self.max_skips} steps had to be skipped "
               f"(steps {', '.join(map(str, self.skipped))})" if self.policy == "skip" else "training.on_nonfinite=stop")
        raise NonFiniteError(
            f"step {step}: {'; '.join(what)}; the step was not applied and training stopped ({why}). "
            f"Batch samples: {ids}. Last good checkpoint: {last or 'none yet'}. Lower the learning rate, "
            f"check those samples, or set training.on_nonfinite=skip to skip such steps.",
            step=step, sample_ids=list(self._ids), checkpoint=last)


def _nonfinite_gradients(model: Any) -> list[str]:
    import torch

    named = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    if not named:
        return []
    flags = torch.stack([torch.isfinite(g).all().to(named[0][1].device) for _, g in named])
    if bool(flags.all()):  # one device sync per step on the usual path
        return []
    return [name for (name, _), ok in zip(named, flags.tolist(), strict=True) if not ok]


def _drop_gradients(model: Any) -> None:
    # torch optimizers skip parameters whose .grad is None: no update, no moment, no weight decay.
    if model is None:
        return
    for param in model.parameters():
        param.grad = None
