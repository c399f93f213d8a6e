"""Gradient (activation) checkpointing executed in Rust.

``grad_checkpoint(fn, *inputs)`` runs ``fn`` without keeping its intermediate
activations and recomputes them in backward, trading compute for memory, as
``torch.utils.checkpoint.checkpoint`` does. The autograd Function lives in
ferrotorch's C++ shim: it saves only the inputs (and the parameters ``fn``
uses), runs ``fn`` under no-grad, and in backward reruns it with grad enabled
under the forward's RNG and autocast state, then backpropagates through the
recomputed graph. A ferrotorch module or graph recomputes in pure Rust (no
GIL in backward); any other callable is called back through Python.

``grad_checkpoint_sequential(modules, segments, x)`` is torch's
``checkpoint_sequential``: the modules are cut into ``segments`` chunks of
``len(modules) // segments``; every chunk but the last is checkpointed, and
the last one (with the remainder) runs normally.

Graphs mark a node with ``FlowBuilder.checkpoint()`` instead.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Optional, Union

import torch

from . import _core
from .errors import InputTypeError

__all__ = ["grad_checkpoint", "grad_checkpoint_sequential"]


def _collect(ob: Any, out: dict[int, torch.Tensor], depth: int = 0) -> None:
    """Parameters reachable from ``ob``: a module's, a bound method's owner's,
    a partial's arguments, a closure's captured modules and tensors."""
    if depth > 3 or ob is None:
        return
    if isinstance(ob, torch.Tensor):
        if ob.requires_grad:
            out.setdefault(id(ob), ob)
        return
    if isinstance(ob, (torch.nn.Module, _core.Module)):
        for p in ob.parameters():
            if isinstance(p, torch.Tensor) and p.requires_grad:
                out.setdefault(id(p), p)
        return
    if isinstance(ob, (list, tuple)):
        for x in ob:
            _collect(x, out, depth + 1)
        return
    if isinstance(ob, functools.partial):
        _collect(ob.func, out, depth + 1)
        _collect(list(ob.args) + list(ob.keywords.values()), out, depth + 1)
        return
    owner = getattr(ob, "__self__", None)
    if owner is not None and not isinstance(owner, type):
        _collect(owner, out, depth + 1)
    for cell in getattr(ob, "__closure__", None) or ():
        try:
            _collect(cell.cell_contents, out, depth + 1)
        except ValueError:  # an empty cell
            pass


def _params_of(fn: Callable, params: Optional[Iterable[torch.Tensor]]) -> list[torch.Tensor]:
    found: dict[int, torch.Tensor] = {}
    _collect(fn, found)
    if params is not None:
        for i, p in enumerate(params):
            if not isinstance(p, torch.Tensor):
                raise InputTypeError(f"grad_checkpoint: params[{i}] must be a tensor, got {type(p).__name__}")
            found.setdefault(id(p), p)
    return list(found.values())


def grad_checkpoint(
    fn: Callable[..., Any],
    *inputs: Any,
    preserve_rng_state: bool = True,
    params: Optional[Iterable[torch.Tensor]] = None,
) -> Union[torch.Tensor, tuple[torch.Tensor, ...]]:
    """``fn(*inputs)`` without keeping its activations; backward recomputes
    them (torch's ``checkpoint(fn, *inputs, use_reentrant=False)``).

    ``fn`` is a ferrotorch module or graph (recomputed in Rust without the
    GIL), a ``torch.nn.Module`` or any callable returning a tensor or a
    tuple/list of tensors. Non-tensor inputs are passed through unchanged.

    Gradients reach the inputs that require grad and the parameters ``fn``
    uses, even when no input requires grad: those of a module ``fn``, of the
    module a bound method belongs to, and modules or tensors a closure or
    ``functools.partial`` captures. Pass any other tensor ``fn`` reads in
    ``params``; an undeclared leaf still gets its gradient, accumulated into
    ``.grad`` directly during backward (so ``torch.autograd.grad`` cannot
    ask for it), and an undeclared non-leaf is an error in backward.

    With ``preserve_rng_state`` (the default) the recompute sees the CPU
    generator's state of the forward, and each CUDA device's for CUDA
    tensors, so dropout recomputes the same mask; the generators are left
    as if nothing had been recomputed. Under ``torch.no_grad()`` or when
    nothing requires grad, ``fn`` simply runs once.

    An exception raised by ``fn`` in the forward propagates unchanged; one
    raised while recomputing in backward surfaces from ``backward()`` as
    torch's ``RuntimeError`` with ferrotorch's message naming the original
    exception (torch's engine lets only its own exception types through).
    """
    if not callable(fn):
        raise InputTypeError(
            f"grad_checkpoint: fn must be callable (a module or a function), got {type(fn).__name__}"
        )
    if isinstance(fn, _core.Module) and all(isinstance(x, torch.Tensor) for x in inputs):
        return _core._grad_checkpoint(fn, list(inputs), [], bool(preserve_rng_state))[0]
    slots = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
    tensors = [inputs[i] for i in slots]
    single = [True]

    def run(*ts: torch.Tensor) -> list[torch.Tensor]:
        args = list(inputs)
        for i, t in zip(slots, ts):
            args[i] = t
        out = fn(*args)
        if isinstance(out, torch.Tensor):
            single[0] = True
            return [out]
        if isinstance(out, (tuple, list)):
            single[0] = False
            return list(out)
        raise InputTypeError(
            f"grad_checkpoint: fn must return a tensor or a tuple of tensors, got {type(out).__name__}"
        )

    outs = _core._grad_checkpoint(run, tensors, _params_of(fn, params), bool(preserve_rng_state))
    return outs[0] if single[0] else tuple(outs)


def grad_checkpoint_sequential(
    modules: Any,
    segments: int,
    x: torch.Tensor,
    preserve_rng_state: bool = True,
) -> torch.Tensor:
    """torch's ``checkpoint_sequential(modules, segments, x)``: ``modules``
    (a list of modules or callables, or a ``torch.nn.Sequential``) run in
    order, cut into ``segments`` chunks of ``len(modules) // segments``;
    every chunk but the last is checkpointed and the last (with the
    remainder) runs normally. ``segments`` must be between 1 and the number
    of modules. All-ferrotorch chains run and recompute in Rust."""
    if isinstance(segments, bool) or not isinstance(segments, int):
        raise InputTypeError(
            f"grad_checkpoint_sequential: segments must be an int, got {type(segments).__name__}"
        )
    if isinstance(modules, torch.nn.Sequential):
        mods = list(modules.children())
    elif isinstance(modules, (list, tuple)):
        mods = list(modules)
    else:
        raise InputTypeError(
            "grad_checkpoint_sequential: modules must be a list/tuple of modules or a "
            f"torch.nn.Sequential, got {type(modules).__name__}"
        )
    return _core._grad_checkpoint_sequential(mods, segments, x, bool(preserve_rng_state))
