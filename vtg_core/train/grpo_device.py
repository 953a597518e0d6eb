"""Whether the installed TRL can run GRPO steps on this machine.

TRL's GRPO trainer computes per-token log-probabilities with a fused, chunked LM head. Up to
trl 1.15 that head runs Triton kernels only, so on a machine without a CUDA GPU it fails inside
Triton ("0 active drivers"); trl 1.16 falls back to PyTorch there. unsloth caps TRL at 1.15, so
this is what a CPU-only environment resolved with ``vtg-backend-unsloth[unsloth]`` meets.
:func:`~vtg_core.train.grpo.run_grpo` asks :func:`grpo_device_problem` before loading anything and
stops with its message; the core's GRPO tests skip with it.
"""

from __future__ import annotations

import importlib


def grpo_device_problem() -> str | None:
    """Why TRL cannot take GRPO steps here, or ``None`` when it can."""
    import torch

    if torch.cuda.is_available():
        return None
    try:
        utils = importlib.import_module("trl.trainer.utils")
    except ImportError:
        return None  # run_grpo reports a missing TRL itself
    if not hasattr(utils, "add_fused_lm_head"):
        return None  # a TRL without the fused head scores with plain PyTorch
    try:
        kernels = importlib.import_module("trl.kernels.chunked_logprob")
    except ImportError:
        kernels = None
    if kernels is not None and hasattr(kernels, "_use_triton"):
        return None  # picks its PyTorch path off the GPU
    import trl

    return (f"trl {trl.__version__} computes GRPO's log-probabilities with Triton kernels only, which need a "
            "CUDA GPU (trl >= 1.16 falls back to PyTorch on a CPU): run GRPO on a GPU, or "
            "pip install 'trl>=1.16,<1.17' (vtg-backend-unsloth's unsloth extra caps trl at 1.15)")
