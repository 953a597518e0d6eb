"""``vtg doctor``: is this machine's stack one vtg was tested with, and does training run on it?

Four sections, one plain verdict per line:

- **versions**: python and the training stack, read with :mod:`importlib.metadata` (nothing is
  imported), against the tested ranges. The ranges are not written down here: they are parsed
  from the installed ``vtg-core`` distribution's own requirements (``pyproject.toml`` of a source
  checkout when it is not installed), so the doctor and the packaging can never disagree.
  Verdicts: ``ok``, ``untested`` (installed, outside the range), ``missing`` (required and not
  installed), ``absent`` (optional and not installed).
- **gpu**: what torch sees: CUDA devices and bf16 support, or ``none (CPU only)``, which is a
  plain fact, not a failure.
- **decoders**: decord and PyAV each decode a generated one-second clip, and the line ``used``
  says which one ``decoder="auto"`` picks for it.
- **smoke**: for every registered backend, two SFT steps and two GRPO steps of the tiny offline
  Qwen3-VL on a few generated clips, through :func:`vtg_core.train.run.train` (what
  ``vtg train`` runs), timed. A backend whose ``usable()`` check fails is ``skipped``.

Problems (the exit status of ``vtg doctor``): a required package missing, PyAV unable to decode,
or a smoke run that failed. Everything else is information.

Only the standard library and attrs are imported at module level; torch, the decoders and the
training code are imported inside the checks that need them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import platform
import re
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

DISTRIBUTION = "vtg-core"

#: What the versions section shows, in order (distribution names). Whether one is required, and
#: its range, come from vtg-core's requirements; one they do not name (deepspeed, flash-attn:
#: optional speed-ups) is optional with any version.
PACKAGES: tuple[str, ...] = (
    "torch",
    "torchvision",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "decord",
    "av",
    "deepspeed",
    "flash-attn",
)

#: Extras whose packages ``vtg train`` needs; the others (decord, viz, test) are optional.
REQUIRED_EXTRAS: frozenset[str | None] = frozenset({None, "train"})

SECTIONS = ("versions", "gpu", "decoders", "smoke")

# Settings of the smoke runs on top of the offline demo's (DEMO_OVERRIDES): two steps, a batch of
# two, short clips and completions, so SFT + GRPO take seconds on a CPU. LoRA and gradient
# checkpointing are switched back on (the demo trains in full) because they are what real runs
# use and where peft / transformers upgrades break first. Temporal tokens go back to the packaged
# default (off): the demo's choice of answer format is not what a stack check is about, and the
# smoke runs should not change whenever the demo is retuned. No dataloader workers: two steps
# gain nothing from them and each worker costs a process start.
SMOKE_STEPS = 2
SMOKE_OVERRIDES: tuple[str, ...] = (
    f"training.max_steps={SMOKE_STEPS}",
    "training.per_device_train_batch_size=2",
    "training.logging_steps=1",
    "rl.num_generations=2",
    "rl.max_completion_length=8",
    "video.max_frames=4",
    "dataloader.num_workers=0",
    "validation.annotation_file=null",
    "validation.split_fraction=0",
    "lora.enabled=true",
    "lora.r=8",
    "lora.lora_alpha=16",
    "model.gradient_checkpointing=true",
    "temporal.use_temporal_tokens=false",
)
SMOKE_DATA = {"num_train": 4, "num_val": 0, "duration_range": (2.0, 3.0), "fps": 4, "size": (64, 64)}
SMOKE_METHODS = ("sft", "grpo")


@attrs.define
class Check:
    """One line of the report.

    ``problem`` marks the lines that make ``vtg doctor`` exit non-zero. ``traceback`` is kept for
    failed smoke runs (shown by ``--json``), so the one-line verdict stays one line.
    """

    section: str
    name: str
    verdict: str
    version: str | None = None
    range: str | None = None
    detail: str = ""
    seconds: float | None = None
    required: bool | None = None
    problem: bool = False
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


# ---------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name (``flash_attn`` and ``Flash-Attn`` are one package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@attrs.frozen
class Requirement:
    """One requirement of vtg-core: ``specs`` are ``(operator, version)`` pairs; ``extra`` is the
    extra that pulls it in (None for a core dependency); ``applies`` is False where its marker
    excludes this platform (decord off x86_64)."""

    name: str
    specs: tuple[tuple[str, str], ...]
    extra: str | None = None
    applies: bool = True

    @property
    def range(self) -> str:
        return format_specs(self.specs)


_OP_ORDER = {">=": 0, ">": 0, "~=": 1, "==": 1, "===": 1, "<=": 2, "<": 2, "!=": 3}
_REQ_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*\(?([^;()]*)\)?\s*(?:;\s*(.*))?$")
_SPEC_RE = re.compile(r"^\s*(===|~=|==|!=|<=|>=|<|>)\s*([^\s,]+)\s*$")
_EXTRA_RE = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def format_specs(specs: Iterable[tuple[str, str]]) -> str:
    """``>=5.0,<5.24``: lower bounds first, as people write ranges (not packaging's sorted order)."""
    ordered = sorted(specs, key=lambda s: (_OP_ORDER.get(s[0], 9), s[1]))
    return ",".join(op + v for op, v in ordered) or "any"


def _parse_specs(text: str) -> tuple[tuple[str, str], ...]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _SPEC_RE.match(part)
        if not m:
            raise ValueError(f"cannot read version specifier {part!r}")
        out.append((m.group(1), m.group(2)))
    return tuple(out)


def parse_requirement(text: str) -> Requirement:
    """A requirement string of the distribution's metadata (``trl<1.17,>=1.0; extra == "train"``).

    packaging (present wherever pip is) parses and evaluates the marker; without it a small
    parser reads the name, the specifiers and the extra, and assumes the marker applies.
    """
    extra_m = _EXTRA_RE.search(text.partition(";")[2])
    extra = extra_m.group(1) if extra_m else None
    try:
        from packaging.requirements import Requirement as _PkgRequirement
    except ImportError:
        _PkgRequirement = None
    if _PkgRequirement is not None:
        req = _PkgRequirement(text)
        applies = True
        if req.marker is not None:
            # The extra must be set for the marker to hold; the platform parts are then real.
            applies = req.marker.evaluate({"extra": extra or ""})
        specs = tuple((s.operator, s.version) for s in req.specifier)
        return Requirement(canonical(req.name), specs, extra, applies)
    m = _REQ_RE.match(text)
    if not m:
        raise ValueError(f"cannot read requirement {text!r}")
    return Requirement(canonical(m.group(1)), _parse_specs(m.group(2)), extra, True)


def _release(version: str) -> tuple[int, ...]:
    """The numeric release part of a version (``2.14.1+cpu`` -> (2, 14, 1)); enough for ranges
    written with plain release numbers, which is all vtg's requirements use."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    if not m:
        raise ValueError(f"cannot read version {version!r}")
    return tuple(int(p) for p in m.group(1).split("."))


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def _simple_satisfies(version: str, op: str, bound: str) -> bool:
    """One specifier without packaging. ``==X.*`` and ``~=`` are handled; pre-releases are not
    told apart from releases (a dev build counts as its release number)."""
    if bound.endswith(".*") and op in ("==", "!="):
        prefix = _release(bound[:-2])
        match = _release(version)[: len(prefix)] + (0,) * max(0, len(prefix) - len(_release(version))) == prefix
        return match if op == "==" else not match
    v, b = _release(version), _release(bound)
    c = _cmp(v, b)
    if op in ("==", "==="):
        return c == 0
    if op == "!=":
        return c != 0
    if op == ">=":
        return c >= 0
    if op == ">":
        return c > 0
    if op == "<=":
        return c <= 0
    if op == "<":
        return c < 0
    if op == "~=":
        upper = b[:-1] if len(b) > 1 else b
        return c >= 0 and v[: len(upper)] == upper
    raise ValueError(f"unknown version operator {op!r}")


def version_in_range(version: str, specs: Sequence[tuple[str, str]], *, use_packaging: bool = True) -> bool:
    """Whether ``version`` satisfies every ``(operator, version)`` in ``specs``.

    packaging decides when it is importable (pre-releases count as inside the range: a nightly
    of a tested line is "in range", not "untested"); otherwise a small release-number comparator.
    """
    if not specs:
        return True
    if use_packaging:
        try:
            from packaging.specifiers import SpecifierSet
            from packaging.version import InvalidVersion, Version
        except ImportError:
            pass
        else:
            try:
                return SpecifierSet(",".join(op + v for op, v in specs)).contains(Version(version), prereleases=True)
            except InvalidVersion:
                pass  # a non-PEP 440 version string: the release-number comparison may still read it
    return all(_simple_satisfies(version, op, bound) for op, bound in specs)


def _source_requirements() -> tuple[list[str], str | None] | None:
    """Requirements of a source checkout's ``pyproject.toml`` (vtg run from a tree, not installed)."""
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        return None
    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    if project.get("name") != DISTRIBUTION:
        return None
    reqs = list(project.get("dependencies", []))
    for extra, items in project.get("optional-dependencies", {}).items():
        for item in items:
            base, _, marker = item.partition(";")
            marker = f"({marker.strip()}) and extra == \"{extra}\"" if marker.strip() else f"extra == \"{extra}\""
            reqs.append(f"{base.strip()}; {marker}")
    return reqs, project.get("requires-python")


def vtg_requirements() -> tuple[list[str], str | None, str]:
    """``(requirement strings, Requires-Python, where they came from)`` of vtg-core."""
    try:
        reqs = metadata.requires(DISTRIBUTION) or []
        requires_python = metadata.metadata(DISTRIBUTION).get("Requires-Python")
        return list(reqs), requires_python, f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)} metadata"
    except metadata.PackageNotFoundError:
        found = _source_requirements()
        if found is None:
            return [], None, "no vtg-core metadata found"
        return found[0], found[1], "pyproject.toml"


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None; nothing is imported."""
    for candidate in dict.fromkeys((name, canonical(name), canonical(name).replace("-", "_"))):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_versions(
    requirements: Sequence[str],
    requires_python: str | None,
    *,
    packages: Sequence[str] = PACKAGES,
    installed: Callable[[str], str | None] | Mapping[str, str | None] = installed_version,
    python_version: str | None = None,
    use_packaging: bool = True,
) -> list[Check]:
    """One :class:`Check` for python and each of ``packages``.

    ``installed`` maps a distribution name to its version (None: not installed); tests pass a
    dict. A package is required when a core requirement or the ``train`` extra names it (and its
    marker applies here); every other package is optional.
    """
    lookup = (lambda n: installed.get(n, installed.get(canonical(n)))) if isinstance(installed, Mapping) else installed
    parsed: dict[str, list[Requirement]] = {}
    for text in requirements:
        req = parse_requirement(text)
        parsed.setdefault(req.name, []).append(req)

    checks = []
    py = python_version or platform.python_version()
    py_specs = _parse_specs(requires_python or "")
    ok = version_in_range(py, py_specs, use_packaging=use_packaging)
    checks.append(Check("versions", "python", "ok" if ok else "untested", version=py, range=format_specs(py_specs),
                        required=True))

    for name in packages:
        reqs = parsed.get(canonical(name), [])
        applicable = [r for r in reqs if r.applies]
        required = any(r.extra in REQUIRED_EXTRAS for r in applicable)
        specs = tuple(s for r in applicable for s in r.specs)
        rng = format_specs(specs) if applicable or not reqs else "not needed on this platform"
        version = lookup(name)
        if version is None:
            verdict = "missing" if required else "absent"
            checks.append(Check("versions", name, verdict, range=rng, required=required, problem=required,
                                detail=_install_hint(reqs) if required else ""))
            continue
        try:
            inside = version_in_range(version, specs, use_packaging=use_packaging)
        except ValueError:  # an unreadable version string cannot be vouched for
            inside = False
        checks.append(Check("versions", name, "ok" if inside else "untested", version=version, range=rng,
                            required=required))
    return checks


def _install_hint(reqs: Sequence[Requirement]) -> str:
    extras = sorted({r.extra for r in reqs if r.extra})
    return f"pip install 'vtg-core[{extras[0]}]'" if extras else f"pip install {DISTRIBUTION}"


# ---------------------------------------------------------------------------------------------
# GPU
# ---------------------------------------------------------------------------------------------


def check_gpu() -> list[Check]:
    """CUDA devices as torch sees them (importing torch is the only way to know what it sees)."""
    if importlib.util.find_spec("torch") is None:
        return [Check("gpu", "cuda", "unknown", detail="torch is not installed")]
    try:
        import torch

        if not torch.cuda.is_available():
            return [Check("gpu", "cuda", "none", detail="(CPU only)")]
        checks = []
        bf16 = bool(torch.cuda.is_bf16_supported())
        for i in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(i)
            checks.append(Check("gpu", f"cuda:{i}", "ok", detail=f"{name}, bf16 {'yes' if bf16 else 'no'}",
                                version=torch.version.cuda))
        return checks
    except Exception as exc:  # a broken driver is worth a line, not a crash of the whole report
        return [Check("gpu", "cuda", "FAILED", detail=_one_line(exc))]


# ---------------------------------------------------------------------------------------------
# Decoders
# ---------------------------------------------------------------------------------------------


def check_decoders(work_dir: str | os.PathLike[str]) -> list[Check]:
    """decord and PyAV each decode a generated one-second clip; ``used`` is what ``auto`` picks.

    PyAV is required (it also writes the clip); decord is optional, and a decord that fails is
    reported but is no problem: ``decoder="auto"`` falls back to PyAV.
    """
    checks: list[Check] = []
    try:
        from .data.synthetic import Event, make_clip

        clip = make_clip(Path(work_dir) / "doctor_clip.mp4", duration=1.0, fps=8, size=(64, 64),
                         events=[Event(start=0.25, end=0.75)])
    except Exception as exc:
        return [Check("decoders", "pyav", "FAILED", version=installed_version("av"), problem=True,
                      detail=f"cannot write a test clip: {_one_line(exc)}")]

    from .data.video import load_frames

    for name, dist, required in (("decord", "decord", False), ("pyav", "av", True)):
        version = installed_version(dist)
        if version is None:
            checks.append(Check("decoders", name, "missing" if required else "absent", problem=required,
                                detail="" if not required else "pip install av"))
            continue
        try:
            frames = load_frames(clip, max_frames=4, decoder=name)
            n = int(frames.array.shape[0])
            if n != 4:
                raise RuntimeError(f"decoded {n} frames, expected 4")
            checks.append(Check("decoders", name, "ok", version=version,
                                detail=f"decoded {n} frames of a 1 s clip"))
        except Exception as exc:
            detail = _one_line(exc) + ("" if required else "; PyAV decodes instead")
            checks.append(Check("decoders", name, "FAILED", version=version, detail=detail, problem=required))
    try:
        used = load_frames(clip, max_frames=4).decoder
        fallback = "PyAV as the fallback" if used == "decord" else "decord not used"
        checks.append(Check("decoders", "used", used, detail=f"for mp4/H.264 clips ({fallback})"))
    except Exception as exc:
        checks.append(Check("decoders", "used", "FAILED", detail=_one_line(exc), problem=True))
    return checks


# ---------------------------------------------------------------------------------------------
# Smoke runs
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_training() -> Iterator[io.StringIO]:
    """Keep a training run's output (progress bars, log lines, warnings) off the report.

    Everything printed is captured (and dropped unless needed). The root logger's level is
    restored too: ``train`` lowers it to INFO for its log file. torch runs on one thread: the
    tiny model gains nothing from intra-op threads, and on a small shared CPU their spin-waits
    made steps up to 10x slower (see tests/conftest.py).
    """
    buffer = io.StringIO()
    root = logging.getLogger()
    root_level, disabled = root.level, logging.root.manager.disable
    torch = None
    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            warnings.simplefilter("ignore")
            # Handlers made before the redirect still hold the real stderr: silence them instead.
            logging.disable(logging.CRITICAL)
            yield buffer
    finally:
        logging.disable(disabled)
        root.setLevel(root_level)
        if torch is not None and threads is not None:
            torch.set_num_threads(threads)


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def smoke_config(method: str, backend: str, model_dir: str, data: Mapping[str, str]) -> Any:
    """The config of one smoke run: the offline demo's settings, :data:`SMOKE_OVERRIDES`, and
    the generated data and tiny model."""
    from .config import default_config
    from .train.run import DEMO_OVERRIDES

    stage = "rl" if method == "grpo" else "sft"
    overrides = [*DEMO_OVERRIDES, *SMOKE_OVERRIDES, f"model.backend={backend}", f"model.name_or_path={model_dir}",
                 f"dataset.annotation_file={data['train']}", f"dataset.video_dir={data['video_dir']}"]
    return default_config(stage, overrides)


def _prepare_smoke(work_dir: Path, model_dir: str | None) -> tuple[str, dict[str, str]]:
    from .data.synthetic import make_grounding_dataset

    data = make_grounding_dataset(work_dir / "data", seed=0, **SMOKE_DATA)
    if model_dir is None:
        from .testing import tiny_model_dir

        # Cached per process: a test session that built the tiny model already reuses it.
        model_dir = tiny_model_dir()
    return model_dir, data


def check_smoke(work_dir: str | os.PathLike[str], *, backends: Sequence[str] | None = None,
                registry: Any = None, model_dir: str | None = None) -> Iterator[Check]:
    """Two SFT and two GRPO steps per usable backend (all registered ones unless ``backends``)."""
    from .plugins import get_registry

    registry = registry or get_registry()
    specs = registry.all("backend")
    names = list(specs) if backends is None else list(backends)
    work = Path(work_dir)
    prepared: tuple[str, dict[str, str]] | None = None
    setup_error: str | None = None
    for name in names:
        spec = specs.get(name)
        if spec is None:
            yield Check("smoke", name, "FAILED", problem=True,
                        detail=f"no backend {name!r} registered (known: {', '.join(specs) or 'none'})")
            continue
        usable, reason = spec.usable()
        if not usable:
            yield Check("smoke", name, "skipped", detail=f"skipped: {reason or 'not usable here'}")
            continue
        if prepared is None and setup_error is None:
            start = time.perf_counter()
            try:
                with _quiet_training():
                    prepared = _prepare_smoke(work, model_dir)
            except Exception as exc:
                setup_error = _one_line(exc)
                yield Check("smoke", "setup", "FAILED", problem=True, traceback=traceback.format_exc(),
                            detail=f"generating the clips / tiny model failed: {setup_error}",
                            seconds=time.perf_counter() - start)
            else:
                yield Check("smoke", "setup", "ok", seconds=time.perf_counter() - start,
                            detail=f"{SMOKE_DATA['num_train']} clips + tiny Qwen3-VL")
        for method in SMOKE_METHODS:
            label = f"{name} {method}"
            if prepared is None:
                yield Check("smoke", label, "FAILED", problem=True, detail=f"setup failed: {setup_error}")
                continue
            yield _smoke_run(label, method, name, *prepared, work / "runs")


def _smoke_run(label: str, method: str, backend: str, model_dir: str, data: Mapping[str, str],
               output_dir: Path) -> Check:
    from .train.run import train

    start = time.perf_counter()
    try:
        with _quiet_training():
            config = smoke_config(method, backend, model_dir, data)
            result = train(config, method=method, output_dir=str(output_dir), evaluate_after=False, progress=False)
        if not result.checkpoint_dir or not os.path.isdir(result.checkpoint_dir):
            raise RuntimeError(f"training finished but wrote no checkpoint ({result.checkpoint_dir})")
    except Exception as exc:
        return Check("smoke", label, "FAILED", seconds=time.perf_counter() - start, problem=True,
                     detail=_one_line(exc), traceback=traceback.format_exc())
    return Check("smoke", label, "ok", seconds=time.perf_counter() - start,
                 detail=f"{SMOKE_STEPS} steps + checkpoint")


# ---------------------------------------------------------------------------------------------
# The whole report
# ---------------------------------------------------------------------------------------------


def run_checks(*, smoke: bool = True, backends: Sequence[str] | None = None, registry: Any = None,
               model_dir: str | None = None, work_dir: str | os.PathLike[str] | None = None) -> Iterator[Check]:
    """Every check, in report order, yielded as soon as it is known (the slow ones come last).

    ``work_dir`` (default: a temporary folder, removed afterwards) receives the test clip and the
    smoke runs' data and checkpoints.
    """
    requirements, requires_python, _source = vtg_requirements()
    # Looked up at call time (not a default argument) so tests can stand in for the metadata.
    yield from check_versions(requirements, requires_python, installed=installed_version)
    yield from check_gpu()
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="vtg-doctor-"))
        yield from check_decoders(work_dir)
        if smoke:
            yield from check_smoke(work_dir, backends=backends, registry=registry, model_dir=model_dir)


def report_header() -> str:
    from . import __version__

    _reqs, _py, source = vtg_requirements()
    return f"vtg doctor: vtg-core {__version__}, {platform.system()} {platform.machine()} (tested ranges from {source})"


_TITLES = {"versions": "versions (installed / tested range)", "gpu": "gpu", "decoders": "decoders",
           "smoke": "smoke runs (tiny Qwen3-VL: 2 SFT + 2 GRPO steps per backend)"}


def format_check(check: Check) -> str:
    """One report line: name, the facts, the verdict last so the eye finds it."""
    if check.section == "versions":
        rng = check.range or ""
        if check.required is False and rng != "not needed on this platform":
            rng += " (optional)"
        return f"  {check.name:<14}{check.version or '-':<14}{rng:<30}{check.verdict}" + (
            f"  ({check.detail})" if check.detail else "")
    if check.section == "smoke":
        took = f"{check.seconds:5.1f} s" if check.seconds is not None else ""
        tail = check.detail if check.verdict != "ok" or not took else f"{took}  {check.detail}"
        if check.verdict == "skipped":
            return f"  {check.name:<28}{check.detail}"
        return f"  {check.name:<28}{check.verdict:<9}{tail}"
    version = f" {check.version}" if check.version and check.section == "decoders" else ""
    return f"  {check.name + version:<28}{check.verdict:<9}{check.detail}".rstrip()


def format_summary(checks: Sequence[Check]) -> str:
    problems = [c for c in checks if c.problem]
    untested = [c.name for c in checks if c.verdict == "untested"]
    if problems:
        lines = [f"verdict: {len(problems)} problem(s): " + "; ".join(f"{c.name} {c.verdict}" for c in problems)]
    else:
        lines = ["verdict: ok"]
    if untested:
        lines.append(f"note: outside the tested ranges: {', '.join(untested)} (may work; not tested)")
    return "\n".join(lines)


def to_json(checks: Sequence[Check]) -> dict[str, Any]:
    """``{"vtg_core", "ok", "problems", "checks": [...]}``, each check as :meth:`Check.to_dict`."""
    from . import __version__

    _reqs, _py, source = vtg_requirements()
    return {
        "vtg_core": __version__,
        "ranges_from": source,
        "ok": not any(c.problem for c in checks),
        "problems": [f"{c.section}: {c.name} {c.verdict}" + (f": {c.detail}" if c.detail else "")
                     for c in checks if c.problem],
        "checks": [c.to_dict() for c in checks],
    }


def section_title(section: str) -> str:
    return _TITLES.get(section, section)
