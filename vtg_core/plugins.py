"""Plugin manager: the built-in plugins and every installed ``vtg`` entry point, isolated.

The built-ins (:data:`DEFAULT_PLUGINS`) are loaded exactly like installed plugins and register
with ``trylast=True``, so an installed plugin that registers the same name overrides a built-in.
Two installed plugins that register the same kind and name conflict: that name becomes unusable,
with an error naming both distributions, and everything else keeps working.

A plugin that fails to import, implements a hook that does not exist, or raises inside a hook gets
status ``error``, a warning naming it, and is left out; the rest keep working. Environment:

- ``VTG_STRICT_PLUGINS=1``: any plugin error or conflict raises :class:`PluginError` instead.
- ``VTG_DISABLE_PLUGINS=a,b``: do not load these plugins (entry-point, distribution or built-in
  module names; ``*`` disables every installed plugin).
- ``VTG_PLUGINS=a,b``: allow-list: load only these installed plugins (built-ins always load
  unless disabled by name).
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import warnings
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError, UnknownNameError
from .records import SPEC_KINDS, _Spec

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vtg"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "vtg_core.tasks.plugin",
    "vtg_core.rewards.plugin",
    "vtg_core.samplers.plugin",
    "vtg_core.backends.plugin",
)

# kind -> hook that registers it
REGISTER_HOOKS: dict[str, str] = {
    "task": "vtg_register_tasks",
    "reward": "vtg_register_rewards",
    "backend": "vtg_register_backends",
    "sampler": "vtg_register_samplers",
}


class PluginWarning(UserWarning):
    """A plugin failed to load or clashed with another; the rest of vtg keeps working."""


@attrs.define
class PluginInfo:
    """What ``vtg plugins`` shows about one plugin."""

    name: str
    module: str
    builtin: bool
    distribution: str
    version: str
    status: str = "ok"  # ok | error | disabled | conflict
    error: str | None = None
    hooks: list[str] = attrs.field(factory=list)
    registers: dict[str, list[str]] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class _Entry:
    spec: _Spec
    plugin: PluginInfo


def _env_list(name: str, environ: Mapping[str, str]) -> set[str] | None:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _core_version() -> str:
    from . import __version__

    return __version__


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, pm: pluggy.PluginManager, plugins: list[PluginInfo], strict: bool = False):
        self.pm = pm
        self.plugins = plugins
        self.strict = strict
        self._entries: dict[str, dict[str, _Entry]] = {kind: {} for kind in SPEC_KINDS}
        self._conflicts: dict[tuple[str, str], str] = {}
        self._collect()

    # -- collection ---------------------------------------------------------------------------
    def _plugin_for(self, plugin_obj: Any) -> PluginInfo:
        name = self.pm.get_name(plugin_obj)
        for info in self.plugins:
            if info.name == name:
                return info
        raise PluginError(f"internal: plugin {name!r} has no PluginInfo")

    def _fail(self, info: PluginInfo, message: str, status: str = "error") -> None:
        info.status = status
        info.error = message if info.error is None else f"{info.error}; {message}"
        if self.strict:
            raise PluginError(f"plugin {info.name!r} ({info.distribution}): {message}")
        warnings.warn(f"vtg plugin {info.name!r} ({info.distribution}): {message}", PluginWarning, stacklevel=3)

    def _collect(self) -> None:
        for kind, hook_name in REGISTER_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            # get_hookimpls() lists trylast first; built-ins (trylast) are thus seen before the
            # installed plugins that may override them.
            for impl in hook.get_hookimpls():
                info = self._plugin_for(impl.plugin)
                if info.status != "ok" and info.status != "conflict":
                    continue
                try:
                    records = impl.function()
                except Exception as exc:  # isolate: one broken plugin must not break the others
                    self._fail(info, f"{hook_name}() raised {type(exc).__name__}: {exc}")
                    continue
                self._add_records(kind, hook_name, info, records)

    def _add_records(self, kind: str, hook_name: str, info: PluginInfo, records: Any) -> None:
        spec_type = SPEC_KINDS[kind]
        if records is None:
            return
        if not isinstance(records, list | tuple):
            self._fail(info, f"{hook_name}() must return a list of {spec_type.__name__}, got {type(records).__name__}")
            return
        for record in records:
            if not isinstance(record, spec_type):
                self._fail(info, f"{hook_name}() returned {record!r}, expected {spec_type.__name__}")
                continue
            self._add(kind, record, info)

    def _add(self, kind: str, spec: _Spec, info: PluginInfo) -> None:
        existing = self._entries[kind].get(spec.name)
        info.registers.setdefault(kind, []).append(spec.name)
        if existing is None:
            self._entries[kind][spec.name] = _Entry(spec, info)
            return
        if existing.plugin is info:
            self._fail(info, f"registers {kind} {spec.name!r} twice")
            return
        if existing.plugin.builtin and not info.builtin:
            logger.info("plugin %s overrides built-in %s %r", info.name, kind, spec.name)
            self._entries[kind][spec.name] = _Entry(spec, info)
            return
        if info.builtin and not existing.plugin.builtin:
            return  # the installed plugin keeps precedence
        message = (
            f"{kind} {spec.name!r} is registered by both {existing.plugin.distribution} "
            f"(plugin {existing.plugin.name!r}) and {info.distribution} (plugin {info.name!r}); "
            f"uninstall one or disable it with VTG_DISABLE_PLUGINS={info.name}"
        )
        self._conflicts[(kind, spec.name)] = message
        for plugin in (existing.plugin, info):
            if plugin.status == "ok":
                plugin.status = "conflict"
            plugin.error = message if plugin.error is None else f"{plugin.error}; {message}"
        if self.strict:
            raise PluginError(message)
        warnings.warn(message, PluginWarning, stacklevel=3)

    # -- lookup -------------------------------------------------------------------------------
    def all(self, kind: str) -> dict[str, _Spec]:
        """Every usable component of ``kind``, by name (conflicting names left out)."""
        self._check_kind(kind)
        return {
            name: entry.spec
            for name, entry in sorted(self._entries[kind].items())
            if (kind, name) not in self._conflicts
        }

    def provider(self, kind: str, name: str) -> PluginInfo:
        """The plugin that registered ``kind`` ``name``."""
        self.get(kind, name)
        return self._entries[kind][name].plugin

    def get(self, kind: str, name: str) -> Any:
        """The record for ``kind`` ``name``; unknown names get a close-match suggestion."""
        self._check_kind(kind)
        if (kind, name) in self._conflicts:
            raise PluginError(self._conflicts[(kind, name)])
        entry = self._entries[kind].get(name)
        if entry is None:
            known = sorted(self._entries[kind])
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listing = ", ".join(known) or "none"
            raise UnknownNameError(
                f"unknown {kind} {name!r}.{hint} Known {kind}s: {listing}. "
                f"`vtg list {kind}s` shows them; a plugin may need installing."
            )
        return entry.spec

    def _check_kind(self, kind: str) -> None:
        if kind not in SPEC_KINDS:
            raise ValueError(f"unknown component kind {kind!r}; expected one of {sorted(SPEC_KINDS)}")


def _hook_names(pm: pluggy.PluginManager, plugin: Any) -> tuple[list[str], list[str]]:
    """The hooks ``plugin`` implements, and the marked functions that match no hook."""
    known, unknown = [], []
    for attr in dir(plugin):
        if pm.parse_hookimpl_opts(plugin, attr) is None:
            continue
        (known if attr in hookspecs.__dict__ and attr.startswith("vtg_") else unknown).append(attr)
    return sorted(known), sorted(unknown)


def _spec_hook_names() -> list[str]:
    return sorted(name for name in vars(hookspecs) if name.startswith("vtg_"))


def _register(pm: pluggy.PluginManager, plugin: Any, info: PluginInfo, strict: bool) -> None:
    known, unknown = _hook_names(pm, plugin)
    info.hooks = known
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, _spec_hook_names(), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        message = f"implements unknown hook {', '.join(hints)}; known hooks: {', '.join(_spec_hook_names())}"
        info.status, info.error = "error", message
        if strict or info.builtin:
            raise PluginError(f"plugin {info.name!r} ({info.distribution}): {message}")
        warnings.warn(f"vtg plugin {info.name!r} ({info.distribution}): {message}", PluginWarning, stacklevel=3)
        return
    try:
        pm.register(plugin, name=info.name)
    except Exception as exc:  # pluggy validates hook argument names here
        info.status, info.error = "error", f"{type(exc).__name__}: {exc}"
        if strict or info.builtin:
            raise PluginError(f"plugin {info.name!r} ({info.distribution}): {info.error}") from exc
        warnings.warn(f"vtg plugin {info.name!r} ({info.distribution}): {info.error}", PluginWarning, stacklevel=3)


def _selected(names: Iterable[str], only: set[str] | None, disabled: set[str] | None) -> str | None:
    """Why a plugin known by ``names`` is not loaded, or None if it is."""
    names = set(names)
    if disabled and (names & disabled or "*" in disabled):
        return "disabled by VTG_DISABLE_PLUGINS"
    if only is not None and not names & only:
        return "not in VTG_PLUGINS allow-list"
    return None


def build_registry(
    *,
    builtins: Iterable[str] = DEFAULT_PLUGINS,
    entry_points: bool = True,
    extra: Iterable[tuple[str, Any]] = (),
    environ: Mapping[str, str] | None = None,
    strict: bool | None = None,
) -> Registry:
    """Load plugins and collect what they register.

    ``extra`` adds ``(name, plugin_object)`` pairs as if installed (for tests and
    :func:`vtg_core.testing.fresh_plugin_manager`).
    """
    env = os.environ if environ is None else environ
    strict = _truthy(env.get("VTG_STRICT_PLUGINS")) if strict is None else strict
    disabled = _env_list("VTG_DISABLE_PLUGINS", env)
    only = _env_list("VTG_PLUGINS", env)

    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    core_version = _core_version()

    for module_name in builtins:
        info = PluginInfo(name=module_name, module=module_name, builtin=True,
                          distribution="vtg-core", version=core_version)
        infos.append(info)
        if disabled and module_name in disabled:
            info.status, info.error = "disabled", "disabled by VTG_DISABLE_PLUGINS"
            continue
        # A broken built-in is vtg's own bug: fail loudly, never hide it.
        _register(pm, importlib.import_module(module_name), info, strict=True)

    candidates: list[tuple[PluginInfo, Any]] = []
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(name=ep.name, module=ep.value, builtin=False,
                              distribution=dist.name if dist else "?", version=dist.version if dist else "?")
            candidates.append((info, ep))
    for name, obj in extra:
        module = getattr(obj, "__name__", type(obj).__name__)
        candidates.append((PluginInfo(name=name, module=module, builtin=False,
                                      distribution=name, version="0"), obj))

    for info, source in candidates:
        infos.append(info)
        why_not = _selected({info.name, info.distribution}, only, disabled)
        if why_not:
            info.status, info.error = "disabled", why_not
            continue
        if isinstance(source, metadata.EntryPoint):
            try:
                plugin = source.load()
            except Exception as exc:  # isolate import failures of third-party plugins
                info.status, info.error = "error", f"import failed: {type(exc).__name__}: {exc}"
                if strict:
                    raise PluginError(f"plugin {info.name!r} ({info.distribution}): {info.error}") from exc
                warnings.warn(f"vtg plugin {info.name!r} ({info.distribution}) failed to load: {info.error}",
                              PluginWarning, stacklevel=2)
                continue
        else:
            plugin = source
        _register(pm, plugin, info, strict=strict)

    return Registry(pm, infos, strict=strict)


_REGISTRY: Registry | None = None


def get_registry(*, refresh: bool = False) -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = build_registry()
    return _REGISTRY


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests use this through :mod:`vtg_core.testing`)."""
    global _REGISTRY
    _REGISTRY = registry


def get_plugin_manager() -> pluggy.PluginManager:
    """The pluggy manager behind the process-wide registry (for calling non-register hooks)."""
    return get_registry().pm


def call_hook_isolated(hook_name: str, **kwargs: Any) -> None:
    """Call a non-register hook (``vtg_register_commands``) plugin by plugin, isolating failures."""
    registry = get_registry()
    hook = getattr(registry.pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):
        info = registry._plugin_for(impl.plugin)
        if info.status != "ok":
            continue
        try:
            impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        except Exception as exc:
            registry._fail(info, f"{hook_name}() raised {type(exc).__name__}: {exc}")
