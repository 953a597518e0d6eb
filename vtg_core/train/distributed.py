"""Training on several processes: who is who, agreeing on one run, and saving under ZeRO-3.

vtg does not start processes itself (except ``vtg train --nproc-per-node``, see
:mod:`vtg_core.train.launch`); ``torchrun``, ``accelerate launch`` and the ``deepspeed`` launcher
all start one ``vtg train`` per GPU and describe the job in the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...). Every process then runs the same code, so
whatever must happen once (making the run directory, generating demo data, writing logs, the
final checkpoint, the held-out evaluation) is done by rank 0 and its result shared with the
others here.

Nothing in this module imports torch at import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

log = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        from ..errors import ConfigError

        raise ConfigError(f"environment variable {name}={value!r} is not an integer (set by the launcher?)") from None


def dist_info() -> DistInfo:
    """The job as the launcher described it (torchrun, accelerate, deepspeed and MPI-style variables)."""
    world = _env_int("WORLD_SIZE", _env_int("OMPI_COMM_WORLD_SIZE", 1))
    rank = _env_int("RANK", _env_int("OMPI_COMM_WORLD_RANK", 0))
    local = _env_int("LOCAL_RANK", _env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0))
    if world < 1 or not 0 <= rank < world:
        from ..errors import ConfigError

        raise ConfigError(f"inconsistent launcher environment: RANK={rank}, WORLD_SIZE={world}")
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def is_main_process() -> bool:
    """Whether this process is rank 0 (the one that writes files)."""
    return dist_info().is_main


def init_process_group() -> bool:
    """Join the job's process group now (gloo on CPU, nccl on GPU), if there is more than one process.

    The Trainer would do it later anyway; vtg needs it earlier, to agree on a run directory before
    the model is loaded. Returns whether a group is (now) initialised.
    """
    if not dist_info().distributed:
        return False
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return True
    if torch.cuda.is_available():
        torch.cuda.set_device(dist_info().local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend)
    log.info("joined the process group: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return True


def training_args_extras(*, deepspeed: bool) -> dict[str, Any]:
    """Extra ``TrainingArguments`` for several processes without a GPU (empty otherwise).

    accelerate recognises a multi-process job on CPUs only when told ``cpu=True``, and that
    switches DeepSpeed off; without it every process believes it is the only one (each would
    write the checkpoints). Plain DDP gets ``use_cpu=True``; for DeepSpeed the process state is
    built here (gloo, DeepSpeed on) and the Trainer told to use it as configured.
    """
    info = dist_info()
    if not info.distributed:
        return {}
    import torch

    if torch.cuda.is_available():
        return {}
    if not deepspeed:
        return {"use_cpu": True}
    from accelerate import PartialState

    init_process_group()
    previous = os.environ.get("ACCELERATE_USE_DEEPSPEED")
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    try:
        PartialState(backend="gloo")
    finally:
        if previous is None:
            del os.environ["ACCELERATE_USE_DEEPSPEED"]
        else:
            os.environ["ACCELERATE_USE_DEEPSPEED"] = previous
    return {"accelerator_config": {"use_configured_state": True}}


def emulate_launcher() -> bool:
    """Describe a one-process job in the environment, as a launcher would, if none did.

    DeepSpeed needs ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` even for one process; without them
    it tries MPI discovery (and fails without mpi4py). So ``vtg train --deepspeed ...`` works
    without torchrun. Returns whether anything was set.
    """
    launched = any(os.environ.get(v) not in (None, "") for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK",
                                                                  "OMPI_COMM_WORLD_SIZE"))
    if launched:
        return False
    import socket

    with socket.socket() as sock:  # a free port for the (one-member) process group
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    log.info("one process, no launcher: DeepSpeed runs with RANK=0 WORLD_SIZE=1 MASTER_PORT=%d", port)
    return True


def _group_ready() -> bool:
    if not dist_info().distributed:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for on one process)."""
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def main_computes(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its (picklable) result to every process.

    An exception on rank 0 is re-raised on every rank, so no process is left waiting.
    """
    if not _group_ready():
        return fn()
    import torch.distributed as dist

    payload: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            payload = [("ok", fn())]
        except BaseException as exc:  # noqa: BLE001 - handed to the other ranks, then re-raised
            payload = [("error", exc)]
    dist.broadcast_object_list(payload, src=0)
    status, value = payload[0]
    if status == "error":
        if dist.get_rank() == 0:
            raise value
        from ..errors import VtgError

        if isinstance(value, VtgError):
            raise value
        raise RuntimeError(f"rank 0 failed: {type(value).__name__}: {value}") from value
    return value


def rank_suffix() -> str:
    """``""`` on one process, ``".rank1"`` etc. otherwise: for per-rank file names."""
    info = dist_info()
    return f".rank{info.rank}" if info.distributed else ""


def is_zero3(trainer: Any) -> bool:
    """Whether ``trainer`` trains with DeepSpeed ZeRO stage 3 (parameters partitioned across ranks)."""
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return False
    plugin = getattr(getattr(trainer.accelerator, "state", None), "deepspeed_plugin", None)
    return plugin is not None and int(getattr(plugin, "zero_stage", 0) or 0) == 3


def full_state_dict(trainer: Any) -> dict[str, Any] | None:
    """The whole model's weights on rank 0 (``None`` elsewhere) when ZeRO-3 has them partitioned.

    Every rank must call it (the parameters are gathered collectively, layer by layer, onto rank
    0's CPU). Returns ``None`` on every rank when the model is not partitioned: then each rank's
    model already holds all its weights and saves normally.
    """
    if not is_zero3(trainer):
        return None
    state = trainer.accelerator.get_state_dict(trainer.deepspeed)
    return state if trainer.is_world_process_zero() else None


def save_final(trainer: Any, backend: Any, model: Any, processor: Any, path: str, *, config: Any,
               added_tokens: list[str]) -> None:
    """Save the final checkpoint from rank 0, gathering ZeRO-3-partitioned weights first.

    Call on every rank. The result is an ordinary vtg checkpoint that loads on one process
    (``backend.load_checkpoint``), whatever ZeRO stage trained it. Under ZeRO-3 the weights are
    gathered onto rank 0's CPU layer by layer and handed to the backend as ``state_dict``; a
    backend whose ``save_checkpoint`` takes no ``state_dict`` gets every parameter gathered on
    every rank for the duration of the save instead (simpler, but needs the whole model's memory).
    """
    import contextlib
    import inspect

    zero3 = is_zero3(trainer)
    takes_state = "state_dict" in inspect.signature(backend.save_checkpoint).parameters
    state = full_state_dict(trainer) if zero3 and takes_state else None
    gathered: Any = contextlib.nullcontext()
    if zero3:
        import deepspeed

        # The checkpoint metadata reads the embedding's shape, which is 0 while it is partitioned.
        params = list(model.parameters()) if not takes_state else [_base(model).get_input_embeddings().weight]
        gathered = deepspeed.zero.GatheredParameters(params, modifier_rank=None)
    with gathered:
        if trainer.is_world_process_zero():
            extra = {"state_dict": _strip_prefix(state, model)} if state is not None else {}
            backend.save_checkpoint(model, processor, path, config=config, added_tokens=added_tokens, **extra)
    trainer.accelerator.wait_for_everyone()


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _strip_prefix(state: dict[str, Any], model: Any) -> dict[str, Any]:
    """Keys as ``model.state_dict()`` names them (the DeepSpeed engine may add ``module.``)."""
    own = set(model.state_dict().keys())
    if all(k in own for k in state):
        return state
    return {k.removeprefix("module."): v for k, v in state.items()}


RECORD_ENV = "VTG_RECORD_SAMPLES"
"""Set to a directory to have every rank write the sample ids of each batch it gets to
``<dir>/samples.rank<R>.jsonl`` (one line per batch: epoch, batch number, ids)."""


class RecordingBatchSampler:
    """A vtg batch sampler that also appends each batch's sample ids to a JSON-lines file.

    For checking what each rank trains on (distinct batches, every sample once, equal step
    counts); it changes nothing about the batches. ``len()`` and ``set_epoch()`` pass through.
    """

    def __init__(self, inner: Any, ids: list[str], path: str | os.PathLike[str]):
        self.inner = inner
        self.ids = ids
        self.path = os.fspath(path)
        self._batch = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner)

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def __iter__(self) -> Any:
        import json

        epoch = getattr(self.inner, "epoch", 0)
        for number, batch in enumerate(self.inner):
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"rank": dist_info().rank, "epoch": epoch, "batch": number,
                                     "ids": [self.ids[i] for i in batch]}) + "\n")
            yield batch


def record_batches(sampler: Any, samples: Any) -> Any:
    """``sampler`` wrapped in a :class:`RecordingBatchSampler` when ``VTG_RECORD_SAMPLES`` is set."""
    directory = os.environ.get(RECORD_ENV)
    if not directory or sampler is None:
        return sampler
    os.makedirs(directory, exist_ok=True)
    ids = [str(getattr(s, "id", i)) for i, s in enumerate(samples)]
    path = os.path.join(directory, f"samples.rank{dist_info().rank}.jsonl")
    log.info("recording the sample ids of every batch in %s", path)
    return RecordingBatchSampler(sampler, ids, path)
