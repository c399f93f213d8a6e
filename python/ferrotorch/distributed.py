"""Data-parallel training on N processes, GPUs or nodes, over
``torch.distributed`` (c10d: gloo on CPU, NCCL on GPU) launched by
``torchrun``. ferrotorch has no communication layer of its own: the engine
calls the process group's all-reduce from its C++ shim, inside the step,
with the GIL released.

Under a process group with more than one rank, a :class:`ferrotorch.Trainer`
is data-parallel automatically (``Trainer(distributed=False)`` opts out):

* parameters and buffers are broadcast from rank 0 when it is built (any
  seed works), after checking that every rank built the same graph
  (structural hash);
* gradients are averaged over the ranks before every update (coalesced into
  buckets, after backward: not overlapped with it), so optimizer, scheduler
  and GradScaler state stay identical; the window's loss and its non-finite
  status are reduced with them, so every rank skips or raises together;
* floating-point buffers (BatchNorm running statistics) are averaged after
  every update;
* a DataLoader is sharded: each epoch's order (the same seeded shuffle on
  every rank) is cut into global batches of ``batch_size × world_size`` and
  rank r takes slice r, so N processes with per-rank ``batch_size`` train as
  one process with the global batch; other iterables are used as given;
* history losses are means over the ranks; rank 0 alone writes training
  states, reports, prints progress and feeds monitors; file-writing
  callbacks write on rank 0 only.
"""

from __future__ import annotations

import atexit
import datetime
import os
from typing import Any, List, Optional

import torch
import torch.distributed as dist

from .errors import ConfigError

__all__ = [
    "init",
    "is_initialized",
    "active",
    "rank",
    "world_size",
    "local_rank",
    "is_main",
    "barrier",
    "shutdown",
]


def is_initialized() -> bool:
    """True when a default process group exists."""
    return dist.is_available() and dist.is_initialized()


def init(backend: Optional[str] = None, timeout: datetime.timedelta = datetime.timedelta(minutes=10)) -> bool:
    """Joins the process group torchrun describes (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``...): gloo on CPU, NCCL when CUDA is available (the local
    CUDA device is set from ``LOCAL_RANK``). A group the caller already
    initialised is used as it is. Without torchrun's variables this is one
    process and nothing happens. Returns whether a group is active."""
    if is_initialized():
        return True
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if not isinstance(timeout, datetime.timedelta):
        raise ConfigError(f"distributed.init: timeout must be a datetime.timedelta, got {timeout!r}")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in ("gloo", "nccl", "mpi", "ucc"):
        raise ConfigError(f"distributed.init: unknown backend {backend!r}; use 'gloo' or 'nccl'")
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend, timeout=timeout)
    # A group left to interpreter teardown can abort the process (gloo's
    # threads outlive it): the group we made is destroyed at exit.
    atexit.register(shutdown)
    return True


def rank() -> int:
    """This process's rank (0 without a group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 without a group)."""
    return dist.get_world_size() if is_initialized() else 1


def local_rank() -> int:
    """The rank within this node (torchrun's ``LOCAL_RANK``)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one that writes and talks."""
    return rank() == 0


def active() -> bool:
    """True under a process group of more than one rank."""
    return is_initialized() and world_size() > 1


def barrier() -> None:
    """Waits for every rank (a no-op in a single process)."""
    if is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Leaves the process group."""
    if is_initialized():
        dist.destroy_process_group()


def group_name() -> str:
    """The name c10d registered the default group under (the engine's handle)."""
    world = dist.group.WORLD
    if world is None:
        raise ConfigError("distributed: no default process group (call ferrotorch.distributed.init())")
    return world.group_name


def all_gather_object(obj: Any) -> List[Any]:
    out: List[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def check_same(value: Any, what: str) -> None:
    """Raises ConfigError on every rank unless every rank has ``value``."""
    values = all_gather_object(value)
    if any(v != values[0] for v in values):
        detail = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
        raise ConfigError(f"distributed: the ranks differ in {what} ({detail})")


def join(model: Any) -> None:
    """Data-parallel start for ``model``: every rank must have built the same
    graph (structural hash; parameter shapes for other modules), then rank
    0's parameters and buffers replace everyone's."""
    sig = (
        model.structural_hash()
        if hasattr(model, "structural_hash")
        else repr([(tuple(p.shape), str(p.dtype)) for p in model.parameters()])
    )
    check_same(sig, "the model's structure (structural hash)")
    broadcast_module(model)


def broadcast_module(model: Any) -> None:
    """Rank 0's parameters and buffers, in place, on every rank."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, 0)


def any_rank(flag: bool, device: Any = None) -> bool:
    """True on every rank when ``flag`` is True on any (one collective)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
