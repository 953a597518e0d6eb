"""Configuration: typed attrs sections, YAML loading and merging, ``--set`` overrides, defaults.

>>> from vtg_core.config import load_config
>>> cfg = load_config(["configs/data/video_config.yaml", "configs/training/sft_config.yaml"],
...                   ["training.learning_rate=1e-5", "lora.target_modules=[q_proj,v_proj]"])  # doctest: +SKIP
>>> cfg.training.learning_rate  # doctest: +SKIP
1e-05

Imports attrs and PyYAML only, so the command line can read configs without the training stack.
"""

from __future__ import annotations

from ..errors import ConfigError
from .defaults import (
    default_config,
    default_config_paths,
    list_packaged_configs,
    packaged_config_dir,
    packaged_config_path,
    resolve_deepspeed_config,
)
from .loader import apply_overrides, deep_merge, dump_yaml, from_dict, load_config, parse_override, to_dict
from .schema import (
    CacheConfig,
    DataloaderConfig,
    DatasetConfig,
    DurationBatchingConfig,
    LoraConfig,
    ModelConfig,
    ResolutionConfig,
    RewardEntry,
    RLConfig,
    TemporalConfig,
    TokenBatchingConfig,
    TrainingConfig,
    ValidationConfig,
    VideoConfig,
    VtgConfig,
)

__all__ = [
    "CacheConfig",
    "ConfigError",
    "DataloaderConfig",
    "DatasetConfig",
    "DurationBatchingConfig",
    "LoraConfig",
    "ModelConfig",
    "RLConfig",
    "ResolutionConfig",
    "RewardEntry",
    "TemporalConfig",
    "TokenBatchingConfig",
    "TrainingConfig",
    "ValidationConfig",
    "VideoConfig",
    "VtgConfig",
    "apply_overrides",
    "deep_merge",
    "default_config",
    "default_config_paths",
    "dump_yaml",
    "from_dict",
    "list_packaged_configs",
    "load_config",
    "packaged_config_dir",
    "packaged_config_path",
    "parse_override",
    "resolve_deepspeed_config",
    "to_dict",
]
