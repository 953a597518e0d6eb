"""The typed shape of a vtg configuration: one attrs class per YAML section.

A data YAML (``configs/data/video_config.yaml``) and a training YAML
(``configs/training/sft_config.yaml`` or ``rl_config.yaml``) merge into one :class:`VtgConfig`;
each top-level key of those files is one section below. The Python defaults here equal the
packaged ``video_config.yaml`` + ``sft_config.yaml`` (a test holds them together), so a key left
out of a user's file means the same thing whether it is read from YAML or built in Python.

Field metadata ``check`` holds a value check (``_positive``, ``_fraction``...) that the loader runs
after type conversion, so a bad value is reported with its key path and file like a bad type.
Turning YAML into these classes, and the error messages, live in :mod:`vtg_core.config.loader`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs

Check = Callable[[Any], "str | None"]


def _positive(value: Any) -> str | None:
    return None if value is None or value > 0 else "must be > 0"


def _non_negative(value: Any) -> str | None:
    return None if value is None or value >= 0 else "must be >= 0"


def _fraction(value: Any) -> str | None:
    return None if value is None or 0.0 <= value <= 1.0 else "must be between 0 and 1"


def _open_fraction(value: Any) -> str | None:
    # A held-out split of 100% would leave nothing to train on.
    return None if value is None or 0.0 <= value < 1.0 else "must be >= 0 and < 1"


def _at_least_one(value: Any) -> str | None:
    return None if value is None or value >= 1 else "must be >= 1"


def _steps(value: Any) -> str | None:
    # -1 is the Hugging Face convention for "no limit" (max_steps).
    return None if value == -1 or value > 0 else "must be > 0, or -1 for no limit"


def field(default: Any = attrs.NOTHING, *, factory: Any = None, check: Check | None = None) -> Any:
    """An attrs field whose value check the loader runs (see module docstring)."""
    metadata = {"check": check} if check else {}
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata)
    return attrs.field(default=default, metadata=metadata)


@attrs.define(kw_only=True)
class DatasetConfig:
    """Where the training annotations and videos are, and what to do with invalid rows.

    ``invalid_policy``: ``skip`` drops invalid rows (and unreadable videos) with a summary, ``fail``
    stops at the first one. Even with ``skip``, loading fails when more than
    ``max_invalid_fraction`` of the rows are invalid: that many bad rows means a wrong path or
    format, not a few broken clips.
    """

    name: str = "video_temporal_grounding"
    data_root: str = "./data"
    annotation_file: str | None = "./data/annotations/train.jsonl"
    video_dir: str | None = "./data/videos"
    invalid_policy: Literal["skip", "fail"] = "skip"
    max_invalid_fraction: float = field(0.05, check=_fraction)


@attrs.define(kw_only=True)
class ValidationConfig:
    """The held-out set evaluated during training.

    With no ``annotation_file`` (null), ``split_fraction`` of the training rows are carved out
    (with ``training.seed``) as the held-out split; 0 means no evaluation during training.
    """

    annotation_file: str | None = "./data/annotations/val.jsonl"
    batch_size: int = field(8, check=_at_least_one)
    split_fraction: float = field(0.0, check=_open_fraction)


@attrs.define(kw_only=True)
class ResolutionConfig:
    """Frame size fed to the model, in pixels."""

    height: int = field(384, check=_positive)
    width: int = field(384, check=_positive)


@attrs.define(kw_only=True)
class CacheConfig:
    """Decoded-frame cache; ``max_bytes`` bounds it so long runs do not grow without limit."""

    enabled: bool = False
    max_bytes: int = field(2 * 1024**3, check=_non_negative)


@attrs.define(kw_only=True)
class VideoConfig:
    """How frames are taken from a clip.

    ``fps`` 0 samples ``max_frames`` frames spread over the clip whatever its length; a positive
    ``fps`` samples that many frames per second, still capped at ``max_frames``. ``max_pixels``
    (null = no cap) bounds height x width of one frame after resizing, for backends whose
    processors take a pixel budget instead of a fixed resolution.
    """

    max_frames: int = field(32, check=_at_least_one)
    sampling_strategy: Literal["uniform", "random", "keyframe"] = "uniform"
    resolution: ResolutionConfig = attrs.field(factory=ResolutionConfig)
    fps: float = field(0.0, check=_non_negative)
    max_pixels: int | None = field(None, check=_positive)
    cache: CacheConfig = attrs.field(factory=CacheConfig)
    decode_timeout: float = field(120.0, check=_non_negative)


@attrs.define(kw_only=True)
class TemporalConfig:
    """How time is written in prompts and answers.

    ``use_relative_timestamps`` writes times as fractions of the clip (0-1) instead of seconds;
    ``use_temporal_tokens`` adds ``num_bins`` special tokens ``<0>``... to the vocabulary, whose
    embeddings start from ``embedding_init_strategy``.
    """

    num_bins: int = field(100, check=_at_least_one)
    use_relative_timestamps: bool = True
    use_temporal_tokens: bool = False
    embedding_init_strategy: Literal["sinusoidal", "mean", "random"] = "sinusoidal"


@attrs.define(kw_only=True)
class DataloaderConfig:
    """Data loader settings.

    ``batch_size`` null means ``training.per_device_train_batch_size`` (use
    :attr:`VtgConfig.train_batch_size`); the two seeds this merges each had a per-GPU batch size,
    and one number avoids training with a different batch size than the one written down.
    ``sampler`` names a registered sampler (``vtg list``); ``duration_batching.enabled`` or
    ``token_batching.enabled`` select ``duration`` / ``token_budget`` instead
    (:attr:`VtgConfig.sampler_name`).
    """

    batch_size: int | None = field(None, check=_at_least_one)
    num_workers: int = field(4, check=_non_negative)
    prefetch_factor: int | None = field(2, check=_at_least_one)
    pin_memory: bool = True
    sampler: str = "random"


@attrs.define(kw_only=True)
class DurationBatchingConfig:
    """Batches whose clips add up to about ``target_batch_duration`` seconds (seed 000).

    Clips are sorted by duration and packed greedily without passing the target; a clip longer
    than the target gets a batch of its own. ``min_batch_size`` wins over the target,
    ``max_batch_size`` (null = no cap) caps the count. ``drop_last`` drops the final batch when it
    is short of the target (and batches that would not divide evenly across GPUs).
    """

    enabled: bool = False
    target_batch_duration: float = field(1200.0, check=_positive)
    max_batch_size: int | None = field(None, check=_at_least_one)
    min_batch_size: int = field(1, check=_at_least_one)
    drop_last: bool = False


@attrs.define(kw_only=True)
class TokenBatchingConfig:
    """Like duration batching, but the budget is the estimated visual tokens per batch.

    Tokens, not seconds, are what fill GPU memory once frames are sampled at a fixed rate and
    capped at ``video.max_frames``.
    """

    enabled: bool = False
    max_visual_tokens: int = field(16384, check=_positive)
    max_batch_size: int | None = field(None, check=_at_least_one)
    min_batch_size: int = field(1, check=_at_least_one)
    drop_last: bool = False


@attrs.define(kw_only=True)
class ModelConfig:
    """The base model and how it is loaded.

    ``backend`` names a registered backend (``transformers`` is built in). ``torch_dtype`` and
    ``attn_implementation`` are passed to ``from_pretrained``; a backend may fall back from
    ``flash_attention_2`` where it is not installed. ``quantization`` loads the base weights in
    4 or 8 bits (QLoRA) with a backend that can (``unsloth``; the ``transformers`` backend refuses
    it). ``backend_options`` are the chosen backend's own settings, checked by that backend.
    """

    name_or_path: str | None = "Qwen/Qwen3-VL-4B-Instruct"
    backend: str = "transformers"
    torch_dtype: Literal["auto", "bfloat16", "float16", "float32"] = "bfloat16"
    attn_implementation: str | None = "flash_attention_2"
    trust_remote_code: bool = False
    freeze_vision_tower: bool = True
    gradient_checkpointing: bool = True
    quantization: Literal["none", "4bit", "8bit"] = "none"
    backend_options: dict[str, Any] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class LoraConfig:
    """LoRA through peft. ``target_modules`` may be a list or a peft keyword such as ``all-linear``.

    ``modules_to_save`` are trained in full and saved with the adapter; add ``embed_tokens`` and
    ``lm_head`` when ``temporal.use_temporal_tokens`` adds tokens to the vocabulary.
    ``r: 0`` means no adapter, full fine-tuning (seed 004's ``--lora_rank 0``): it sets ``enabled: false``.
    """

    enabled: bool = True
    r: int = field(64, check=_non_negative)
    lora_alpha: int = field(128, check=_positive)
    lora_dropout: float = field(0.05, check=_open_fraction)
    target_modules: list[str] | str = attrs.field(factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    modules_to_save: list[str] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        if self.r == 0:
            self.enabled = False


@attrs.define(kw_only=True)
class TrainingConfig:
    """Optimisation and bookkeeping, named as in Hugging Face ``TrainingArguments``.

    Per-module learning rates (seed 002): ``mm_projector_lr`` for the vision-language projector,
    ``vision_tower_lr`` for the vision encoder (0 = frozen), ``head_lr`` for ``lm_head`` /
    ``embed_tokens`` when they are trained; everything else uses ``learning_rate``.
    """

    learning_rate: float = field(1e-4, check=_non_negative)
    mm_projector_lr: float = field(1e-5, check=_non_negative)
    vision_tower_lr: float = field(0.0, check=_non_negative)
    head_lr: float = field(1e-4, check=_non_negative)
    per_device_train_batch_size: int = field(2, check=_at_least_one)
    gradient_accumulation_steps: int = field(8, check=_at_least_one)
    num_train_epochs: float = field(3.0, check=_positive)
    max_steps: int = field(-1, check=_steps)
    warmup_ratio: float = field(0.03, check=_fraction)
    weight_decay: float = field(0.01, check=_non_negative)
    lr_scheduler_type: str = "cosine"
    max_grad_norm: float = field(1.0, check=_non_negative)
    output_dir: str = "./outputs/sft"
    eval_strategy: Literal["no", "steps", "epoch"] = "steps"
    save_steps: int = field(500, check=_at_least_one)
    eval_steps: int = field(500, check=_at_least_one)
    logging_steps: int = field(10, check=_at_least_one)
    save_total_limit: int | None = field(3, check=_at_least_one)
    seed: int = 42
    report_to: list[str] | str = "none"
    bf16: bool = True
    fp16: bool = False
    resume_from_checkpoint: str | None = None
    on_nonfinite: Literal["stop", "skip"] = "stop"
    max_nonfinite_steps: int = field(10, check=_non_negative)


@attrs.define(kw_only=True)
class RLConfig:
    """GRPO settings (seeds 001/002). ``kl_coef`` is TRL's ``beta``, ``clip_range`` its ``epsilon``."""

    algorithm: Literal["grpo", "r1"] = "grpo"
    num_generations: int = field(4, check=_at_least_one)
    temperature: float = field(0.7, check=_positive)
    kl_coef: float = field(0.05, check=_non_negative)
    clip_range: float = field(0.2, check=_positive)
    max_completion_length: int = field(512, check=_at_least_one)
    max_prompt_length: int | None = field(2048, check=_at_least_one)


@attrs.define(kw_only=True)
class RewardEntry:
    """One entry of ``rewards:``. In YAML it is flat (``{name, weight, mode: recall}``); every key
    besides ``name`` and ``weight`` is an option for the reward's factory and is kept in
    ``options`` without checking, since each reward plugin defines its own."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.define(kw_only=True)
class VtgConfig:
    """The whole resolved configuration of one run (what the run directory saves)."""

    task: str = "temporal_grounding"
    task_options: dict[str, Any] = attrs.field(factory=dict)
    dataset: DatasetConfig = attrs.field(factory=DatasetConfig)
    validation: ValidationConfig = attrs.field(factory=ValidationConfig)
    video: VideoConfig = attrs.field(factory=VideoConfig)
    temporal: TemporalConfig = attrs.field(factory=TemporalConfig)
    dataloader: DataloaderConfig = attrs.field(factory=DataloaderConfig)
    duration_batching: DurationBatchingConfig = attrs.field(factory=DurationBatchingConfig)
    token_batching: TokenBatchingConfig = attrs.field(factory=TokenBatchingConfig)
    model: ModelConfig = attrs.field(factory=ModelConfig)
    lora: LoraConfig = attrs.field(factory=LoraConfig)
    training: TrainingConfig = attrs.field(factory=TrainingConfig)
    rl: RLConfig = attrs.field(factory=RLConfig)
    rewards: list[RewardEntry] = attrs.field(factory=list)
    deepspeed: str | None = None

    @property
    def train_batch_size(self) -> int:
        """Per-device training batch size: ``dataloader.batch_size`` if set, else the training one."""
        return self.dataloader.batch_size or self.training.per_device_train_batch_size

    @property
    def sampler_name(self) -> str:
        """The sampler to build: ``duration`` / ``token_budget`` when enabled, else ``dataloader.sampler``."""
        if self.duration_batching.enabled:
            return "duration"
        if self.token_batching.enabled:
            return "token_budget"
        return self.dataloader.sampler

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the YAML layout (rewards flat); loading it gives an equal config."""
        from .loader import to_dict

        return to_dict(self)

    def dump_yaml(self, path: str | None = None) -> str:
        """The YAML text of :meth:`to_dict`; written to ``path`` too when given."""
        from .loader import dump_yaml

        return dump_yaml(self, path)


def cross_checks(config: VtgConfig) -> list[tuple[str, str]]:
    """Rules between fields: ``(key path, message)`` for each one broken."""
    problems: list[tuple[str, str]] = []
    if config.training.bf16 and config.training.fp16:
        problems.append(("training.fp16", "bf16 and fp16 are both true; choose one"))
    if config.duration_batching.enabled and config.token_batching.enabled:
        problems.append(("token_batching.enabled",
                         "duration_batching and token_batching are both enabled; choose one"))
    for section in ("duration_batching", "token_batching"):
        sec = getattr(config, section)
        if sec.enabled and config.dataloader.sampler not in ("random", config.sampler_name):
            problems.append((f"{section}.enabled",
                             f"{section} is enabled but dataloader.sampler is "
                             f"{config.dataloader.sampler!r}; enable one or the other"))
        if sec.max_batch_size is not None and sec.max_batch_size < sec.min_batch_size:
            problems.append((f"{section}.max_batch_size",
                             f"max_batch_size {sec.max_batch_size} is below min_batch_size {sec.min_batch_size}"))
    return problems
