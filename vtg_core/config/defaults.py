"""The default config files shipped inside the package, and how to find them.

Source of truth: the repository's ``configs/`` folder is what users read and edit;
``vtg_core/configs/`` holds byte-identical copies so an installed vtg (no repository around)
still finds its defaults. ``tests/test_config.py`` fails when the two differ; after editing
``configs/``, run ``cp -r configs/. vtg_core/configs/``.

The DeepSpeed JSON files leave every value that the trainer also knows (batch sizes, accumulation,
clipping, precision) at ``"auto"``, so the Hugging Face integration fills them from the vtg config
and the two can never disagree. They define no ``optimizer`` or ``scheduler`` on purpose: the
trainer builds its own optimizer with one learning rate per module group
(``training.mm_projector_lr``, ``vision_tower_lr``, ``head_lr``), which a DeepSpeed-built
optimizer would ignore.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

from ..errors import ConfigError

DATA_CONFIG = "data/video_config.yaml"
TRAINING_CONFIGS = {"sft": "training/sft_config.yaml", "rl": "training/rl_config.yaml"}
DEEPSPEED_CONFIGS = {"zero2": "deepspeed/ds_zero2.json", "zero3_offload": "deepspeed/ds_zero3_offload.json"}


def packaged_config_dir() -> Path:
    """The folder of default config files inside the installed package."""
    return Path(str(resources.files("vtg_core").joinpath("configs")))


def packaged_config_path(relative: str) -> Path:
    """Path of one packaged default, e.g. ``packaged_config_path("training/sft_config.yaml")``."""
    path = packaged_config_dir() / relative
    if not path.is_file():
        raise ConfigError(f"no packaged config {relative!r} in {packaged_config_dir()}")
    return path


def list_packaged_configs() -> list[str]:
    """Relative paths of every packaged default (what ``vtg config init`` could copy out)."""
    root = packaged_config_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix in (".yaml", ".json"))


def default_config_paths(stage: Literal["sft", "rl"] = "sft") -> list[Path]:
    """The packaged files that make up the defaults of a stage: the data config, then its training config."""
    if stage not in TRAINING_CONFIGS:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(TRAINING_CONFIGS)}")
    return [packaged_config_path(DATA_CONFIG), packaged_config_path(TRAINING_CONFIGS[stage])]


def default_config(stage: Literal["sft", "rl"] = "sft", overrides: list[str] | tuple[str, ...] = ()):
    """The built-in defaults: packaged ``video_config.yaml`` merged with the stage's training config."""
    from .loader import load_config

    return load_config(default_config_paths(stage), overrides)


def resolve_deepspeed_config(value: str | os.PathLike[str] | None) -> Path | None:
    """Turn ``config.deepspeed`` into a JSON file path.

    Accepts a path to an existing file, or the name of a packaged config (``zero2``,
    ``zero3_offload``, also written ``ds_zero2`` / ``ds_zero2.json``), so an installed vtg can use
    its defaults without knowing where the package lives. ``None`` stays ``None`` (no DeepSpeed).
    """
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        return path
    name = path.name.removesuffix(".json").removeprefix("ds_")
    if name in DEEPSPEED_CONFIGS and len(path.parts) == 1:
        return packaged_config_path(DEEPSPEED_CONFIGS[name])
    raise ConfigError(f"deepspeed: {str(value)!r} is neither an existing file nor a packaged config "
                      f"(packaged: {', '.join(DEEPSPEED_CONFIGS)})")


# The task the packaged training configs' ``rewards:`` list was written for (seed 002).
PACKAGED_REWARDS_TASK = "temporal_grounding"


def user_sets_rewards(config_files: list[str] | tuple[str, ...], overrides: list[str] | tuple[str, ...]) -> bool:
    """Whether the user's own config files or ``--set`` overrides say anything about ``rewards``."""
    import yaml

    if any(o.split("=", 1)[0].strip().split(".")[0].split("[")[0] == "rewards" for o in overrides):
        return True
    for path in config_files:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # load_config reports unreadable files with their line
        if isinstance(data, dict) and "rewards" in data:
            return True
    return False


def drop_packaged_rewards(config, config_files=(), overrides=()):
    """Clear ``rewards`` that only come from the packaged defaults when the task is another one.

    The packaged ``rl_config.yaml`` lists temporal-grounding rewards; a plugin task (refusal,
    multiple choice) must get its own ``default_rewards`` unless the user named rewards.
    """
    import attrs

    if config.task == PACKAGED_REWARDS_TASK or not config.rewards or user_sets_rewards(config_files, overrides):
        return config
    return attrs.evolve(config, rewards=[])
