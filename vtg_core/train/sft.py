"""Supervised fine-tuning on video conversations: transformers ``Trainer`` + the video collator.

Why not TRL's ``SFTTrainer``: in trl 1.16 its vision path handles images only (it has no notion of
``pixel_values_videos`` / ``video_grid_thw``), and with a custom collator and pre-encoded
examples it adds nothing over ``Trainer`` but its own dataset preparation to switch off. Here the
dataset (:class:`~vtg_core.train.dataset.VideoSampleDataset`) encodes each sample with labels on
the answer tokens only, the collator pads, and a small ``Trainer`` subclass builds the optimizer
from the backend's per-part parameter groups (``learning_rate`` / ``mm_projector_lr`` /
``vision_tower_lr`` / ``head_lr``).

The config's ``training`` section maps onto ``TrainingArguments`` (see :func:`training_arguments`);
progress bars are the Trainer's; ``training.report_to`` is passed through.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from ..data.sample import Sample
from .bad_samples import TrackedCollator, TrackedDataset, VideoFailures
from .checkpoints import AtomicCheckpointMixin, latest_checkpoint
from .collate import VideoCollator
from .dataset import VideoSampleDataset
from .guards import GracefulStop, NonFiniteGuard

log = logging.getLogger(__name__)

FINAL_DIR = "final"


@attrs.define
class SFTResult:
    """What :func:`run_sft` returns.

    ``checkpoint``: the final complete checkpoint (load it with ``load_checkpoint``);
    ``metrics``: the Trainer's train metrics (``train_loss``, runtime...) plus ``eval_*`` when an
    evaluation set was given; ``log_history``: every logged step.
    """

    output_dir: str
    checkpoint: str
    metrics: dict[str, float]
    log_history: list[dict[str, Any]]
    added_tokens: list[str] = attrs.field(factory=list)
    model: Any = attrs.field(default=None, repr=False)
    processor: Any = attrs.field(default=None, repr=False)


def _cuda() -> bool:
    return torch.cuda.is_available()


def training_arguments(
    config: Any, output_dir: str | os.PathLike[str], *, has_eval: bool
) -> TrainingArguments:
    """``TrainingArguments`` from a ``VtgConfig`` (seed 000's ``sft_config.yaml`` keys).

    Mixed precision needs a GPU: ``bf16`` / ``fp16`` are switched off on a CPU-only machine (the
    model is loaded in float32 there, see :mod:`vtg_core.backends.loading`). Gradient
    checkpointing is enabled by the backend, not here, so it is set up once for peft models.
    """
    t = config.training
    dl = getattr(config, "dataloader", None)
    bf16 = bool(t.bf16) and _cuda() and torch.cuda.is_bf16_supported()
    fp16 = bool(t.fp16) and _cuda()
    if (t.bf16 and not bf16) or (t.fp16 and not fp16):
        log.info("mixed precision (training.bf16/fp16) needs a CUDA GPU: training in float32")
    num_workers = int(getattr(dl, "num_workers", 0) or 0)
    # More decoding workers than cores only adds contention (and torch warns about it).
    num_workers = min(num_workers, os.cpu_count() or 1)
    eval_strategy = t.eval_strategy if has_eval else "no"
    from .distributed_deepspeed import deepspeed_for_run

    deepspeed = deepspeed_for_run(config, output_dir, micro_batch=getattr(config, "train_batch_size", 1),
                                  bf16=bf16, fp16=fp16)
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": t.learning_rate,
        "per_device_train_batch_size": getattr(config, "train_batch_size", t.per_device_train_batch_size),
        "per_device_eval_batch_size": getattr(getattr(config, "validation", None), "batch_size", 1) or 1,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "num_train_epochs": t.num_train_epochs,
        "max_steps": t.max_steps,
        # transformers 5 takes a ratio in [0, 1) through warmup_steps.
        "warmup_steps": float(t.warmup_ratio) if t.warmup_ratio < 1 else int(t.warmup_ratio),
        "weight_decay": t.weight_decay,
        "lr_scheduler_type": t.lr_scheduler_type,
        "max_grad_norm": t.max_grad_norm,
        "eval_strategy": eval_strategy,
        "eval_steps": t.eval_steps if eval_strategy == "steps" else None,
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "logging_steps": t.logging_steps,
        "seed": t.seed,
        "report_to": t.report_to,
        "bf16": bf16,
        "fp16": fp16,
        "dataloader_num_workers": num_workers,
        "dataloader_pin_memory": bool(getattr(dl, "pin_memory", False)) and _cuda(),
        "remove_unused_columns": False,  # the examples are already exactly the model's inputs
        "label_names": ["labels"],
        "deepspeed": deepspeed,
    }
    if num_workers > 0 and getattr(dl, "prefetch_factor", None):
        kwargs["dataloader_prefetch_factor"] = dl.prefetch_factor
    from .distributed import training_args_extras

    kwargs.update(training_args_extras(deepspeed=deepspeed is not None))
    return TrainingArguments(**kwargs)


class _VtgFilesCallback(TrainerCallback):
    """Makes the Trainer's own ``checkpoint-N`` folders complete (vtg config + metadata).

    The files go into the staged folder before it is renamed into place
    (:class:`~vtg_core.train.checkpoints.AtomicCheckpointMixin`), so they are part of the atomic save.
    """

    def __init__(self, model: Any, processor: Any, config: Any, added_tokens: list[str]):
        self.model, self.processor, self.config, self.added_tokens = model, processor, config, added_tokens

    def before_checkpoint_commit(self, folder: Path, state: Any) -> None:
        from ..backends.checkpoint import write_vtg_files

        write_vtg_files(folder, self.model, self.processor, config=self.config, added_tokens=self.added_tokens)


class VideoSFTTrainer(AtomicCheckpointMixin, Trainer):
    """``Trainer`` with per-part learning rates, optionally a vtg batch sampler, atomic checkpoints,
    and, with a :class:`~vtg_core.train.bad_samples.TrackedDataset`, sample ids per batch (for the
    non-finite guard) and failed clips left out per ``video_failures``."""

    def __init__(self, *args: Any, param_groups_fn: Any = None, batch_sampler: Any = None,
                 video_failures: VideoFailures | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._param_groups_fn = param_groups_fn
        self._batch_sampler = batch_sampler
        self.video_failures = video_failures or VideoFailures()
        self._guards = [cb for cb in self.callback_handler.callbacks if isinstance(cb, NonFiniteGuard)]
        from ..samplers.duration import BatchStats

        # Seed 000's per-interval batch-size lines; they matter most when batches vary in size.
        self.batch_stats = BatchStats(interval=max(1, int(self.args.logging_steps)))
        self.add_callback(_SamplerCallback(self))

    def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        sample_ids = self.video_failures.take(inputs)
        ids = inputs.get("input_ids")
        if ids is None:  # every clip of this batch failed to decode (see bad_samples): nothing to learn
            return torch.zeros((), device=self.args.device)
        self.batch_stats.add(int(ids.shape[0]))
        loss = super().training_step(model, inputs, *args, **kwargs)
        for guard in self._guards:
            guard.observe(loss, sample_ids)
        return loss

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        if self.optimizer is None and self._param_groups_fn is not None:
            opt_model = self.model if model is None else model
            groups = self._param_groups_fn(opt_model)
            if not groups:
                raise RuntimeError(
                    "no trainable parameters: every learning rate is 0 or everything is frozen"
                )
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            optimizer_kwargs.pop("lr", None)  # each group has its own
            # torch keeps extra keys such as "name" in param_groups: handy when reading the optimizer.
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer
        return super().create_optimizer(model)

    def get_train_dataloader(self) -> Any:
        if self._batch_sampler is None:
            return super().get_train_dataloader()
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self._batch_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        if getattr(self._batch_sampler, "world_size", 1) > 1:
            # Already sharded (every rank its own batches, as many as the others): accelerate must not
            # split it again. The Trainer moves each batch to the device itself.
            return loader
        return self.accelerator.prepare(loader)


class _SamplerCallback(TrainerCallback):
    """Reshuffles a vtg batch sampler each epoch and logs the batch-size statistics (rank 0)."""

    def __init__(self, trainer: VideoSFTTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        sampler = self.trainer._batch_sampler
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(int(state.epoch or 0))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.trainer.batch_stats.report(state.global_step)
        else:
            self.trainer.batch_stats.sizes = []


def resume_checkpoint(value: str | None, output_dir: str | os.PathLike[str]) -> str | None:
    """``training.resume_from_checkpoint`` as a folder: ``latest`` is the newest complete
    ``checkpoint-N`` in ``output_dir`` (see :func:`~vtg_core.train.checkpoints.latest_checkpoint`)."""
    from ..errors import ConfigError

    if not value:
        return None
    if str(value) == "latest":
        found = latest_checkpoint(output_dir)
        if found is None:
            raise ConfigError(f"training.resume_from_checkpoint=latest: no complete checkpoint-N in {output_dir}")
        return found
    if not Path(value).is_dir():
        raise ConfigError(f"training.resume_from_checkpoint: {value} is not a directory")
    return str(value)


def _batch_sampler(config: Any, samples: Sequence[Sample]) -> Any:
    name = getattr(config, "sampler_name", "random")
    if name == "random":
        return None  # the Trainer's own seeded random sampler is the same thing
    from ..plugins import get_registry
    from .distributed import dist_info, record_batches

    info = dist_info()
    factory = get_registry().get("sampler", name).load()
    sampler = factory(list(samples), config=config, rank=info.rank, world_size=info.world_size,
                      seed=config.training.seed)
    return record_batches(sampler, samples)


def run_sft(
    config: Any,
    *,
    task: Any,
    train_samples: Sequence[Sample],
    eval_samples: Sequence[Sample] | None = None,
    output_dir: str | os.PathLike[str],
    model: Any = None,
    processor: Any = None,
    backend: Any = None,
    frame_loader: Any = None,
    callbacks: Sequence[Any] = (),
) -> SFTResult:
    """Fine-tune on ``train_samples`` and save a complete checkpoint in ``output_dir/final``.

    ``config`` is a ``VtgConfig``. ``model`` / ``processor`` default to ``config.model``'s
    (loaded by the backend, default ``transformers``); the task's ``extra_tokens`` (temporal
    tokens) are added, then LoRA / freezing per config. ``frame_loader`` (``sample -> Frames``)
    replaces video decoding, e.g. in tests. Intermediate ``checkpoint-N`` folders follow
    ``training.save_steps`` and are complete too. Returns an :class:`SFTResult`.
    """
    if not train_samples:
        from ..errors import DataError

        raise DataError("run_sft: no training samples (all rows invalid or the file is empty?)")
    if backend is None:
        from ..backends.transformers_backend import TransformersBackend

        backend = TransformersBackend()
    if model is None or processor is None:
        model, processor = backend.load(config)
    extra = list(getattr(task, "extra_tokens", []) or [])
    # LoRA weights and new token rows are drawn here, before the Trainer seeds anything: seed now, so
    # training.seed decides them and two runs (or a run and its resumption's reference) agree.
    from transformers import set_seed

    set_seed(config.training.seed)
    model, added = backend.prepare_for_training(model, processor, config, extra_tokens=extra or None)

    seed = config.training.seed
    video = getattr(config, "video", None)
    train_ds = VideoSampleDataset(
        train_samples,
        task,
        processor,
        video=video,
        frame_loader=frame_loader,
        encode=backend.encode,
        seed=seed,
    )
    eval_ds = None
    if eval_samples:
        eval_ds = VideoSampleDataset(
            eval_samples,
            task,
            processor,
            video=video,
            frame_loader=frame_loader,
            encode=backend.encode,
            seed=seed,
        )
    args = training_arguments(config, output_dir, has_eval=eval_ds is not None)
    resume = resume_checkpoint(config.training.resume_from_checkpoint, output_dir)
    stop = GracefulStop()
    guard = NonFiniteGuard(policy=config.training.on_nonfinite, max_skips=config.training.max_nonfinite_steps,
                           checkpoint_dir=str(output_dir))
    dataset_cfg = getattr(config, "dataset", None)
    trainer = VideoSFTTrainer(
        model=model,
        args=args,
        train_dataset=TrackedDataset(train_ds),
        eval_dataset=eval_ds,
        data_collator=TrackedCollator(VideoCollator.for_processor(processor)),
        processing_class=processor,
        callbacks=[_VtgFilesCallback(model, processor, config, added), stop, guard, *callbacks],
        param_groups_fn=lambda m: backend.param_groups(m, config),
        batch_sampler=_batch_sampler(config, train_samples),
        video_failures=VideoFailures(getattr(dataset_cfg, "invalid_policy", "skip"),
                                     getattr(dataset_cfg, "max_invalid_fraction", 0.05)),
    )
    try:
        train_out = trainer.train(resume_from_checkpoint=resume)
    finally:
        stop.restore()
    if trainer.video_failures.samples:
        log.warning("samples left out because their video failed to decode: %s (%s)",
                    len(trainer.video_failures.samples), trainer.video_failures.summary())
    if stop.received is not None:
        from ..errors import TrainingInterrupted

        last = latest_checkpoint(output_dir)
        raise TrainingInterrupted(f"{stop.signal_name} received: stopped after step {trainer.state.global_step} "
                                  f"with a checkpoint in {last}", signum=stop.received, checkpoint=last)
    metrics = dict(train_out.metrics)
    if eval_ds is not None:
        metrics.update(trainer.evaluate())
    final = str(Path(output_dir) / FINAL_DIR)
    from .distributed import save_final

    save_final(trainer, backend, trainer.model, processor, final, config=config, added_tokens=added)
    return SFTResult(
        output_dir=str(output_dir),
        checkpoint=final,
        metrics=metrics,
        log_history=list(trainer.state.log_history),
        added_tokens=added,
        model=trainer.model,
        processor=processor,
    )
