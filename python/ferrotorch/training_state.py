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
    why = _optimizer_layout(trainer.optimizer.state_dict(), st["optimizer"])
    if why is not None:
        raise bad("optimizer", why)
    engine = _engine_part(st)
    if not isinstance(engine, dict):
        raise bad("engine", "missing counters")
    if "engine" in st:  # format 2+: every counter, none None
        live_keys = set(trainer._engine.state)
        if set(engine) != live_keys or any(v is None for v in engine.values()):
            missing = sorted(live_keys - set(engine))
            nones = sorted(k for k, v in engine.items() if v is None)
            raise bad("engine", f"counters missing {missing} or None {nones}")
    try:
        _core.Engine.check_state(engine)
    except (CheckpointError, TypeError, ValueError, KeyError) as e:
        raise bad("engine", f"counters: {e}") from e
    grads = st.get("grads")
    if grads is not None:
        ps = _params(trainer)
        if not isinstance(grads, list) or len(grads) != len(ps):
            raise bad("grads", f"expected {len(ps)} entries")
        for i, (g, p) in enumerate(zip(grads, ps)):
            if g is not None and (not isinstance(g, torch.Tensor) or g.shape != p.shape):
                raise bad("grads", f"entry {i} does not fit parameter shape {tuple(p.shape)}")
    if st.get("history") is not None:
        why = History.check(st["history"])
        if why is not None:
            raise bad("history", why)
    for part, obj in (("scheduler", trainer.scheduler), ("scaler", trainer.scaler)):
        if st.get(part) is not None:
            why = _same_layout(obj.state_dict(), st[part])
            if why is not None:
                raise bad(part, why)
    cuda = st.get("rng_cuda")
    if cuda is not None and (
        not isinstance(cuda, list)
        or not all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda)
    ):
        raise bad("rng_cuda", "must be None or a list of generator states")
    why = Position.check(st.get("data"))
    if why is not None:
        raise bad("data", why)


def _optimizer_layout(live: Dict[str, Any], saved: Dict[str, Any]) -> Optional[str]:
    """An optimizer state dict shaped as this optimizer's: each group with the
    live group's keys and value kinds, each parameter's state a dict of
    tensors (or numbers) with the keys the others and the live state have."""
    if not isinstance(saved.get("state"), dict):
        return "'state' must be a dict"
    for i, (lg, g) in enumerate(zip(live["param_groups"], saved["param_groups"])):
        why = _same_layout(
            {k: v for k, v in lg.items() if k != "params"},
            {k: v for k, v in g.items() if k != "params"},
            f"param_groups[{i}]",
        )
        if why is not None:
            return why
    keys = [set(e) for e in live["state"].values() if isinstance(e, dict)]
    for pid, entry in saved["state"].items():
        if not isinstance(entry, dict):
            return f"state[{pid}] must be a dict"
        keys.append(set(entry))
        for k, v in entry.items():
            if not isinstance(v, torch.Tensor) and (isinstance(v, bool) or not isinstance(v, (int, float))):
                return f"state[{pid}]['{k}'] must be a tensor, got {v!r:.40}"
            live_entry = live["state"].get(pid)
            if isinstance(v, torch.Tensor) and isinstance(live_entry, dict):
                lv = live_entry.get(k)
                if isinstance(lv, torch.Tensor) and lv.shape != v.shape:
                    return f"state[{pid}]['{k}'] has shape {tuple(v.shape)}, this optimizer's is {tuple(lv.shape)}"
    if keys and any(k != keys[0] for k in keys):
        return "the parameters' states hold different entries"
    return None


def _same_layout(live: Any, saved: Any, at: str = "") -> Optional[str]:
    """Whether ``saved`` has the keys and value kinds of ``live`` (a state
    dict of this Trainer's scheduler or scaler), recursively; None if so."""
    where = at or "the state"
    if isinstance(live, dict):
        if not isinstance(saved, dict):
            return f"{where} must be a dict, got {type(saved).__name__}"
        if set(map(str, live)) != set(map(str, saved)):
            missing, extra = (
                sorted(set(map(str, live)) - set(map(str, saved))),
                sorted(set(map(str, saved)) - set(map(str, live))),
            )
            return f"{where}: keys differ from this Trainer's (missing {missing}, unexpected {extra})"
        for k, v in live.items():
            why = _same_layout(v, saved[k], f"'{k}'" if not at else f"{at}['{k}']")
            if why is not None:
                return why
        return None
    if isinstance(live, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(live):
            return f"{where} must be a sequence of {len(live)}, got {saved!r:.60}"
        for i, (a, b) in enumerate(zip(live, saved)):
            why = _same_layout(a, b, f"{where}[{i}]")
            if why is not None:
                return why
        return None
    number = (int, float)
    if isinstance(live, bool) or isinstance(saved, bool):
        ok = isinstance(live, bool) == isinstance(saved, bool)
    elif isinstance(live, number):
        ok = isinstance(saved, number)
    elif isinstance(live, torch.Tensor):
        ok = isinstance(saved, torch.Tensor) and saved.shape == live.shape
    elif live is None or callable(live):
        ok = True  # None slots and lambdas (LambdaLR) carry no layout
    else:
        ok = type(saved) is type(live)
    return None if ok else f"{where} is {saved!r:.60}, this Trainer's is a {type(live).__name__}"


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


class _PartError(Exception):
    """A part of a state failed to apply; names the part."""

    def __init__(self, part: str, cause: BaseException) -> None:
        super().__init__(f"{part}: {cause}")
        self.part = part


def _apply(trainer: Any, st: Dict[str, Any], engine: Dict[str, Any], grads: Optional[list]) -> None:
    def restore_grads() -> None:
        with torch.no_grad():
            for p, g in zip(_params(trainer), grads or [None] * len(_params(trainer))):
                p.grad = None if g is None else g.to(device=p.device, dtype=p.dtype).clone()

    def restore_rng() -> None:
        ranks = st.get("rng_cpu_ranks")
        torch.set_rng_state(ranks[_dist.rank()] if ranks is not None else st["rng_cpu"])
        if st.get("rng_cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(st["rng_cuda"])

    has_sched = st.get("scheduler") is not None and hasattr(trainer.scheduler, "load_state_dict")
    has_scaler = st.get("scaler") is not None and trainer.scaler is not None
    steps = [
        ("model", lambda: trainer.model.load_state_dict(st["model"])),
        ("optimizer", lambda: trainer.optimizer.load_state_dict(st["optimizer"])),
        ("scheduler", (lambda: trainer.scheduler.load_state_dict(st["scheduler"])) if has_sched else None),
        ("scaler", (lambda: trainer.scaler.load_state_dict(st["scaler"])) if has_scaler else None),
        ("rng_cpu", restore_rng),
        ("grads", restore_grads),
        ("engine", lambda: trainer._engine.set_state(engine)),
        ("data", lambda: trainer._data_pos.load(st.get("data"))),
    ]
    for part, step in steps:
        if step is None:
            continue
        try:
            step()
        except Exception as e:  # noqa: BLE001 - named, then rolled back by load()
            raise _PartError(part, e) from e


def load(trainer: Any, path: str) -> History:
    """Restores a state written by :func:`save`; returns its history. Every
    part is checked first; a failure rolls back whatever was applied."""
    st = _read(path)
    _check(trainer, st, path)
    engine = _engine_part(st)
    snap = _snapshot(trainer)
    try:
        _apply(trainer, st, engine, st.get("grads"))
    except _PartError as e:  # roll back, then report as a checkpoint error naming the part
        _apply(trainer, snap, snap["engine"], snap["grads"])
        raise CheckpointError(
            f"training state '{path}': {e.part} does not fit this Trainer: {e.__cause__}"
        ) from e
    h = st.get("history")
    return History.from_dict(h) if h is not None else History()
