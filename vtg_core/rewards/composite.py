"""Build rewards from a config's ``rewards:`` list, and combine them into one weighted sum.

An entry is ``{"name": "segment_overlap", "weight": 0.5, "mode": "recall"}``: ``name`` picks a
registered reward, ``weight`` (default 1.0) scales it, every other key is an option for the
reward's factory. The lead's ``RewardEntry`` records (``name``, ``weight``, ``options``) work too.

Two ways to use a list:

- :func:`build_rewards` gives one callable per entry plus the weights, for TRL's ``reward_funcs``
  and ``reward_weights``: TRL then logs every reward on its own (``rewards/<name>``).
- :func:`composite` (registered as the ``composite`` reward) gives one callable returning the
  weighted sum. A ``None`` from a component (not applicable to that row) is left out of the sum;
  when every component is ``None`` the composite is ``None`` too.

Names resolve through the plugin registry (``get_registry().get("reward", name).load()``), or
through ``registry``: a mapping of name -> factory (or ``RewardSpec``) for tests, or any object
with the registry's ``get(kind, name)``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import ConfigError, UnknownNameError

RewardFn = Callable[..., list[float | None]]


@attrs.frozen
class WeightedReward:
    """One built entry: the name TRL logs, its weight, the callable."""

    name: str
    weight: float
    fn: RewardFn


def _entry_parts(entry: Any) -> tuple[str, float, dict[str, Any]]:
    if isinstance(entry, Mapping):
        options = {k: v for k, v in entry.items() if k not in ("name", "weight")}
        name, weight = entry.get("name"), entry.get("weight", 1.0)
    elif hasattr(entry, "name") and hasattr(entry, "options"):
        name, weight, options = entry.name, getattr(entry, "weight", 1.0), dict(entry.options)
    else:
        raise ConfigError(f"a rewards entry must be a mapping with 'name' (and 'weight', options), got {entry!r}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"rewards entry {dict(entry) if isinstance(entry, Mapping) else entry!r} has no 'name'")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise ConfigError(f"reward {name!r}: 'weight' must be a finite number, got {weight!r}")
    return name, float(weight), options


def _factory(name: str, registry: Any) -> Callable[..., RewardFn]:
    if registry is None:
        from ..plugins import get_registry

        registry = get_registry()
    if isinstance(registry, Mapping):
        if name not in registry:
            raise UnknownNameError(f"unknown reward {name!r}; known rewards: {', '.join(sorted(registry)) or 'none'}")
        found = registry[name]
    else:
        found = registry.get("reward", name)
    return found.load() if hasattr(found, "load") else found


def _check_options(name: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    # Bind first so a misspelt option is reported as such, not as a TypeError from deep inside.
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**options)
    except TypeError as exc:
        accepted = [p for p in signature.parameters if p not in ("self",)]
        raise ConfigError(f"reward {name!r}: {exc}; accepted options: {', '.join(accepted) or 'none'}") from exc


def build_rewards(entries: Iterable[Any], registry: Any = None) -> list[WeightedReward]:
    """One :class:`WeightedReward` per entry; ``__name__`` made unique (``name_2``...) for TRL's logs.

    Each callable is guarded (:mod:`vtg_core.rewards.guard`): an entry's ``on_error`` (``raise``,
    ``zero``, ``drop``) and ``timeout`` (seconds) options belong to the guard, not the reward.
    """
    from .guard import GUARD_OPTIONS, check_guard_options, guard_reward

    built: list[WeightedReward] = []
    seen: dict[str, int] = {}
    for entry in entries:
        name, weight, options = _entry_parts(entry)
        guard = {k: options.pop(k) for k in GUARD_OPTIONS if k in options}
        on_error, timeout = check_guard_options(name, guard.get("on_error", "raise"), guard.get("timeout"))
        factory = _factory(name, registry)
        _check_options(name, factory, options)
        if name == "composite" and registry is not None and "registry" not in options:
            options["registry"] = registry  # nested composites resolve names the same way
        fn = factory(**options)
        if not callable(fn):
            raise ConfigError(f"reward {name!r}: its factory returned {type(fn).__name__}, not a callable")
        seen[name] = seen.get(name, 0) + 1
        label = name if seen[name] == 1 else f"{name}_{seen[name]}"
        # A callable object without a writable __name__ keeps its own.
        with contextlib.suppress(AttributeError, TypeError):
            fn.__name__ = label
        built.append(WeightedReward(label, weight, guard_reward(fn, label, on_error=on_error, timeout=timeout)))
    return built


def composite(rewards: Sequence[Any], registry: Any = None, name: str = "composite") -> RewardFn:
    """One reward: the weighted sum of ``rewards`` entries (see the module docstring)."""
    if isinstance(rewards, str | bytes | Mapping) or not isinstance(rewards, Sequence) or not rewards:
        raise ConfigError("reward 'composite': option 'rewards' must be a non-empty list of entries "
                          "like {name: temporal_iou, weight: 1.0}")
    parts = build_rewards(rewards, registry)

    def reward(prompts: Any, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        total: list[float | None] = [None] * n
        for part in parts:
            values = part.fn(prompts=prompts, completions=completions, **kwargs)
            if len(values) != n:
                raise ValueError(f"reward {part.name!r} returned {len(values)} values for {n} completions")
            for i, value in enumerate(values):
                if value is None:
                    continue
                total[i] = (total[i] or 0.0) + part.weight * float(value)
        return total

    reward.__name__ = reward.__qualname__ = name
    reward.components = parts  # type: ignore[attr-defined]  # for logging / debugging
    return reward
