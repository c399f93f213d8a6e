"""Mixed precision: loss scaling, autocast, parameter casting, ``no_grad``.

``GradScaler`` is numerically ``torch.amp.GradScaler`` step by step (skipped
steps, growth and backoff included), and its ``state_dict`` moves between the
two both ways. It works with ferrotorch optimizers and with any optimizer that
has ``param_groups`` and ``step()`` (``torch.optim`` included)::

    scaler = GradScaler(growth_interval=2000)
    with autocast(torch.bfloat16, device_type="cpu"):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(opt)          # or floDl's: scaler.step(params, opt.step) -> bool
    scaler.update()

With a ferrotorch optimizer whose implementation is ``"fused"`` the scale and
found-inf tensors go straight into the fused kernel, which unscales and skips
itself on device: no host synchronisation in the step. Otherwise gradients are
unscaled with ``_amp_foreach_non_finite_check_and_unscale_`` and the found-inf
flag is read once (as torch does) to decide whether to step.

``autocast(dtype)`` is a context manager; ``autocast(dtype, fn)`` runs ``fn``
under autocast and returns its result. ``device_type`` defaults to ``"cuda"``
when CUDA is available, else ``"cpu"``; CPU autocast supports bfloat16 and
float16. Autocast state is per thread, as in torch.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, TypeVar

import torch

from ._core import (
    AutocastGuard,
    GradScaler,
    autocast,
    cast_parameters,
    grad_scaler_defaults,
    is_autocast_enabled,
)

__all__ = [
    "GradScaler",
    "autocast",
    "AutocastGuard",
    "is_autocast_enabled",
    "cast_parameters",
    "no_grad",
]

T = TypeVar("T")

# pyo3 writes the constructor's defaults (the core's table) as `...`; the
# signature users and stubtest see takes them from that same table.
GradScaler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v)
        for k, v in grad_scaler_defaults().items()
    ]
)


def no_grad(fn: Optional[Callable[[], T]] = None) -> Any:
    """``no_grad()`` is ``torch.no_grad()`` (a context manager, also usable as
    ``@no_grad()``); floDl's ``no_grad(fn)`` runs ``fn`` with gradients off and
    returns its result."""
    if fn is None:
        return torch.no_grad()
    if not callable(fn):
        from .errors import InputTypeError

        raise InputTypeError(f"no_grad: fn must be callable, got {type(fn).__name__}")
    with torch.no_grad():
        return fn()
