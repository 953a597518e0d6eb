"""GRPO for video tasks on TRL's ``GRPOTrainer``: :func:`run_grpo` and the config mapping.

``run_grpo`` takes a resolved :class:`~vtg_core.config.schema.VtgConfig`, a task object and its
samples, and trains with :class:`~vtg_core.train.grpo_video.VideoGRPOTrainer` (TRL's trainer plus
the video plumbing; read that module for how the video reaches every forward pass).

Config mapping (``rl:`` / ``rewards:`` of seeds 000-002 -> TRL ``GRPOConfig``):

============================  =================================================================
vtg                           TRL
============================  =================================================================
``rl.algorithm: grpo``        ``loss_type="grpo"`` (per-sequence mean, DeepSeekMath's GRPO),
                              ``scale_rewards="group"`` (advantage / group std)
``rl.algorithm: r1``          ``loss_type="dr_grpo"``, ``scale_rewards="none"``: the "Dr. GRPO"
                              correction of R1-Zero-style training (no per-length normalisation,
                              no std scaling, which bias GRPO toward long wrong answers). The KL
                              term still follows ``kl_coef``: set it to 0 for pure R1-Zero.
``rl.num_generations``        ``num_generations`` (G completions per prompt)
``rl.temperature``            ``temperature`` (sampling, and the log-prob temperature)
``rl.kl_coef``                ``beta`` (0 builds no reference model)
``rl.clip_range``             ``epsilon`` (symmetric; ``epsilon_high`` left unset)
``rl.max_completion_length``  ``max_completion_length``
``rl.max_prompt_length``      enforced by the trainer: a longer video prompt raises (TRL 1.16
                              has no prompt truncation, and truncating would cut video tokens)
``rewards:`` entries          one TRL reward function per entry (so TRL logs
                              ``rewards/<name>/mean`` and ``/std`` per entry; a repeated name
                              becomes ``name_2``...), weights -> ``reward_weights``. No entries:
                              the task's ``default_rewards``.
``training.*``                the ``TrainingArguments`` of the same names;
                              ``per_device_train_batch_size`` counts *completions* (TRL's
                              meaning), so batch x accumulation x GPUs must divide by G.
``model.gradient_checkpointing``  ``activation_checkpointing`` (non-reentrant; the old
                              ``gradient_checkpointing`` name on transformers that lack it)
``deepspeed``                 ``deepspeed`` (resolved like SFT's)
============================  =================================================================

Per-part learning rates (``mm_projector_lr``, ``vision_tower_lr``, ``head_lr``) are applied as in
SFT through the backend's optimizer parameter groups. Evaluation during GRPO is off (every eval
step would generate ``G`` completions per held-out prompt); run ``vtg evaluate`` on checkpoints.

Starting from SFT: ``sft_checkpoint=`` (or ``model.sft_checkpoint`` / ``model.name_or_path``
pointing at a saved vtg checkpoint directory) loads the base model named in the checkpoint plus
its LoRA adapter, trainable. GRPO keeps training that adapter, and with ``kl_coef > 0`` TRL keeps a
frozen copy of it as the reference (``ref`` adapter), so the KL is measured against the SFT model,
not the untuned base.

The run directory gets ``completions.jsonl`` (every ``logging_steps``: step, sample id,
completion, each reward, the weighted total, the advantage), TRL's ``checkpoint-N`` folders and
the final checkpoint in ``final/`` (adapter, processor, generation config, ``vtg_config.yaml``).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, dict[str, Any]] = {
    "grpo": {"loss_type": "grpo", "scale_rewards": "group"},
    "r1": {"loss_type": "dr_grpo", "scale_rewards": "none"},
}
"""``rl.algorithm`` -> the ``GRPOConfig`` fields it sets (see the module docstring)."""

FINAL_DIR = "final"
COMPLETIONS_FILE = "completions.jsonl"


@attrs.frozen(kw_only=True)
class GrpoResult:
    """What :func:`run_grpo` produced.

    ``checkpoint_dir`` (alias ``checkpoint``, as in ``SFTResult``): the final complete checkpoint;
    ``metrics``: the Trainer's train metrics (``train_loss``, runtime...); ``log_history``: every
    entry TRL logged (``reward``, ``rewards/<name>/mean``, ``kl``, ``entropy``...);
    ``reward_names``: the names TRL logs the rewards under, in order, with ``reward_weights``;
    ``completions_path``: the completion log (``None`` if nothing was logged); ``trainer``: the
    :class:`~vtg_core.train.grpo_video.VideoGRPOTrainer`, for inspection.
    """

    output_dir: str
    checkpoint_dir: str | None
    global_step: int
    metrics: dict[str, Any]
    log_history: list[dict[str, Any]]
    reward_names: tuple[str, ...]
    reward_weights: tuple[float, ...]
    completions_path: str | None
    added_tokens: list[str] = attrs.field(factory=list)
    trainer: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def checkpoint(self) -> str | None:
        """The final checkpoint, under the name :class:`~vtg_core.train.sft.SFTResult` uses."""
        return self.checkpoint_dir


# ---- pure-Python mapping (no torch) ---------------------------------------------------------


def grpo_config_kwargs(config: Any, output_dir: str | os.PathLike[str], *,
                       reward_weights: Sequence[float] | None = None, world_size: int = 1) -> dict[str, Any]:
    """The ``GRPOConfig`` keyword arguments for ``config`` (see the module docstring's table).

    Raises :class:`ConfigError` for an unknown algorithm, a batch that does not hold whole groups
    of ``num_generations`` completions, or fewer than 2 generations.
    """
    rl, training = config.rl, config.training
    if rl.algorithm not in ALGORITHMS:
        raise ConfigError(f"rl.algorithm must be one of {sorted(ALGORITHMS)}, got {rl.algorithm!r}")
    if rl.num_generations < 2:
        raise ConfigError(f"rl.num_generations must be >= 2 (GRPO compares completions of one prompt), "
                          f"got {rl.num_generations}")
    batch = int(config.train_batch_size)
    per_generation = batch * training.gradient_accumulation_steps * world_size
    if per_generation % rl.num_generations:
        raise ConfigError(
            f"rl.num_generations={rl.num_generations} must divide the completions per optimizer step: "
            f"per_device_train_batch_size {batch} x gradient_accumulation_steps "
            f"{training.gradient_accumulation_steps} x {world_size} process(es) = {per_generation}. "
            "In GRPO the batch size counts completions, so each prompt's group must fit in one step; "
            f"e.g. set training.per_device_train_batch_size to {rl.num_generations}."
        )
    # Mixed precision needs a GPU (the backend loads float32 on a CPU): the same rule as SFT's.
    cuda = _has_accelerator()
    bf16 = bool(training.bf16) and cuda and _bf16_supported()
    fp16 = bool(training.fp16) and cuda
    if (training.bf16 and not bf16) or (training.fp16 and not fp16):
        log.info("mixed precision (training.bf16/fp16) needs a CUDA GPU with support for it: training in float32")
    report_to = training.report_to
    kwargs: dict[str, Any] = {
        "output_dir": os.fspath(output_dir),
        **ALGORITHMS[rl.algorithm],
        "num_generations": rl.num_generations,
        "temperature": rl.temperature,
        "beta": rl.kl_coef,
        "epsilon": rl.clip_range,
        "max_completion_length": rl.max_completion_length,
        "learning_rate": training.learning_rate,
        "per_device_train_batch_size": batch,
        "gradient_accumulation_steps": training.gradient_accumulation_steps,
        "num_train_epochs": training.num_train_epochs,
        "max_steps": training.max_steps,
        "warmup_ratio": training.warmup_ratio,
        "weight_decay": training.weight_decay,
        "lr_scheduler_type": training.lr_scheduler_type,
        "max_grad_norm": training.max_grad_norm,
        "logging_steps": training.logging_steps,
        "save_strategy": "steps",
        "save_steps": training.save_steps,
        "save_total_limit": training.save_total_limit,
        "seed": training.seed,
        "report_to": [report_to] if isinstance(report_to, str) else list(report_to),
        "bf16": bf16,
        "fp16": fp16,
        "gradient_checkpointing": bool(config.model.gradient_checkpointing),
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "eval_strategy": "no",
        # Reward functions read the task's columns (timestamp, duration...): keep them all.
        "remove_unused_columns": False,
        # Rows are paths and text; frames are decoded in the trainer, once per prompt group
        # (a worker would see each row G times and decode it G times).
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": bool(config.dataloader.pin_memory) and _has_accelerator(),
        # TRL's own table needs pandas + parquet; completions.jsonl replaces it.
        "log_completions": False,
    }
    if reward_weights is not None:
        kwargs["reward_weights"] = [float(w) for w in reward_weights]
    if getattr(config, "deepspeed", None):
        from .distributed_deepspeed import deepspeed_for_run

        kwargs["deepspeed"] = deepspeed_for_run(config, output_dir, micro_batch=batch, bf16=bf16, fp16=fp16)
    return kwargs


def _process_extras(kwargs: dict[str, Any]) -> dict[str, Any]:
    from .distributed import training_args_extras

    return {**kwargs, **training_args_extras(deepspeed=bool(kwargs.get("deepspeed")))}


def grpo_batch_sampler(config: Any, samples: Sequence[Any], *, steps_per_generation: int = 1) -> Any:
    """The configured vtg sampler as GRPO's generation batches, or ``None`` for ``random`` (TRL's own).

    One sampler batch is one generation batch of this rank: its prompts, each with
    ``rl.num_generations`` completions. TRL gathers all ranks' completions into one tensor, so on
    several processes every rank must hold the same number of prompts at each step: the budget
    samplers are built with ``align_ranks=True`` for that; a sampler that cannot promise it is
    refused. Each batch's completions are split into ``steps_per_generation`` (gradient accumulation)
    slices, so ``num_generations`` must divide by it.
    """
    name = getattr(config, "sampler_name", "random")
    if name == "random":
        return None
    import inspect

    from ..plugins import get_registry
    from .distributed import dist_info, record_batches

    info = dist_info()
    if config.rl.num_generations % max(1, int(steps_per_generation)):
        raise ConfigError(f"sampler {name!r} with GRPO: rl.num_generations ({config.rl.num_generations}) must be a "
                          f"multiple of training.gradient_accumulation_steps ({steps_per_generation}), since every "
                          "batch's completions are split into that many slices whatever its size")
    factory = get_registry().get("sampler", name).load()
    kwargs: dict[str, Any] = {}
    if "align_ranks" in inspect.signature(factory).parameters:
        kwargs["align_ranks"] = True
    elif info.world_size > 1:
        raise ConfigError(f"sampler {name!r} cannot promise every rank the same number of prompts per step, which "
                          f"GRPO on {info.world_size} processes needs (TRL gathers all ranks' completions); use "
                          "'duration', 'token_budget' or 'random' (dataloader.sampler) with several processes")
    sampler = factory(list(samples), config=config, rank=info.rank, world_size=info.world_size,
                      seed=config.training.seed, **kwargs)
    return record_batches(sampler, samples)


def reward_entries(config: Any, task: Any) -> list[Any]:
    """The ``rewards:`` entries to build: the config's, else the task's ``default_rewards``."""
    entries = list(getattr(config, "rewards", None) or [])
    if entries:
        return entries
    defaults = list(getattr(task, "default_rewards", None) or [])
    if not defaults:
        raise ConfigError(f"no rewards: the config has no 'rewards:' list and task "
                          f"{getattr(task, 'name', task)!r} declares no default_rewards")
    return defaults


def normalize_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages with every ``content`` as a list of ``{"type", "text"}`` parts.

    Arrow (``datasets``) needs one type per column, and a system turn's string next to a user
    turn's list of parts is two. Non-text parts keep only their ``type`` (the video itself is
    attached by the trainer, not stored in the data set).
    """
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        else:
            parts = []
            for part in content or []:
                kind = part.get("type", "text")
                parts.append({"type": kind, "text": part.get("text") if kind == "text" else None})
        out.append({"role": message["role"], "content": parts})
    return out


def denormalize_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Undo the ``None`` fields Arrow adds, so chat templates see the task's own parts."""
    return [{"role": m["role"], "content": [{k: v for k, v in p.items() if v is not None} for p in m["content"]]}
            for m in messages]


def build_rows(task: Any, samples: Sequence[Any], *, seed: int = 0) -> list[dict[str, Any]]:
    """One data-set row per sample: the prompt, where its video is, and the reward columns.

    The prompt is built once here, with the per-sample generator SFT uses
    (``random.Random(f"{seed}:{sample.id}")``), so a model sees the same prompt in SFT and GRPO,
    and the rewards, the completion log and the policy all see the same text.
    """
    rows = []
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise DataError(f"duplicate sample id {sample.id!r} ({sample.source}): GRPO encodes each prompt "
                            "once per id; give the rows distinct qid values")
        seen.add(sample.id)
        if hasattr(task, "reward_columns"):
            columns = dict(task.reward_columns(sample))
        else:
            columns = {"answer": sample.answer, "duration": sample.duration}
        reserved = {"prompt", "sample_id", "video", "video_start", "video_end"} & set(columns)
        if reserved:
            raise ConfigError(f"task {getattr(task, 'name', task)!r}: reward_columns may not use {sorted(reserved)}")
        rows.append({
            "prompt": normalize_messages(task.build_messages(sample, rng=random.Random(f"{seed}:{sample.id}"))),
            "sample_id": sample.id,
            "video": sample.video,
            "video_start": sample.video_start,
            "video_end": sample.video_end,
            **columns,
        })
    return rows


def make_grpo_config(kwargs: Mapping[str, Any]) -> Any:
    """``trl.GRPOConfig(**kwargs)``, renaming the arguments this transformers version renamed.

    transformers 5.2x replaced ``warmup_ratio`` by a fractional ``warmup_steps`` and renamed
    ``gradient_checkpointing*`` to ``activation_checkpointing*`` (the old names warn).
    """
    import dataclasses

    from trl import GRPOConfig

    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    kwargs = dict(kwargs)
    if "warmup_ratio" in kwargs and "warmup_ratio" not in fields:
        # A float below 1 is read as a ratio of the total steps; 1.0 would mean "one step".
        kwargs["warmup_steps"] = min(float(kwargs.pop("warmup_ratio")), 0.999999)
    for old, new in (("gradient_checkpointing", "activation_checkpointing"),
                     ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")):
        if old in kwargs and new in fields:
            kwargs[new] = kwargs.pop(old)
    return GRPOConfig(**kwargs)


def _has_accelerator() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - run_grpo needs torch anyway
        return False
    return bool(torch.cuda.is_available())


def _bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_bf16_supported())


# ---- building the pieces (torch) ------------------------------------------------------------


def build_reward_funcs(config: Any, task: Any, reward_funcs: Any = None,
                       registry: Any = None) -> tuple[list[Callable[..., Any]], list[float], list[str]]:
    """``(functions, weights, names)`` for TRL, from ``reward_funcs`` or the config / task entries.

    ``reward_funcs`` may be a list of callables (weight 1 each, named by ``__name__``) or a
    mapping ``name -> callable``; otherwise :func:`vtg_core.rewards.build_rewards` builds one
    callable per entry through the plugin registry.
    """
    if reward_funcs is not None:
        items = list(reward_funcs.items()) if isinstance(reward_funcs, Mapping) else [
            (getattr(fn, "__name__", type(fn).__name__), fn) for fn in reward_funcs]
        if not items:
            raise ConfigError("reward_funcs is empty")
        funcs, names = [], []
        for name, fn in items:
            if not callable(fn):
                raise ConfigError(f"reward {name!r} is not callable")
            from ..rewards.guard import guard_reward  # NaN / wrong length / raising: a clear RewardError

            funcs.append(_NamedReward(guard_reward(fn, _unique(name, names)), _unique(name, names)))
            names.append(funcs[-1].__name__)
        return funcs, [1.0] * len(funcs), names
    from ..rewards import build_rewards

    built = build_rewards(reward_entries(config, task), registry)
    funcs = [_NamedReward(b.fn, b.name) for b in built]
    return funcs, [b.weight for b in built], [b.name for b in built]


def _unique(name: str, taken: Sequence[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


class _NamedReward:
    """A reward callable with the ``__name__`` TRL logs it under (``rewards/<name>/mean``)."""

    def __init__(self, fn: Callable[..., Any], name: str):
        self.fn = fn
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def prompt_encoder(backend: Any, processor: Any, samples: Sequence[Any], load_frames: Callable[[Any], Any]
                   ) -> Callable[[dict[str, Any]], Any]:
    """``row -> EncodedPrompt``: decode the row's sample's frames with ``load_frames`` (``sample ->
    Frames``, the loader SFT uses) and encode the row's prompt with the backend."""
    from .grpo_video import encoded_from_processor_output

    video_token = getattr(processor, "video_token_id", None)
    image_token = getattr(processor, "image_token_id", None)
    merge = getattr(getattr(processor, "video_processor", None), "merge_size", None)

    by_id = {str(s.id): s for s in samples}

    def encode(row: dict[str, Any]) -> Any:
        messages = denormalize_messages(row["prompt"])
        sample = by_id[str(row["sample_id"])]
        frames = load_frames(sample) if sample.video else []
        # A task's own loader may return one clip per visual part (robot_vqa: two videos per pair).
        frames = list(frames) if isinstance(frames, list | tuple) else [frames]
        data = backend.encode(processor, messages, frames)
        if "video_grid_thw" in data:  # Qwen families: one <|video_pad|> per merged patch
            return encoded_from_processor_output(str(row["sample_id"]), data, placeholder_id=video_token,
                                                 merge_size=merge)
        if "pixel_values" in data:  # InternVL: frames as images, image_seq_length tokens each
            n = int(data["pixel_values"].shape[0]) * int(getattr(processor, "image_seq_length", 0) or 0)
            return encoded_from_processor_output(str(row["sample_id"]), data, placeholder_id=image_token,
                                                 num_placeholders=n or None)
        return encoded_from_processor_output(str(row["sample_id"]), data, placeholder_id=None, num_placeholders=0)

    return encode


def _checkpoint_dir(config: Any, sft_checkpoint: str | os.PathLike[str] | None) -> str | None:
    """The SFT checkpoint to start from: the argument, ``model.sft_checkpoint``, or a checkpoint
    directory given as ``model.name_or_path``."""
    if sft_checkpoint:
        path = Path(sft_checkpoint)
        if not path.is_dir():
            raise ConfigError(f"sft_checkpoint {os.fspath(sft_checkpoint)!r} is not a directory")
        return os.fspath(path)
    explicit = getattr(config.model, "sft_checkpoint", None)
    if explicit:
        return _checkpoint_dir(config, explicit)
    name = config.model.name_or_path
    if name and Path(name).is_dir() and any((Path(name) / f).is_file()
                                             for f in ("vtg_checkpoint.json", "adapter_config.json")):
        return os.fspath(name)
    return None


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def load_policy(config: Any, backend: Any, task: Any = None, *, model: Any = None, processor: Any = None,
                sft_checkpoint: str | os.PathLike[str] | None = None) -> tuple[Any, Any, list[str]]:
    """``(model, processor, added_tokens)`` ready to train.

    - From a LoRA SFT checkpoint: its base model plus its adapter, trainable; the adapter (and what
      it saves in full: projector, vision tower, token rows) is what GRPO trains.
    - From a full SFT checkpoint, or the base model: prepared by the backend like SFT does (the
      task's extra tokens, LoRA / freezing per ``lora:``).
    - A ``model`` passed in is prepared the same way, unless it is already a peft model.
    """
    extra = list(getattr(task, "extra_tokens", None) or []) or None
    if model is not None:
        if _is_peft(model):
            return model, processor, list(extra or [])
        model, added = backend.prepare_for_training(model, processor, config, extra_tokens=extra)
        return model, processor, list(added)
    ckpt = _checkpoint_dir(config, sft_checkpoint)
    if ckpt is None:
        model, processor = backend.load(config)
        model, added = backend.prepare_for_training(model, processor, config, extra_tokens=extra)
        return model, processor, list(added)
    from ..backends.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(ckpt)
    kind = meta.get("kind")
    log.info("GRPO starts from the %s SFT checkpoint %s", kind or "?", ckpt)
    trust = {"trust_remote_code": True} if config.model.trust_remote_code else {}  # the user's choice only
    model, processor = backend.load_checkpoint(ckpt, is_trainable=True, **trust, torch_dtype=config.model.torch_dtype,
                                               attn_implementation=config.model.attn_implementation)
    if kind != "lora":
        model, added = backend.prepare_for_training(model, processor, config, extra_tokens=extra)
        return model, processor, list(added)
    if not getattr(config.lora, "enabled", True):
        log.info("lora.enabled is false, but the SFT checkpoint is a LoRA adapter: GRPO trains that adapter")
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model, processor, list(meta.get("added_tokens") or [])


def run_grpo(config: Any, *, task: Any, train_samples: Sequence[Any], output_dir: str | os.PathLike[str],
             model: Any = None, processor: Any = None, reward_funcs: Any = None,
             sft_checkpoint: str | os.PathLike[str] | None = None, backend: Any = None,
             frame_loader: Callable[[Any], Any] | None = None, registry: Any = None,
             callbacks: Sequence[Any] = ()) -> GrpoResult:
    """Train ``task`` on ``train_samples`` with GRPO and save ``output_dir/final``; see the module docstring.

    Mirrors :func:`vtg_core.train.sft.run_sft`:

    - ``model`` / ``processor``: default to ``config.model``'s, or to ``sft_checkpoint`` (also read
      from ``model.sft_checkpoint`` or a checkpoint directory in ``model.name_or_path``); a base
      model is prepared by the backend (tokens, LoRA, freezing), a peft model is used as given.
    - ``reward_funcs``: callables (or ``name -> callable``), weight 1 each, replacing the
      config's ``rewards:`` (default: those entries, else the task's ``default_rewards``).
    - ``backend``: default the one ``model.backend`` names; ``frame_loader`` (``sample -> Frames``)
      replaces video decoding; ``registry`` is where reward names resolve; ``callbacks`` go to
      the Trainer.

    Returns a :class:`GrpoResult` (``checkpoint_dir`` is ``output_dir/final``).
    """
    from .dataset import frame_loader_from_config
    from .grpo_video import VideoGRPOTrainer

    samples = list(train_samples)
    if not samples:
        raise DataError("run_grpo: no training samples (all rows invalid or the file is empty?)")
    from .grpo_device import grpo_device_problem

    problem = grpo_device_problem()
    if problem:  # before loading anything, instead of a Triton error mid-step
        raise ConfigError(f"GRPO cannot run on this machine: {problem}")
    if (model is None) != (processor is None):
        raise ConfigError("run_grpo: pass both model and processor, or neither")
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    if backend is None:
        from ..plugins import get_registry

        backend = get_registry().get("backend", config.model.backend).load()()

    funcs, weights, names = build_reward_funcs(config, task, reward_funcs, registry)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    # Checked before loading the model: a bad batch size should not cost a model load.
    args = make_grpo_config(_process_extras(grpo_config_kwargs(config, output_dir, reward_weights=weights,
                                                               world_size=world_size)))
    batch_sampler = grpo_batch_sampler(config, samples, steps_per_generation=args.steps_per_generation)
    model, processor, added_tokens = load_policy(config, backend, task, model=model, processor=processor,
                                                 sft_checkpoint=sft_checkpoint)
    _check_lm_head(model)

    from datasets import Dataset

    dataset = Dataset.from_list(build_rows(task, samples, seed=config.training.seed))
    loader = frame_loader or frame_loader_from_config(config.video, task=task)
    trainer = VideoGRPOTrainer(
        model=model,
        args=args,
        reward_funcs=funcs,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[_vtg_files_callback(processor, config, added_tokens), *callbacks],
        encode_prompt=prompt_encoder(backend, processor, samples, loader),
        max_prompt_length=config.rl.max_prompt_length,
        completion_log_every=config.training.logging_steps,
        param_groups_fn=(lambda m: backend.param_groups(m, config)) if hasattr(backend, "param_groups") else None,
        batch_sampler=batch_sampler,
    )
    train_output = trainer.train(resume_from_checkpoint=config.training.resume_from_checkpoint)

    policy = trainer.accelerator.unwrap_model(trainer.model)
    if "ref" in (getattr(policy, "peft_config", None) or {}):
        # TRL's frozen copy of the starting adapter (the KL reference) is not part of the result.
        policy.delete_adapter("ref")
    final = os.path.join(output_dir, FINAL_DIR)
    from .distributed import save_final

    save_final(trainer, backend, policy, processor, final, config=config, added_tokens=added_tokens)
    completions = trainer.completions_path if os.path.isfile(trainer.completions_path) else None
    return GrpoResult(output_dir=output_dir, checkpoint_dir=final, global_step=trainer.state.global_step,
                      metrics=dict(train_output.metrics), log_history=list(trainer.state.log_history),
                      reward_names=tuple(names), reward_weights=tuple(weights), completions_path=completions,
                      added_tokens=added_tokens, trainer=trainer)


def _check_lm_head(model: Any) -> None:
    """Refuse LoRA on ``lm_head``: TRL's fused log-prob head reads ``lm_head.weight`` directly, so
    an adapter there would never train (TRL raises a less specific error for the same reason)."""
    peft_config = getattr(model, "peft_config", None)
    if not peft_config:
        return
    for cfg in peft_config.values():
        targets = getattr(cfg, "target_modules", None) or ()
        if isinstance(targets, str):
            targets = [targets]
        if any(t == "lm_head" or str(t).endswith(".lm_head") for t in targets):
            raise ConfigError("lora.target_modules contains 'lm_head', which GRPO cannot train (TRL scores "
                              "tokens with lm_head.weight directly). Remove it, or list lm_head under "
                              "lora.modules_to_save to train the head in full.")
        # New (temporal) token rows of lm_head are a peft TrainableTokens wrapper, which has no
        # plain weight/bias for TRL's fused head: it would crash, and the rows would never train.
        tokens = getattr(cfg, "trainable_token_indices", None) or {}
        if isinstance(tokens, dict) and any(k == "lm_head" or str(k).endswith(".lm_head") for k in tokens):
            raise ConfigError("GRPO cannot train the new token rows of lm_head under LoRA (temporal tokens "
                              "with temporal.use_temporal_tokens): TRL reads lm_head.weight directly. Add lm_head "
                              "to lora.modules_to_save (the SFT stage too, so its checkpoint matches), or train "
                              "without LoRA (lora.enabled=false).")


def _vtg_files_callback(processor: Any, config: Any, added_tokens: list[str]) -> Any:
    """A Trainer callback making TRL's ``checkpoint-N`` folders complete vtg checkpoints too
    (processor, ``vtg_config.yaml``, ``vtg_checkpoint.json``), as SFT's are."""
    from transformers import TrainerCallback

    from ..backends.checkpoint import write_vtg_files

    class VtgFiles(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if state.is_world_process_zero and model is not None and os.path.isdir(path):
                processor.save_pretrained(path)
                write_vtg_files(path, getattr(model, "module", model), processor, config=config,
                                added_tokens=added_tokens)

    return VtgFiles()
