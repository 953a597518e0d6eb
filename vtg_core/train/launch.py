"""``vtg train --nproc-per-node N``: start N training processes on this machine through torchrun.

The same as typing ``torchrun --standalone --nproc_per_node N -m vtg_core.cli.main train ...``
with the other options unchanged: each process runs ``vtg train`` once, rank 0 writes the run
directory. For several machines use a launcher directly (README, "Scaling out").
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from ..errors import ConfigError

NPROC_OPTION = "--nproc-per-node"


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc-per-node N`` / ``--nproc-per-node=N`` (the children must not relaunch)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == NPROC_OPTION:
            skip = True
            continue
        if arg.startswith(NPROC_OPTION + "="):
            continue
        out.append(arg)
    return out


def torchrun_command(nproc: int, train_args: Sequence[str]) -> list[str]:
    """The command that starts ``nproc`` processes of ``vtg train train_args`` on this machine."""
    if nproc < 1:
        raise ConfigError(f"--nproc-per-node must be >= 1, got {nproc}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "vtg_core.cli.main", "train", *train_args]


def already_launched() -> bool:
    """Whether this process was started by a launcher (torchrun, accelerate, deepspeed)."""
    return any(os.environ.get(v) not in (None, "") for v in ("LOCAL_RANK", "RANK", "OMPI_COMM_WORLD_RANK"))


def relaunch(nproc: int, train_args: Sequence[str]) -> int:
    """Run ``vtg train`` in ``nproc`` processes and return torchrun's exit status."""
    if already_launched():
        raise ConfigError("--nproc-per-node is for starting vtg train yourself; this process was already started "
                          "by a launcher (RANK / LOCAL_RANK are set): drop --nproc-per-node")
    env = dict(os.environ)
    # One intra-op thread per process unless the user chose: N processes share the cores.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    command = torchrun_command(nproc, strip_nproc(train_args))
    return subprocess.call(command, env=env)
