"""Kaun's ``Train`` module (raven-ml/raven) over the engine.

Kaun's trainer state is functional (``vars`` and optimizer state); here the
model and optimizer hold their state, so a state is the :class:`Trainer`
itself and the functions return it::

    t = kaun.make(model=model, optimizer=Adam(model.parameters(), 1e-3))
    st = kaun.init(t)
    st = kaun.fit(t, st, Data.repeat(100, (x, loss_fn)), report=lambda step, loss, st: ...)
    y = kaun.predict(t, st, x)

``report(step, loss, state)`` runs after every step with the 1-based step
of this ``fit`` call;
raise :class:`EarlyStop` in it to stop. ``ferrotorch.schedule`` functions
given as schedules see 1-based update counts, as Kaun's optimizers pass.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import torch

from ..errors import ConfigError, EarlyStop
from ..train import Trainer, _arity

__all__ = ["make", "init", "fit", "step", "predict", "make_state", "vars", "EarlyStop"]


def make(model: Any, optimizer: Any, **options: Any) -> Trainer:
    """Kaun's ``Train.make ~model ~optimizer``; ``options`` go to :class:`Trainer`."""
    return Trainer(model, optimizer, **options)


def init(t: Trainer, dtype: Any = None) -> Trainer:
    """Kaun's ``Train.init``: the model's weights as built, fresh optimizer
    state; ``dtype`` casts the model (e.g. ``torch.float64``)."""
    if dtype is not None:
        t.model.to(dtype)
    return t.make_state(t.model.state_dict())


def make_state(t: Trainer, vars: Any) -> Trainer:  # noqa: A002 - Kaun's name
    """Kaun's ``Train.make_state``: these weights (a state dict or the
    parameters' tensors in order), fresh optimizer state and counters."""
    model = t.model
    if isinstance(vars, dict):
        model.load_state_dict(vars)
    else:
        vals, ps = list(vars), list(model.parameters())
        if len(vals) != len(ps):
            raise ConfigError(f"make_state: {len(vals)} tensors for {len(ps)} parameters")
        for p, v in zip(ps, vals):
            if tuple(p.shape) != tuple(v.shape):
                raise ConfigError(
                    f"make_state: shape {tuple(v.shape)} for a parameter of shape {tuple(p.shape)}"
                )
        with torch.no_grad():
            for p, v in zip(ps, vals):
                p.copy_(v)
    sd = t.optimizer.state_dict()
    t.optimizer.load_state_dict({"state": {}, "param_groups": sd["param_groups"]})
    t._engine.set_state({"step": 0, "micro": 0, "epoch": 0, "batch": 0})
    return t


def vars(st: Trainer) -> dict:  # noqa: A001 - Kaun's name
    """The model's variables (its state dict)."""
    return st.model.state_dict()


def step(
    t: Trainer, st: Trainer, x: Any, loss: Callable[[torch.Tensor], torch.Tensor]
) -> Tuple[float, Trainer]:
    """One update on ``x`` with ``loss(pred) -> scalar``; (loss, state)."""
    del t
    return st.step(x, loss), st


def fit(t: Trainer, st: Trainer, data: Any, report: Optional[Callable[..., Any]] = None) -> Trainer:
    """Kaun's ``Train.fit``: one pass over ``(x, loss_fn)`` elements (or any
    batches), ``report(step, loss, state)`` after every step; ``EarlyStop``
    ends it."""
    del t
    start = st.global_step
    wrapped = None
    if report is not None:
        n_args = _arity(report)

        def wrapped(k: int, loss: float, tr: Trainer) -> None:
            report(*(k - start, loss, tr)[:n_args])  # Kaun counts the steps of this call

    st.fit(data, epochs=1, report=wrapped, log_every=1)
    return st


def predict(t: Trainer, st: Trainer, x: Any) -> torch.Tensor:
    """The model's output in eval mode, without gradients."""
    del t
    return st.predict(x)
