"""Training-state files: everything ``Trainer.fit(resume=True)`` needs to
continue bit for bit, written atomically, and loaded validate-then-apply.

A file holds the model, optimizer, scheduler and scaler state, the RNG
states, the engine's counters (optimizer step, micro-step, epoch, batch,
loss sums), the accumulated gradients when it was saved inside an
accumulation window, and the history. ``load`` reads and checks every part
against the live objects before changing any; if applying still fails, every
part is rolled back, so a failed load changes nothing. The file is a
``torch.save`` zip with a SHA-256 of the whole file in its zip comment
(``ferrotorch._io``), checked before unpickling; files without one (format 1,
older writers) are still read.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

import torch

from . import _core
from . import distributed as _dist
from ._io import read_checked, save_checked
from .data_position import Position
from .errors import CheckpointError
from .history import History

FORMAT = "ferrotorch-train-state-2"
_READABLE = ("ferrotorch-train-state-1", FORMAT)


def _params(trainer: Any) -> List[torch.Tensor]:
    return list(trainer.model.parameters())


def collect(trainer: Any, history: Optional[History] = None) -> Dict[str, Any]:
    """The training state as a dict of tensors and plain values."""
    engine = dict(trainer._engine.state)
    grads = None
    if engine["micro"] > 0:  # inside an accumulation window: keep its gradients
        grads = [None if p.grad is None else p.grad.detach().cpu().clone() for p in _params(trainer)]
    st: Dict[str, Any] = {
        "format": FORMAT,
        "model": {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()},
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if hasattr(trainer.scheduler, "state_dict") else None,
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "engine": engine,
        "grads": grads,
        "data": trainer._data_pos.state(),
    }
    if history is not None:
        st["history"] = history.to_dict()
    if getattr(trainer, "distributed", False):  # every rank's generator (dropout differs per rank)
        st["rng_cpu_ranks"] = _dist.all_gather_object(torch.get_rng_state())
    return st


def save(trainer: Any, path: str, history: Optional[History] = None) -> None:
    """Writes the training state atomically (temp file, fsync, rename), with
    a SHA-256 of the whole file verified on load. Under a process group every
    rank calls it (the RNG states are gathered) and rank 0 alone writes."""
    st = collect(trainer, history)
    if _dist.is_main():
        save_checked(st, path)


def _read(path: str) -> Dict[str, Any]:
    st = read_checked("training state", path)
    if not isinstance(st, dict) or st.get("format") not in _READABLE:
        held = f"format {st.get('format')!r}" if isinstance(st, dict) else type(st).__name__
        raise CheckpointError(f"'{path}' is not a ferrotorch training state (the file holds {held})")
    return st


def _engine_part(st: Dict[str, Any]) -> Dict[str, Any]:
    if "engine" in st:
        return st["engine"]
    c = dict(st.get("counters") or {})  # format 1: counters only
    partial = [float(v) for v in st.get("partial_losses", [])]
    c.setdefault("epoch_loss_sum", sum(partial))
    c.setdefault("epoch_batches", len(partial))
    return c


def _check(trainer: Any, st: Dict[str, Any], path: str) -> None:
    def bad(part: str, why: str) -> CheckpointError:
        return CheckpointError(f"training state '{path}': {part}: {why}")

    for part in ("model", "optimizer"):
        if not isinstance(st.get(part), dict):
            raise bad(part, "missing or not a dict")
    live = trainer.model.state_dict()
    saved = st["model"]
    if set(saved) != set(live):
        missing, extra = sorted(set(live) - set(saved)), sorted(set(saved) - set(live))
        raise bad("model", f"entries differ from the model's (missing {missing}, unexpected {extra})")
    for k, v in saved.items():
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(live[k].shape):
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise bad("model", f"'{k}' is {shape}, the model's is {tuple(live[k].shape)}")
    groups = st["optimizer"].get("param_groups")
    live_groups = trainer.optimizer.state_dict()["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(live_groups):
        raise bad("optimizer", f"{len(groups or [])} param groups, the optimizer has {len(live_groups)}")
    for i, (g, lg) in enumerate(zip(groups, live_groups)):
        if not isinstance(g, dict) or len(g.get("params", [])) != len(lg["params"]):
            raise bad("optimizer", f"group {i} does not hold {len(lg['params'])} parameters")
    for part, obj in (("scheduler", trainer.scheduler), ("scaler", trainer.scaler)):
        live_has = obj is not None and hasattr(obj, "load_state_dict")
        if (st.get(part) is not None) != live_has:
            where = "this Trainer" if live_has else "the file"
            raise bad(part, f"only {where} has {part} state")
    rng = st.get("rng_cpu")
    if not isinstance(rng, torch.Tensor) or rng.numel() != torch.get_rng_state().numel():
        raise bad("rng_cpu", "missing or of the wrong size")
    ranks = st.get("rng_cpu_ranks")
    if ranks is not None and len(ranks) != _dist.world_size():
        raise bad("rng_cpu_ranks", f"saved by {len(ranks)} ranks, this run has {_dist.world_size()}")
    engine = _engine_part(st)
    if not isinstance(engine, dict):
        raise bad("engine", "missing counters")
    try:
        _core.Engine.check_state(engine)
    except CheckpointError as e:
        raise bad("counters", str(e)) from e
    grads = st.get("grads")
    if grads is not None:
        ps = _params(trainer)
        if not isinstance(grads, list) or len(grads) != len(ps):
            raise bad("grads", f"expected {len(ps)} entries")
        for i, (g, p) in enumerate(zip(grads, ps)):
            if g is not None and (not isinstance(g, torch.Tensor) or g.shape != p.shape):
                raise bad("grads", f"entry {i} does not fit parameter shape {tuple(p.shape)}")
    if st.get("history") is not None and not isinstance(st["history"], dict):
        raise bad("history", "not a dict")
    why = Position.check(st.get("data"))
    if why is not None:
        raise bad("data", why)


def _snapshot(trainer: Any) -> Dict[str, Any]:
    return {
        "model": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        "optimizer": copy.deepcopy(trainer.optimizer.state_dict()),
        "scheduler": copy.deepcopy(trainer.scheduler.state_dict())
        if hasattr(trainer.scheduler, "state_dict")
        else None,
        "scaler": copy.deepcopy(trainer.scaler.state_dict()) if trainer.scaler is not None else None,
        "rng_cpu": torch.get_rng_state(),
        "engine": dict(trainer._engine.state),
        "grads": [None if p.grad is None else p.grad.detach().clone() for p in _params(trainer)],
        "data": trainer._data_pos.state(),
    }


def _apply(trainer: Any, st: Dict[str, Any], engine: Dict[str, Any], grads: Optional[list]) -> None:
    trainer.model.load_state_dict(st["model"])
    trainer.optimizer.load_state_dict(st["optimizer"])
    if st.get("scheduler") is not None and hasattr(trainer.scheduler, "load_state_dict"):
        trainer.scheduler.load_state_dict(st["scheduler"])
    if st.get("scaler") is not None and trainer.scaler is not None:
        trainer.scaler.load_state_dict(st["scaler"])
    ranks = st.get("rng_cpu_ranks")
    torch.set_rng_state(ranks[_dist.rank()] if ranks is not None else st["rng_cpu"])
    if st.get("rng_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["rng_cuda"])
    with torch.no_grad():
        for p, g in zip(_params(trainer), grads or [None] * len(_params(trainer))):
            p.grad = None if g is None else g.to(device=p.device, dtype=p.dtype).clone()
    trainer._engine.set_state(engine)
    trainer._data_pos.load(st.get("data"))


def load(trainer: Any, path: str) -> History:
    """Restores a state written by :func:`save`; returns its history. Every
    part is checked first; a failure rolls back whatever was applied."""
    st = _read(path)
    _check(trainer, st, path)
    engine = _engine_part(st)
    snap = _snapshot(trainer)
    try:
        _apply(trainer, st, engine, st.get("grads"))
    except Exception as e:  # noqa: BLE001 - roll back, then report as a checkpoint error
        _apply(trainer, snap, snap["engine"], snap["grads"])
        raise CheckpointError(f"training state '{path}' does not fit this Trainer: {e}") from e
    h = st.get("history") or {}
    return History.from_dict(h)
