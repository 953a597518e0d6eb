"""The records that hooks return: what a plugin registers, described without importing it.

A record names a component and says where to build it: ``factory`` is either a callable or a
``"package.module:attr"`` string resolved only when the component is used. That keeps
``import vtg_core``, ``vtg --help`` and ``vtg plugins`` free of torch, transformers and decord even
when every plugin is installed.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

import attrs

from .errors import PluginError

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_REF_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def resolve(ref: str | Callable[..., Any], *, what: str = "factory") -> Callable[..., Any]:
    """Return the object a ``"module:attr"`` string names (or ``ref`` itself if callable)."""
    if callable(ref):
        return ref
    if not isinstance(ref, str) or not _REF_RE.match(ref):
        raise PluginError(f"{what} {ref!r} is neither a callable nor a 'package.module:attr' string")
    module_name, _, attr_path = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"{what} {ref!r}: cannot import {module_name!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise PluginError(f"{what} {ref!r}: module {module_name!r} has no attribute {attr_path!r}") from exc
    return obj


def _check_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise PluginError(
            f"{type(instance).__name__}.name must be lower_snake_case (letters, digits, '_'), got {value!r}"
        )


def _check_factory(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if callable(value):
        return
    if not isinstance(value, str) or not _REF_RE.match(value):
        raise PluginError(
            f"{type(instance).__name__} {getattr(instance, 'name', '?')!r}: factory must be a callable "
            f"or a 'package.module:attr' string, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class _Spec:
    name: str = attrs.field(validator=_check_name)
    description: str = attrs.field(validator=attrs.validators.instance_of(str))
    factory: str | Callable[..., Any] = attrs.field(validator=_check_factory)

    def load(self) -> Callable[..., Any]:
        """Import and return the factory (the only place a plugin's heavy code gets imported)."""
        return resolve(self.factory, what=f"{type(self).__name__} {self.name!r}")

    @property
    def kind(self) -> str:
        raise NotImplementedError


@attrs.frozen(kw_only=True)
class TaskSpec(_Spec):
    """A task: data format, prompts, target answer, parser, default rewards, metrics.

    ``factory(**options)`` returns an object following :class:`vtg_core.tasks.base.Task`.
    ``default_rewards`` is a list of reward entries as in a config's ``rewards:`` list
    (``{"name": ..., "weight": ..., **options}``), used by GRPO when the config names none.
    """

    default_rewards: tuple[dict[str, Any], ...] = attrs.field(default=(), converter=tuple)
    metrics: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    @property
    def kind(self) -> str:
        return "task"


@attrs.frozen(kw_only=True)
class RewardSpec(_Spec):
    """A reward: ``factory(**options)`` returns a callable with TRL's reward signature.

    The callable takes ``prompts``, ``completions`` and the data set's columns as keyword
    arguments and returns one float per completion, or ``None`` where the reward does not apply.
    ``options`` documents the keyword options the factory accepts and their defaults.
    """

    options: dict[str, Any] = attrs.field(factory=dict)

    @property
    def kind(self) -> str:
        return "reward"


@attrs.frozen(kw_only=True)
class BackendSpec(_Spec):
    """A model backend: loading, LoRA, saving, merging, generation for some model families.

    ``check`` (optional, callable or ``"module:attr"``) returns ``(usable: bool, reason: str)``
    without importing the heavy stack when it can, so ``vtg plugins`` can say whether the backend
    works on this machine.
    """

    check: str | Callable[[], tuple[bool, str]] | None = None

    def usable(self) -> tuple[bool, str]:
        if self.check is None:
            return True, ""
        try:
            return resolve(self.check, what=f"BackendSpec {self.name!r} check")()
        except Exception as exc:  # a broken check must not break listing
            return False, f"check failed: {exc}"

    @property
    def kind(self) -> str:
        return "backend"


@attrs.frozen(kw_only=True)
class SamplerSpec(_Spec):
    """A batch sampler: ``factory(samples, *, config, rank, world_size, seed)`` yields batches of indices."""

    @property
    def kind(self) -> str:
        return "sampler"


SPEC_KINDS: dict[str, type[_Spec]] = {
    "task": TaskSpec,
    "reward": RewardSpec,
    "backend": BackendSpec,
    "sampler": SamplerSpec,
}
