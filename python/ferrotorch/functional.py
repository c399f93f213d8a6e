"""Kaun's ``Grad.value_and_grad`` over torch autograd.

``value_and_grad(fn, params)(*args)`` returns ``(fn(*args), grads)`` where
``grads`` has the structure of ``params`` (a tensor, a list/tuple of tensors,
a dict name -> tensor, or a module: its ``named_parameters`` as a dict). The
gradients come from ``torch.autograd.grad``: nothing is accumulated into
``.grad`` and the parameters are not modified. ``value_and_grad_aux`` is the
form whose ``fn`` returns ``(loss, aux)``; it returns ``((loss, aux), grads)``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["value_and_grad", "value_and_grad_aux"]


def _flatten(params: Any) -> tuple[list[torch.Tensor], Callable[[list], Any]]:
    """The tensors of ``params`` and a function rebuilding its structure."""
    if isinstance(params, torch.Tensor):
        return [params], lambda gs: gs[0]
    if hasattr(params, "named_parameters") and not isinstance(params, (dict, list, tuple)):
        named = list(params.named_parameters())
        names = [n for n, _ in named]
        return [p for _, p in named], lambda gs: dict(zip(names, gs))
    if isinstance(params, dict):
        keys = list(params)
        return [params[k] for k in keys], lambda gs: dict(zip(keys, gs))
    if isinstance(params, (list, tuple)):
        kind = type(params)
        return list(params), lambda gs: kind(gs)
    raise TypeError(
        f"value_and_grad: params must be a tensor, a list/tuple/dict of tensors or a module, "
        f"got {type(params).__name__}"
    )


def _grads(value: torch.Tensor, params: Any) -> Any:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"value_and_grad: fn must return a scalar tensor, got {shape}")
    tensors, rebuild = _flatten(params)
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            raise ValueError(f"value_and_grad: parameter {i} does not require grad")
    raw = torch.autograd.grad(value, tensors, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(raw, tensors)]
    return rebuild(grads)


def value_and_grad(fn: Callable[..., torch.Tensor], params: Any) -> Callable[..., tuple[torch.Tensor, Any]]:
    """``value_and_grad(fn, params)(*args) -> (value, grads)``: ``fn(*args)``
    (a scalar tensor, returned detached) and its gradient with respect to
    ``params``, shaped like ``params``. Parameters ``fn`` does not use get
    zeros (Kaun's convention)."""

    def run(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        with torch.enable_grad():
            value = fn(*args, **kwargs)
            grads = _grads(value, params)
        return value.detach(), grads

    return run


def value_and_grad_aux(
    fn: Callable[..., tuple[torch.Tensor, Any]], params: Any
) -> Callable[..., tuple[Any, Any]]:
    """As :func:`value_and_grad` for ``fn`` returning ``(loss, aux)``:
    ``((loss, aux), grads)``; ``aux`` is passed through untouched."""

    def run(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        with torch.enable_grad():
            out = fn(*args, **kwargs)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise ValueError("value_and_grad_aux: fn must return (loss, aux)")
            loss, aux = out
            grads = _grads(loss, params)
        return (loss.detach(), aux), grads

    return run
