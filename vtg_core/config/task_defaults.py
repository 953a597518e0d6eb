"""A task's own config defaults, applied under what the user wrote.

A task class may declare ``config_defaults``: ``{"dotted.key": value}`` (e.g. a multiple-choice
task's LoRA rank, its held-out split, evaluation every epoch). ``vtg train`` applies them over the
packaged defaults but under the user's config files and ``--set`` overrides: a key the user
mentions (or a section above it, or a key below it) keeps the user's value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def task_config_defaults(task_name: str) -> dict[str, Any]:
    """The ``config_defaults`` of the registered task ``task_name`` (empty when it has none)."""
    from ..plugins import get_registry

    factory = get_registry().get("task", task_name).load()
    defaults = getattr(factory, "config_defaults", None) or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"task {task_name!r}: config_defaults must be a dict of dotted keys, got "
                          f"{type(defaults).__name__}")
    return dict(defaults)


def _key(text: str) -> tuple[str, ...]:
    return tuple(text.split("=", 1)[0].strip().replace("[", ".").replace("]", "").split("."))


def _related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _file_keys(path: str) -> list[tuple[str, ...]]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []  # load_config reports unreadable files with their line
    out: list[tuple[str, ...]] = []

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, prefix + (str(k),))
        elif prefix:
            out.append(prefix)

    walk(data, ())
    return out


def user_keys(config_files: Sequence[str] = (), overrides: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """Every key path the user's files and ``--set`` overrides set."""
    keys = [_key(o) for o in overrides]
    for path in config_files:
        keys.extend(_file_keys(path))
    return keys


def apply_task_defaults(config: Any, config_files: Sequence[str] = (), overrides: Sequence[str] = ()) -> Any:
    """``config`` with its task's ``config_defaults`` applied where the user set nothing related."""
    from .loader import apply_overrides

    defaults = task_config_defaults(config.task)
    if not defaults:
        return config
    mine = user_keys(config_files, overrides)
    sets = [f"{key}={json.dumps(value)}" for key, value in defaults.items()
            if not any(_related(tuple(key.split(".")), k) for k in mine)]
    return apply_overrides(config, sets) if sets else config
