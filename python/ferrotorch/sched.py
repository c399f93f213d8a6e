"""Learning-rate schedulers, in two styles over one Rust core.

torch-style schedulers bind to an optimizer and are equal to
``torch.optim.lr_scheduler`` value by value (``step()``, ``get_last_lr()``,
``last_epoch``, ``state_dict()`` / ``load_state_dict()``). The optimizer may be
a ``torch.optim`` optimizer (anything with torch-style ``param_groups``) or a
ferrotorch optimizer (``lr`` / ``set_lr``)::

    sched = CosineAnnealingLR(opt, T_max=100)
    for _ in range(100):
        opt.step()
        sched.step()

floDl calculators are pure functions of the 0-based step (``s.lr(step)`` or
``s(step)``)::

    StepDecay(0.1, 10, 0.5).lr(10)          # 0.05
    WarmupScheduler(CosineScheduler(0.1, 1e-3, 90), 0.1, 10)

``MultiStepLR``, ``ExponentialLR``, ``OneCycleLR`` and ``CyclicLR`` exist in
both styles: given an optimizer first they are torch's; given a number first
they are floDl's calculators (``MultiStepLR(0.1, [30, 60], 0.1)``).

Any Python callable ``int -> float`` is accepted wherever a schedule is
(``WarmupScheduler``'s inner schedule, ``LambdaLR``'s lambdas, ``CyclicLR``'s
``scale_fn``).
"""

import inspect
import numbers
from typing import Any, final

import torch

from . import _core
from ._core import (
    CosineScheduler,
    PlateauScheduler,
    Schedule,
    StepDecay,
    WarmupScheduler,
)

__all__ = [
    "Schedule",
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineScheduler",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "WarmupScheduler",
    "OneCycleLR",
    "CyclicLR",
    "LinearLR",
    "PolynomialLR",
    "LambdaLR",
    "SequentialLR",
    "ReduceLROnPlateau",
    "StepDecay",
    "PlateauScheduler",
]


class LRScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Base of the torch-style schedulers: a plain subclass of
    ``torch.optim.lr_scheduler.LRScheduler`` (so Lightning, transformers and
    accelerate take it as torch's) holding the Rust scheduler as ``_core``.
    ``step(epoch=None)``, ``get_last_lr()``, ``last_epoch``, ``base_lrs``,
    ``state_dict()`` / ``load_state_dict()`` are torch's, value by value."""

    _core_cls: Any = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        core = cls.__dict__.get("_core_cls")
        if core is not None:
            cls.__doc__ = cls.__doc__ or core.__doc__
            cls.__name__ = cls.__qualname__ = core.__name__  # _MultiStepLR shows as MultiStepLR
            cls.__signature__ = inspect.signature(core)  # type: ignore[attr-defined]

    def __init__(self, optimizer: Any, *args: Any, **kwargs: Any) -> None:
        # torch's __init__ is not run: the Rust core binds to the optimizer's groups.
        self.__dict__["_core"] = _core.call(type(self).__name__, self._core_cls, optimizer, *args, **kwargs)
        self.__dict__["optimizer"] = optimizer

    def __getattr__(self, name: str) -> Any:
        # Attributes torch keeps on the instance (last_epoch, base_lrs, best, ...) live in the core.
        core = self.__dict__.get("_core")
        if core is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(core, name)

    def step(self, epoch: Any = None) -> None:  # type: ignore[override]
        """Advances one step and sets the optimizer's lrs."""
        self._core.step(epoch)

    def get_last_lr(self) -> list:  # type: ignore[override]
        """The lrs set by the last step, one per param group."""
        return self._core.get_last_lr()

    def get_lr(self) -> list:  # type: ignore[override]
        return self._core.get_last_lr()

    def state_dict(self) -> dict:
        """The scheduler's state, with torch's key names."""
        return self._core.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores a state from ``state_dict()`` (torch's own dicts load too)."""
        self._core.load_state_dict(state_dict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self._core.last_epoch})"


class StepLR(LRScheduler):
    _core_cls = _core.StepLR


class _MultiStepLR(LRScheduler):
    _core_cls = _core.MultiStepLR


class _ExponentialLR(LRScheduler):
    _core_cls = _core.ExponentialLR


class LinearLR(LRScheduler):
    _core_cls = _core.LinearLR


class PolynomialLR(LRScheduler):
    _core_cls = _core.PolynomialLR


class CosineAnnealingLR(LRScheduler):
    _core_cls = _core.CosineAnnealingLR


class CosineAnnealingWarmRestarts(LRScheduler):
    _core_cls = _core.CosineAnnealingWarmRestarts


class LambdaLR(LRScheduler):
    _core_cls = _core.LambdaLR


class _OneCycleLR(LRScheduler):
    _core_cls = _core.OneCycleLR


class _CyclicLR(LRScheduler):
    _core_cls = _core.CyclicLR


class SequentialLR(LRScheduler):
    _core_cls = _core.SequentialLR

    def __init__(self, optimizer: Any, schedulers: Any, *args: Any, **kwargs: Any) -> None:
        cores = [s.__dict__.get("_core", s) for s in schedulers]
        super().__init__(optimizer, cores, *args, **kwargs)
        self.__dict__["_schedulers"] = list(schedulers)


class ReduceLROnPlateau(LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):  # type: ignore[misc]
    """torch's ``ReduceLROnPlateau`` (a subclass of it), stepped with the
    monitored metric: ``step(metrics)``."""

    _core_cls = _core.ReduceLROnPlateau

    def step(self, metrics: Any, epoch: Any = None) -> None:  # type: ignore[override]
        """Records ``metrics`` and reduces the lrs after ``patience`` bad epochs."""
        self._core.step(metrics, epoch)

    @property
    def in_cooldown(self) -> bool:  # type: ignore[override]
        return self._core.in_cooldown


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


class _Dispatch(type):
    """Metaclass of the names that exist in both styles: calling the class
    builds the floDl calculator when the first argument is a number, else the
    torch-style scheduler; ``isinstance`` accepts either."""

    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        for b in bases:
            if isinstance(b, _Dispatch):
                raise TypeError(
                    f"ferrotorch.sched.{b.__name__} cannot be subclassed: it builds torch's or floDl's "
                    f"class by its arguments; subclass type({b.__name__}(...)) instead"
                )

    def __call__(cls, *args, **kwargs):
        first = args[0] if args else kwargs.get("optimizer", kwargs.get("base", kwargs.get("max_lr")))
        if _is_number(first) and (args or "optimizer" not in kwargs):
            return _core.call(cls.__name__, cls._flodl, *args, **kwargs)
        return cls._torch(*args, **kwargs)

    def __instancecheck__(cls, obj):
        return isinstance(obj, (cls._flodl, cls._torch))


@final
class MultiStepLR(metaclass=_Dispatch):
    """``MultiStepLR(optimizer, milestones, gamma=0.1)``: torch's, multiplies
    the lr by ``gamma`` at each milestone.

    ``MultiStepLR(base, milestones, gamma)``: floDl's calculator,
    ``base * gamma ** (number of milestones <= step)``; milestones are sorted
    (``.milestones``).
    """

    _torch = _MultiStepLR
    _flodl = _core.MultiStepSchedule


@final
class ExponentialLR(metaclass=_Dispatch):
    """``ExponentialLR(optimizer, gamma)``: torch's, ``lr *= gamma`` per step.

    ``ExponentialLR(base, gamma)``: floDl's calculator, ``base * gamma ** step``.
    """

    _torch = _ExponentialLR
    _flodl = _core.ExponentialSchedule


@final
class OneCycleLR(metaclass=_Dispatch):
    """``OneCycleLR(optimizer, max_lr, total_steps=None, epochs=None,
    steps_per_epoch=None, pct_start=0.3, anneal_strategy='cos',
    cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
    div_factor=25.0, final_div_factor=1e4, three_phase=False)``: torch's,
    value by value; with ``cycle_momentum`` it cycles ``momentum`` (SGD,
    RMSprop) or ``betas[0]`` (Adam family) of ferrotorch and torch optimizers.

    ``OneCycleLR(max_lr, total)``: floDl's calculator: linear from
    ``max_lr / 25`` to ``max_lr`` over ``w = round(0.3 * total)`` steps, then a
    cosine back to ``max_lr / 25`` at ``total``. ``OneCycleLR.with_warmup_frac(
    max_lr, total, frac)`` sets the warmup fraction (clamped to [0, 1]).
    """

    _torch = _OneCycleLR
    _flodl = _core.OneCycleSchedule

    @staticmethod
    def with_warmup_frac(max_lr, total, warmup_frac):
        """floDl's one-cycle calculator with warmup ``round(total * warmup_frac)``."""
        return _core.call("OneCycleLR.with_warmup_frac", _core.OneCycleSchedule, max_lr, total, warmup_frac)


@final
class CyclicLR(metaclass=_Dispatch):
    """``CyclicLR(optimizer, base_lr, max_lr, step_size_up=2000,
    step_size_down=None, mode='triangular', gamma=1.0, scale_fn=None,
    scale_mode='cycle', cycle_momentum=True, base_momentum=0.8,
    max_momentum=0.9)``: torch's; ``cycle_momentum`` cycles ``momentum`` or
    ``betas[0]`` as torch does.

    ``CyclicLR(base, max_lr, step)``: floDl's triangular calculator with
    ``step`` steps up and ``step`` down; ``CyclicLR.asymmetric(base, max_lr,
    up, down)`` for different lengths.
    """

    _torch = _CyclicLR
    _flodl = _core.CyclicSchedule

    @staticmethod
    def asymmetric(base, max_lr, up, down):
        """floDl's cyclic calculator rising for ``up`` steps, falling for ``down``."""
        return _core.call("CyclicLR.asymmetric", _core.CyclicSchedule, base, max_lr, up, down)
