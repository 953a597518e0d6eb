"""Whether the unsloth backend can run on this machine, found without importing torch or unsloth.

``vtg plugins`` / ``vtg list`` call :func:`unsloth_usable` for every listing, so it must stay cheap
and must not import the heavy stack: importing unsloth on a machine without a GPU raises, and
importing it at all patches transformers and TRL for the whole process. What it looks at:

1. unsloth and unsloth_zoo are installed (``importlib.util.find_spec``);
2. the installed transformers / trl / peft / datasets / torch satisfy the ranges unsloth itself
   declares (its package metadata), since unsloth patches those libraries' source and breaks
   outside them;
3. torch is not a CPU-only build (``+cpu`` in its version);
4. a supported GPU is visible: an NVIDIA GPU of compute capability 7.0 or newer, found through
   the driver's NVML library (which, unlike initialising CUDA, is harmless before a fork), after
   ``CUDA_VISIBLE_DEVICES``; or an AMD GPU (``/dev/kfd``) beside a ROCm build of torch.

Every "no" names the fallback, ``--backend transformers``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable

FALLBACK = "use --backend transformers (model.backend: transformers) on this machine"
INSTALL = "pip install 'vtg-backend-unsloth[unsloth]'"
MIN_CAPABILITY = (7, 0)  # unsloth's Triton kernels need Volta or newer
CHECKED_DISTRIBUTIONS = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")


def unsloth_usable() -> tuple[bool, str]:
    """``(usable, reason)`` for ``BackendSpec.check``; ``reason`` says what is missing and the fallback."""
    missing = [m for m in ("unsloth", "unsloth_zoo") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"{' and '.join(missing)} not installed ({INSTALL}); {FALLBACK}"
    conflicts = version_conflicts()
    if conflicts:
        return False, f"unsloth does not support the installed {'; '.join(conflicts)}; {FALLBACK}"
    ok, why = gpu_available()
    if not ok:
        return False, f"{why}; {FALLBACK}"
    return True, why


def version_conflicts(
    requires: Callable[[str], list[str] | None] = importlib.metadata.requires,
    version: Callable[[str], str] = importlib.metadata.version,
) -> list[str]:
    """Installed packages outside the ranges unsloth / unsloth_zoo declare, e.g. ``transformers 5.23.0 (needs <=5.17.0)``."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.version import InvalidVersion, Version
    except ImportError:  # unsloth depends on packaging; without it there is nothing to compare with
        return []
    out: list[str] = []
    for dist in ("unsloth", "unsloth_zoo"):
        try:
            lines = requires(dist) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            name = req.name.lower().replace("_", "-")
            if name not in CHECKED_DISTRIBUTIONS or not req.specifier:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                installed = version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            try:
                ok = req.specifier.contains(Version(installed).public, prereleases=True)
            except InvalidVersion:
                continue
            entry = f"{name} {installed} ({dist} needs {req.specifier})"
            if not ok and entry not in out:
                out.append(entry)
    return out


def gpu_available(
    torch_version: Callable[[], str | None] | None = None,
    nvidia_capabilities: Callable[[], list[tuple[int, int]] | None] | None = None,
    amd_present: Callable[[], bool] | None = None,
) -> tuple[bool, str]:
    """``(ok, detail)``: is there a GPU unsloth can train on, with a torch build that can drive it."""
    tv = (torch_version or _torch_version)()
    if tv is None:
        return False, "torch is not installed"
    local = tv.partition("+")[2]
    if local.startswith("cpu"):
        return False, f"torch {tv} is a CPU-only build and unsloth needs a GPU"
    if local.startswith("rocm"):
        if (amd_present or _amd_present)():
            return True, f"AMD GPU with torch {tv}"
        return False, f"no AMD GPU found (/dev/kfd) for torch {tv}"
    caps = (nvidia_capabilities or _nvidia_capabilities)()
    if not caps:
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
        extra = f" (CUDA_VISIBLE_DEVICES={hidden!r})" if hidden is not None else ""
        return False, f"no NVIDIA GPU found{extra}: unsloth needs a CUDA GPU of compute capability 7.0+"
    good = [c for c in caps if c >= MIN_CAPABILITY]
    if not good:
        found = ", ".join(f"{a}.{b}" for a, b in caps)
        return False, f"the GPU's compute capability ({found}) is below 7.0, which unsloth needs"
    return True, f"{len(good)} NVIDIA GPU(s), compute capability {good[0][0]}.{good[0][1]}"


def _torch_version() -> str | None:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _amd_present() -> bool:
    return os.path.exists("/dev/kfd")


def _visible(count: int) -> list[int]:
    """Indices NVML reports that CUDA_VISIBLE_DEVICES leaves visible (UUID lists: all of them)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return list(range(count))
    out = []
    for part in env.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.lstrip("-").isdigit():
            return list(range(count))  # GPU-<uuid> / MIG names: trust the driver
        idx = int(part)
        if idx < 0:
            break  # CUDA stops at the first invalid index
        if idx < count:
            out.append(idx)
    return out


def _nvidia_capabilities() -> list[tuple[int, int]] | None:
    """Compute capabilities of the visible NVIDIA GPUs via NVML, or None without a driver."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    try:
        if nvml.nvmlInit_v2() != 0:
            return None
        count = ctypes.c_uint(0)
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return None
        caps = []
        for i in _visible(count.value):
            handle = ctypes.c_void_p()
            if nvml.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(i), ctypes.byref(handle)) != 0:
                continue
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            if nvml.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor)) == 0:
                caps.append((major.value, minor.value))
        return caps
    except AttributeError:  # a driver too old to have these calls
        return None
    finally:
        with contextlib.suppress(AttributeError):
            nvml.nvmlShutdown()
