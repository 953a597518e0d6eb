"""What decides an evaluation's numbers, written next to them as ``manifest.json``.

A manifest records every input that can move a metric: the checkpoint (path and a content hash
of its weights, adapter, tokenizer, processor and generation files; for a LoRA adapter its base
model too), the data file (content hash, sample count), the prompts (templates, the task's prompt
options and a hash of every rendered conversation), frame sampling, the parser and metric code
(version constant and source hash), package versions, the seed, generation settings and the
device. Two runs with equal manifests give equal numbers; a test holds the code to that.

Nothing time- or host-specific beyond the device goes in (no timestamps, no host names), so two
identical runs write byte-identical manifests and a ``diff`` shows exactly what changed.

Imports nothing heavy: package versions come from installed metadata, not from importing them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

MANIFEST_FORMAT = 1

#: Distributions whose versions are recorded (missing ones are written as null).
PACKAGES = ("vtg-core", "torch", "transformers", "peft", "trl", "accelerate", "tokenizers", "decord", "av",
            "numpy")

# Files of a checkpoint that decide what it outputs. Trainer state (optimizer, scheduler, RNG
# states, trainer_state.json) changes with every save without changing a single output, so it is
# left out: hashing it would make identical models look different (and cost gigabytes of reads).
_DECIDING_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt", ".tiktoken", ".yaml")
_NOT_DECIDING = frozenset({"trainer_state.json", "training_args.bin"})
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_path(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, or of a folder's files (relative names and contents, hidden ones left out)."""
    root = Path(path)
    if not root.is_dir():
        return sha256_file(root)
    files = {f.relative_to(root).as_posix(): sha256_file(f) for f in sorted(root.rglob("*"))
             if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)}
    return _combined(files)


def sha256_json(data: Any) -> str:
    """Hex SHA-256 of ``data`` as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _combined(files: Mapping[str, str]) -> str:
    return hashlib.sha256("".join(f"{name}\0{digest}\n" for name, digest in sorted(files.items())).encode()).hexdigest()


def directory_hashes(path: str | os.PathLike[str], *, weights_only: bool = False) -> dict[str, str]:
    """``{file name: sha256}`` of the output-deciding files at the top of a model directory.

    ``weights_only`` keeps weights and ``*config.json`` files: what a LoRA base contributes (its
    tokenizer and chat template are replaced by the checkpoint's own).
    """
    suffixes = _WEIGHT_SUFFIXES + ("config.json",) if weights_only else _DECIDING_SUFFIXES
    out = {}
    for entry in sorted(Path(path).iterdir()):
        if (entry.is_file() and not entry.name.startswith(".") and entry.name not in _NOT_DECIDING
                and entry.name.endswith(suffixes)):
            out[entry.name] = sha256_file(entry)
    return out


def hub_revision(name: str) -> str | None:
    """The commit of a Hub model already in the local cache (never touches the network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # not a valid repo id, or a cache layout this version does not know
        return None
    # Cached files live in .../snapshots/<commit>/<file>.
    return Path(found).parent.name if isinstance(found, str) else None


def model_fingerprint(name_or_path: str | os.PathLike[str], *, weights_only: bool = False) -> dict[str, Any]:
    """Path + content hash of a local model directory, or Hub id + cached revision."""
    path = Path(name_or_path)
    if path.is_dir():
        files = directory_hashes(path, weights_only=weights_only)
        return {"path": str(path.resolve()), "sha256": _combined(files), "files": files}
    return {"name": str(name_or_path), "revision": hub_revision(str(name_or_path))}


def checkpoint_fingerprint(name_or_path: str | os.PathLike[str], *, base_model: str | None = None) -> dict[str, Any]:
    """:func:`model_fingerprint` of a checkpoint, plus its kind and (for LoRA) its base model.

    ``base_model`` is the base actually loaded when it was given anew (``--base-model``).
    """
    out = model_fingerprint(name_or_path)
    if not Path(name_or_path).is_dir():
        out["kind"] = "base"
        return out
    from ..backends.checkpoint import read_checkpoint_meta

    try:
        meta = read_checkpoint_meta(name_or_path)
    except FileNotFoundError:
        meta = {}
    out["kind"] = meta.get("kind")
    base = base_model or meta.get("base_model")
    if meta.get("kind") == "lora" and base:
        # The adapter alone does not decide the outputs: a different base gives other numbers.
        out["base_model"] = model_fingerprint(base, weights_only=True)
    return out


def data_fingerprint(path: str | os.PathLike[str], samples: Sequence[Any]) -> dict[str, Any]:
    """Content hash of the annotation file, which samples were kept, and what their videos weigh.

    Videos are fingerprinted by size only (a stat, not a read): hashing every clip of a large
    benchmark would cost more than evaluating it.
    """
    videos = sorted({s.video for s in samples if getattr(s, "video", None)})
    sizes = [os.path.getsize(v) for v in videos if os.path.isfile(v)]
    return {
        "path": str(Path(path).resolve()),
        "sha256": sha256_path(path),
        "num_samples": len(samples),
        "sample_ids_sha256": sha256_json([s.id for s in samples]),
        "videos": {"count": len(videos), "found": len(sizes), "total_bytes": sum(sizes)},
    }


def _sibling_module(task: Any, name: str) -> Any:
    package = type(task).__module__.rpartition(".")[0]
    if not package:
        return None
    try:
        return importlib.import_module(f"{package}.{name}")
    except ImportError:
        return None


def _source_sha256(module: Any) -> str | None:
    try:
        return sha256_file(inspect.getfile(module))
    except (TypeError, OSError):
        return None


def code_fingerprint(task: Any) -> dict[str, Any]:
    """The task class and the parser / metric code that turn answers into numbers.

    The parser's version is ``task.parser_version`` or the ``PARSER_VERSION`` of the task
    package's ``parser`` module; the source hashes catch an edit nobody bumped a version for.
    """
    cls = type(task)
    out: dict[str, Any] = {"task_class": f"{cls.__module__}.{cls.__qualname__}"}
    parser = _sibling_module(task, "parser")
    version = getattr(task, "parser_version", None)
    if version is None and parser is not None:
        version = getattr(parser, "PARSER_VERSION", None)
    out["parser"] = {"version": version, "module": getattr(parser, "__name__", None),
                     "sha256": _source_sha256(parser) if parser is not None else None}
    metrics = _sibling_module(task, "metrics")
    if metrics is not None:
        out["metrics"] = {"module": metrics.__name__, "sha256": _source_sha256(metrics)}
    return out


def prompt_fingerprint(task: Any, samples: Sequence[Any]) -> dict[str, Any]:
    """The prompt templates and options, and a hash of every conversation actually built.

    The rendered hash is what makes this complete for any task: whatever a plugin's prompts
    depend on, a change shows up there. Templates are listed when the task exposes them
    (``task.prompt_templates``, or ``TEMPLATES`` in its package's ``prompts`` module).
    """
    out: dict[str, Any] = {"task": repr(task)}
    templates = getattr(task, "prompt_templates", None)
    if templates is None:
        prompts = _sibling_module(task, "prompts")
        templates = getattr(prompts, "TEMPLATES", None)
    if templates is not None:
        out["templates"] = list(templates)
    for attr in ("prompt_template", "system_prompt", "think"):
        if hasattr(task, attr):
            out[attr] = getattr(task, attr)
    time_format = getattr(task, "time_format", None)
    if time_format is not None and hasattr(time_format, "name"):
        out["time_format"] = time_format.name
    out["rendered_sha256"] = sha256_json([task.build_messages(s) for s in samples])
    return out


def frame_sampling(video_cfg: Any) -> dict[str, Any]:
    """The ``video:`` settings that decide which pixels reach the model (the cache does not)."""
    from ..config.loader import to_dict

    data = to_dict(video_cfg) if not isinstance(video_cfg, Mapping) else dict(video_cfg)
    data.pop("cache", None)
    return data


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def finish(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with ``format`` first and an ``id``: the hash of everything else in it."""
    body = {k: v for k, v in manifest.items() if k not in ("id", "format")}
    return {"format": MANIFEST_FORMAT, "id": sha256_json(body)[:16], **body}


def write_manifest(path: str | os.PathLike[str], manifest: Mapping[str, Any]) -> None:
    from .predictions import atomic_write_text

    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")


# Keys a complete manifest has, for tests and for readers checking a file they were given.
REQUIRED_KEYS = ("format", "id", "task", "source", "data", "prompts", "frame_sampling", "code", "packages", "seed",
                 "generation", "runtime")
