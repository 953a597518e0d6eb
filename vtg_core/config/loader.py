"""YAML in, typed :class:`~vtg_core.config.schema.VtgConfig` out, with errors that point at the line.

``load_config(paths, overrides)`` reads each file, deep-merges them in order (a later file
overrides an earlier one key by key; lists are replaced whole), applies ``--set a.b=c`` overrides
(values read with YAML's scalar rules), then converts the result into the attrs classes. Every
problem found on the way is collected and raised as one :class:`~vtg_core.errors.ConfigError`,
one line per problem, each naming the key path, the file and line it came from (or the ``--set``
that set it) and, for a misspelt key or value, the closest valid one.

Merging happens on plain data before any conversion, so defaults come from the attrs classes only
for keys that no file sets, and ``to_dict`` / ``dump_yaml`` write the layout ``load_config``
reads: loading a dump gives an equal config.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from ..errors import ConfigError
from .schema import RewardEntry, VtgConfig, cross_checks

KeyPath = tuple[str | int, ...]

_OVERRIDE_KEY_RE = re.compile(r"^[A-Za-z_]\w*(\.(?:[A-Za-z_]\w*|\d+))*$")


# --------------------------------------------------------------------------------------------
# Paths and locations


def format_path(path: Iterable[str | int]) -> str:
    """``('rewards', 1, 'mode')`` -> ``'rewards[1].mode'``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Origins:
    """Where each key path got its value: ``"file:line"`` or ``"--set a.b=c"``.

    A path without an entry of its own (a key a file left out of a section it set) falls back to
    its nearest ancestor, so a message still names the file when it cannot name the line.
    """

    def __init__(self) -> None:
        self._where: dict[KeyPath, str] = {}

    def set(self, path: KeyPath, where: str) -> None:
        self._where[path] = where

    def forget_below(self, path: KeyPath) -> None:
        # The value at ``path`` was replaced whole: locations of its old children are stale.
        n = len(path)
        for key in [k for k in self._where if len(k) > n and k[:n] == path]:
            del self._where[key]

    def get(self, path: KeyPath) -> str | None:
        for n in range(len(path), 0, -1):
            where = self._where.get(path[:n])
            if where is not None:
                return where
        return None


class _Problems:
    """Problems collected while loading, raised together so a user fixes them in one pass."""

    def __init__(self, origins: _Origins) -> None:
        self.origins = origins
        self.items: list[str] = []

    def add(self, path: KeyPath, message: str, *, where: str | None = None) -> None:
        where = where or self.origins.get(path)
        self.items.append(f"{where}: {message}" if where else message)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            err = ConfigError(self.items[0])
        else:
            err = ConfigError(f"{len(self.items)} problems in the configuration:\n  " + "\n  ".join(self.items))
        err.problems = list(self.items)  # type: ignore[attr-defined]  # for callers that list them
        raise err


# --------------------------------------------------------------------------------------------
# Reading YAML with line numbers


def _walk_node(node: yaml.Node, path: KeyPath, label: str, origins: dict[KeyPath, str],
               problems: _Problems) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # keys pulled in by '<<' keep the location of their section
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.add(path + (key,), f"duplicate key {format_path(path + (key,))!r} "
                             f"(also on line {seen[key]}); YAML keeps only the last one",
                             where=f"{label}:{line}")
            seen[key] = line
            origins[path + (key,)] = f"{label}:{line}"
            _walk_node(value_node, path + (key,), label, origins, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            origins[path + (i,)] = f"{label}:{item.start_mark.line + 1}"
            _walk_node(item, path + (i,), label, origins, problems)


def read_yaml(path: str | os.PathLike[str], problems: _Problems) -> tuple[dict[str, Any], dict[KeyPath, str]]:
    """Read one config file: its data and the ``file:line`` of every key in it."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: config file not found (cwd is {os.getcwd()})") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read config file: {exc}") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}, {}  # an empty file (or only comments) changes nothing
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: a config file must be a mapping of sections "
                          f"(e.g. 'training:'), not a {type(data).__name__}")
    origins: dict[KeyPath, str] = {}
    _walk_node(node, (), label, origins, problems)
    return data, origins


# --------------------------------------------------------------------------------------------
# Merging and overrides


def deep_merge(base: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``new`` into a copy of ``base``: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    _merge_into(out, new, (), _Origins())
    return out


def _merge_into(base: dict[str, Any], new: Mapping[str, Any], path: KeyPath, origins: _Origins) -> None:
    for key, value in new.items():
        sub = path + (key,)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge_into(base[key], value, sub, origins)
        else:
            base[key] = copy.deepcopy(value)
            origins.forget_below(sub)


def parse_override(text: str) -> tuple[KeyPath, Any]:
    """``'training.learning_rate=1e-5'`` -> ``(('training', 'learning_rate'), '1e-5')``.

    The value is read as a YAML flow scalar / collection: ``null``, ``true``, ``3``,
    ``[q_proj, v_proj]``, ``{height: 256, width: 256}``; ``1e-5`` stays a string (YAML 1.1) and is
    converted where the field is a number. A list item is addressed as ``rewards.0.weight`` or
    ``rewards[0].weight``.
    """
    key, sep, raw = text.partition("=")
    key = re.sub(r"\[(\d+)\]", r".\1", key.strip())
    if not sep or not _OVERRIDE_KEY_RE.match(key):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. "
                          f"--set training.learning_rate=1e-5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML: "
                          f"{getattr(exc, 'problem', None) or exc}") from None
    path: KeyPath = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    return path, value


def _apply_override(data: dict[str, Any], text: str, origins: _Origins) -> None:
    path, value = parse_override(text)
    label = f"--set {text}"
    node: Any = data
    for i, part in enumerate(path[:-1]):
        where = format_path(path[: i + 1])
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                size = len(node) if isinstance(node, list) else 0
                raise ConfigError(f"{label}: {format_path(path[:i])!r} has no item {part} "
                                  f"(it has {size}); set the whole list instead")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{label}: {format_path(path[:i])!r} is not a section, so it has no key {part!r}")
        if node.get(part) is None:
            node[part] = {}  # a section no file set yet (or set to null): defaults fill the rest
        node = node[part]
        if not isinstance(node, dict | list):
            raise ConfigError(f"{label}: {where!r} is a value, not a section")
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not -len(node) <= last < len(node):
            raise ConfigError(f"{label}: {format_path(path[:-1])!r} has no item {last}")
        node[last] = value
    elif not isinstance(node, dict):
        raise ConfigError(f"{label}: {format_path(path[:-1])!r} is not a section")
    elif isinstance(value, dict) and isinstance(node.get(last), dict):
        # A mapping merges like a file would, so --set video.resolution={height: 256} keeps width.
        _merge_into(node[last], value, path, origins)
    else:
        node[last] = value
    origins.forget_below(path)
    origins.set(path, label)
    for n in range(1, len(path)):
        if origins.get(path[:n]) is None:
            origins.set(path[:n], label)  # sections the override created: an unknown one names the --set


# --------------------------------------------------------------------------------------------
# Converting plain data into the attrs classes


class _Bad(Exception):
    """A value that does not fit its field; the message completes "'a.b' must be ..."."""


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is Any:
        return "anything"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        if item is RewardEntry:
            return "a list of {name: ..., weight: ...} entries"
        return f"a list of {_describe(item).removeprefix('a ').removeprefix('an ')}s"
    if tp is RewardEntry:
        return "a {name: ..., weight: ...} entry"
    if origin is dict:
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        text = " or ".join(_describe(a) for a in args)
        return text + (" or null" if len(args) < len(typing.get_args(tp)) else "")
    if attrs.has(tp):
        return "a mapping (a section)"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _number(value: str) -> float | None:
    try:
        return float(value.strip())
    except ValueError:
        return None


def _convert(tp: Any, value: Any, path: KeyPath, problems: _Problems) -> Any:
    """Convert ``value`` to ``tp`` or raise :class:`_Bad`; sections report into ``problems``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return copy.deepcopy(value)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path, problems)
            except _Bad:
                continue
        raise _Bad(f"must be {_describe(tp)}, got {_show(value)}")
    if attrs.has(tp):
        if value is None:
            value = {}  # a section whose keys are all commented out
        if not isinstance(value, Mapping):
            raise _Bad(f"must be {_describe(tp)}, got {_show(value)}")
        return _structure(tp, value, path, problems)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value in choices and isinstance(value, str):
            return value
        near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise _Bad(f"must be {_describe(tp)}, got {_show(value)}{hint}")
    if origin is list:
        if not isinstance(value, list):
            raise _Bad(f"must be {_describe(tp)}, got {_show(value)}")
        (item_tp,) = typing.get_args(tp)
        out = []
        for i, item in enumerate(value):
            try:
                out.append(_convert(item_tp, item, path + (i,), problems))
            except _Bad as exc:
                problems.add(path + (i,), f"{format_path(path + (i,))!r} {exc}")
        return out
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Bad(f"must be {_describe(tp)}, got {_show(value)}")
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise _Bad(f"must have string keys, got {_show(bad[0])}")
        return copy.deepcopy(dict(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Bad(f"must be true or false, got {_show(value)}")
    if tp is int:
        # bool is an int subclass in Python; in a config it is always a mistake here.
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = value if isinstance(value, float) else _number(value) if isinstance(value, str) else None
        if number is not None and number == number and float(number).is_integer():
            return int(number)
        raise _Bad(f"must be an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        # PyYAML reads '1e-4' (no dot) as a string: YAML 1.1 wants '1.0e-4'. Users write 1e-4.
        number = _number(value) if isinstance(value, str) else None
        if number is not None:
            return number
        raise _Bad(f"must be a number, got {_show(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        hint = "; quote it in YAML if it is meant as text" if isinstance(value, int | float) else ""
        raise _Bad(f"must be a string, got {_show(value)}{hint}")
    raise TypeError(f"config field type {tp!r} at {format_path(path)} is not supported")  # a schema bug


def _all_field_paths(cls: type, prefix: KeyPath = ()) -> dict[str, list[str]]:
    """Leaf name -> every dotted path that has it, for "it belongs in 'training.x'" hints."""
    out: dict[str, list[str]] = {}
    for f in attrs.fields(cls):
        tp = _hints(cls)[f.name]
        out.setdefault(f.name, []).append(format_path(prefix + (f.name,)))
        if attrs.has(tp):
            for name, paths in _all_field_paths(tp, prefix + (f.name,)).items():
                out.setdefault(name, []).extend(paths)
    return out


def _unknown_key_message(cls: type, key: Any, path: KeyPath) -> str:
    full = format_path(path + (key,))
    names = [f.name for f in attrs.fields(cls)]
    near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    if near:
        return f"unknown key {full!r} (did you mean {near[0]!r}?)"
    elsewhere = [p for p in _all_field_paths(VtgConfig).get(str(key), []) if p != full]
    if elsewhere:
        return f"unknown key {full!r} ({key!r} belongs in {' or '.join(repr(p) for p in elsewhere)})"
    section = format_path(path) or "the top level"
    return f"unknown key {full!r}; keys of {section}: {', '.join(names)}"


def _structure_reward(value: Mapping[str, Any], path: KeyPath, problems: _Problems) -> RewardEntry:
    if "name" not in value:
        raise _Bad("needs a 'name' (the reward to use, see `vtg list`)")
    name = value["name"]
    if not isinstance(name, str):
        raise _Bad(f"name must be a string, got {_show(name)}")
    weight = 1.0
    if "weight" in value:
        try:
            weight = _convert(float, value["weight"], path + ("weight",), problems)
        except _Bad as exc:
            problems.add(path + ("weight",), f"{format_path(path + ('weight',))!r} {exc}")
    options = {k: copy.deepcopy(v) for k, v in value.items() if k not in ("name", "weight", "options")}
    if isinstance(value.get("options"), Mapping):
        # Accept the nested form too; to_dict always writes the flat one.
        options = {**copy.deepcopy(dict(value["options"])), **options}
    elif "options" in value:
        options["options"] = copy.deepcopy(value["options"])
    return RewardEntry(name=name, weight=weight, options=options)


def _structure(cls: type, data: Mapping[str, Any], path: KeyPath, problems: _Problems) -> Any:
    if cls is RewardEntry:
        return _structure_reward(data, path, problems)
    fields = {f.name: f for f in attrs.fields(cls)}
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        sub = path + (key,)
        if key not in fields:
            problems.add(sub, _unknown_key_message(cls, key, path))
            continue
        field = fields[key]
        try:
            converted = _convert(hints[key], value, sub, problems)
        except _Bad as exc:
            problems.add(sub, f"{format_path(sub)!r} {exc}")
            continue
        check = field.metadata.get("check")
        message = check(converted) if check else None
        if message:
            problems.add(sub, f"{format_path(sub)!r} {message} (got {converted!r})")
            continue
        kwargs[key] = converted
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Public API


def from_dict(data: Mapping[str, Any], *, source: str | None = None) -> VtgConfig:
    """Build a :class:`VtgConfig` from plain data in the YAML layout (missing keys take defaults)."""
    origins = _Origins()
    if source:
        origins.set((), source)
    problems = _Problems(origins)
    return _finish(data, problems)


def _finish(data: Mapping[str, Any], problems: _Problems) -> VtgConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"a configuration must be a mapping of sections, not a {type(data).__name__}")
    config = _structure(VtgConfig, data, (), problems)
    problems.raise_if_any()
    for path, message in cross_checks(config):
        key_path: KeyPath = tuple(path.split("."))
        problems.add(key_path, f"{path!r}: {message}")
    problems.raise_if_any()
    return config


def load_config(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
                overrides: Iterable[str] = ()) -> VtgConfig:
    """Load and merge config files in order, then apply ``--set KEY=VALUE`` overrides.

    Later files override earlier ones key by key (deep merge; a list is replaced whole). Keys no
    file sets keep the defaults of :mod:`vtg_core.config.schema`. Raises
    :class:`~vtg_core.errors.ConfigError` listing every unknown key, wrong type and bad value,
    each with its file and line.

    >>> cfg = load_config(["configs/data/video_config.yaml", "configs/training/sft_config.yaml"],
    ...                   ["training.learning_rate=1e-5"])  # doctest: +SKIP
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]  # a lone path would otherwise be iterated character by character
    if isinstance(overrides, str):
        overrides = [overrides]
    origins = _Origins()
    problems = _Problems(origins)
    data: dict[str, Any] = {}
    for path in paths:
        file_data, file_origins = read_yaml(path, problems)
        _merge_into(data, file_data, (), origins)
        for key_path, where in file_origins.items():
            origins.set(key_path, where)
    for text in overrides:
        _apply_override(data, text, origins)
    return _finish(data, problems)


def apply_overrides(config: VtgConfig, overrides: Iterable[str]) -> VtgConfig:
    """A new config: ``config`` with ``--set KEY=VALUE`` overrides applied and checked."""
    if isinstance(overrides, str):
        overrides = [overrides]
    origins = _Origins()
    problems = _Problems(origins)
    data = to_dict(config)
    for text in overrides:
        _apply_override(data, text, origins)
    return _finish(data, problems)


def _plain(value: Any) -> Any:
    if isinstance(value, RewardEntry):
        return {"name": value.name, "weight": value.weight, **_plain(value.options)}
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_dict(config: VtgConfig) -> dict[str, Any]:
    """Plain data in the YAML layout (rewards flat: ``{name, weight, **options}``)."""
    return _plain(config)


def dump_yaml(config: VtgConfig, path: str | os.PathLike[str] | None = None) -> str:
    """YAML of the resolved config; ``load_config([that file])`` gives an equal config back."""
    from .. import __version__

    text = (f"# Resolved vtg {__version__} configuration: every key, after merging files and --set.\n"
            + yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False, allow_unicode=True))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    return text
