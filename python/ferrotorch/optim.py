"""Optimizers, numerically equal to ``torch.optim`` and usable on any torch
parameters.

Every optimizer takes ``params`` as tensors or as torch-style group dicts
(``[{"params": [...], "lr": 0.1}, ...]``) and an ``implementation``:
``"auto"`` (fused kernel where libtorch has one, else ``_foreach_*``),
``"fused"``, ``"foreach"`` or ``"reference"`` (per tensor, for tests).
Positional order follows floDl where it has one: ``SGD(params, lr, momentum)``,
``AdamW(params, lr, weight_decay)``. floDl's group builders work too:
``Adam.with_groups().betas(0.9, 0.99).group(enc, 1e-4).group(dec, 1e-3).build()``.

``lr`` may be a schedule (Kaun's ``~lr``): ``SGD(p, lr=ferrotorch.schedule.cosine_decay(0.1, 1000))``
or a Python callable ``step -> lr``. Before each update every group's lr is set
to ``schedule(n)``, ``n`` counting updates from the schedule's first step (1 for
``ferrotorch.schedule`` functions, as Kaun; 0 for callables and floDl
calculators). The count lives in the optimizer and is not part of its state dict.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import MutableMapping
from typing import Any, Iterable, Iterator, Optional

import torch

from . import _boundary
from ._core import Optimizer as _CoreOptimizer
from ._core import optimizer_defaults, optimizer_names
from ._io import read_checked, save_checked
from .errors import CheckpointError, ConfigError, Error, InputTypeError, TagError

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "RAdam",
    "NAdam",
    "LAMB",
    "Adamax",
    "GroupBuilder",
    "by_name",
]


class _GroupView(MutableMapping):
    """A live view of one parameter group: writes go to the optimizer, so
    ``opt.param_groups[0]["lr"] = 0.1`` works as in torch. Keys the algorithm
    does not have (a torch scheduler's ``initial_lr``, ``max_lr``,
    ``base_momentum``...) are kept beside it, as torch's group dicts keep them."""

    def __init__(self, opt: Optimizer, index: int) -> None:
        self._opt, self._i = opt, index

    def _extras(self) -> dict:
        extras = self._opt.__dict__.setdefault("_group_extras", [])
        while len(extras) <= self._i:
            extras.append({})
        return extras[self._i]

    def __getitem__(self, key: str) -> Any:
        if key == "params":
            return self._opt.group_params(self._i)
        hyper = self._opt.group_hyper(self._i)
        if key in hyper:
            return hyper[key]
        extras = self._extras()
        if key not in extras:
            raise TagError(f"param_groups[{self._i}] has no '{key}'; it has {['params', *hyper, *extras]}")
        return extras[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "params":
            raise ConfigError(f"param_groups[{self._i}]['params'] cannot be replaced; use add_param_group")
        if key in self._opt.group_hyper(self._i):
            self._opt.set_group_hyper(self._i, key, value)
        else:
            self._extras()[key] = value

    def __delitem__(self, key: str) -> None:
        if key in self._extras():
            del self._extras()[key]
            return
        raise ConfigError(f"param_groups[{self._i}]: hyperparameter '{key}' cannot be removed")

    def __iter__(self) -> Iterator[str]:
        return iter(["params", *self._opt.group_hyper(self._i), *self._extras()])

    def __len__(self) -> int:
        return 1 + len(self._opt.group_hyper(self._i)) + len(self._extras())

    def __repr__(self) -> str:
        return repr({k: v for k, v in self.items() if k != "params"})


class _Checked(type):
    """Metaclass of the optimizers: argument errors Python raises when
    binding ``__new__``'s arguments (an unknown keyword, a missing ``params``)
    become :class:`~ferrotorch.InputTypeError` like the extension's."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return _boundary.call(super().__call__, f"{cls.__name__}()", *args, **kwargs)

    @property
    def __signature__(cls) -> inspect.Signature:
        """``__new__``'s parameters after ``cls`` (``help`` and ``inspect``
        would otherwise show ``__call__``'s ``*args, **kwargs``)."""
        for k in cls.__mro__:
            new = vars(k).get("__new__")
            if isinstance(new, staticmethod):
                sig = inspect.signature(new.__func__)
                return sig.replace(parameters=list(sig.parameters.values())[1:])
        raise AttributeError("__signature__")  # the base class: inspect's own rules


class Optimizer(_CoreOptimizer, torch.optim.Optimizer, metaclass=_Checked):
    """Base class: ``step()``, ``zero_grad()``, ``lr`` / ``set_lr``,
    ``set_group_lr``, ``scale_lr``, ``param_groups`` (live views),
    ``add_param_group``, ``state_dict`` / ``load_state_dict`` in
    ``torch.optim``'s layout, ``save_state`` / ``load_state`` to files.

    It is a ``torch.optim.Optimizer`` (``isinstance`` holds), so torch's
    lr schedulers (``CosineAnnealingLR``, ``OneCycleLR``, ...) drive it: they
    read and write ``param_groups`` (live views onto the Rust groups; extra
    keys such as ``initial_lr`` are kept beside them) and wrap ``step``. The
    update itself stays the Rust fused / foreach path; torch's ``Optimizer``
    machinery (``__init__``, hooks, ``state``) is not used: step hooks
    registered with ``register_step_pre_hook`` do not run."""

    _algorithm = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # built in __new__
        pass

    def step(self, closure: Any = None) -> Any:
        """One update of every parameter with a gradient (Rust, GIL released).
        ``closure`` (torch's) is called first, with grad enabled, and its
        loss returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        _CoreOptimizer.step(self)
        return loss

    # torch's are plain attributes; ours read the Rust core live.
    @property
    def param_groups(self) -> list:  # type: ignore[override]
        return [_GroupView(self, i) for i in range(self.num_groups())]

    @property
    def defaults(self) -> dict:  # type: ignore[override]
        """The constructor's hyperparameters (torch's ``optimizer.defaults``)."""
        d = self.__dict__.get("_defaults")
        return dict(d) if d is not None else dict(self.group_hyper(0))

    @property
    def state(self) -> dict:  # type: ignore[override]
        """Per-parameter state keyed by the parameter tensor (a snapshot of
        live tensors, as torch's ``optimizer.state``)."""
        out: dict = {}
        k = 0
        for g in range(self.num_groups()):
            for p in self.group_params(g):
                st = self.param_state(k)
                if st is not None:
                    out[p] = st
                k += 1
        return out

    def state_dict(self) -> dict:
        sd = _CoreOptimizer.state_dict(self)
        for g, extras in zip(sd["param_groups"], self.__dict__.get("_group_extras", [])):
            for key, value in extras.items():
                g.setdefault(key, value)
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        if not isinstance(state_dict, dict):
            raise InputTypeError(f"load_state_dict: expected a dict, got {type(state_dict).__name__}")
        groups = state_dict.get("param_groups", [])
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
            raise InputTypeError(
                f"load_state_dict: 'param_groups' must be a list of dicts, got {type(groups).__name__}"
            )
        known = [set(self.group_hyper(i)) for i in range(self.num_groups())]
        extras, trimmed = [], []
        for i, g in enumerate(groups):
            keys = known[i] if i < len(known) else set()
            extra = {k: v for k, v in g.items() if k != "params" and k not in keys and k in _SCHED_KEYS}
            extras.append(extra)
            trimmed.append({k: v for k, v in g.items() if k not in extra})
        _CoreOptimizer.load_state_dict(self, dict(state_dict, param_groups=trimmed))
        self.__dict__["_group_extras"] = extras

    def __repr__(self) -> str:
        return _CoreOptimizer.__repr__(self)

    def save_state(self, path: str | os.PathLike) -> None:
        """Writes the state dict atomically (temp file, fsync, rename) as a
        ``torch.save`` zip carrying a SHA-256 of the whole file."""
        save_checked(self.state_dict(), path)

    def load_state(self, path: str | os.PathLike) -> None:
        """Loads a state dict written by ``save_state`` (or ``torch.save`` of
        a ``torch.optim`` state dict). The checksum (when the file has one)
        and every entry are checked before anything changes: a bad file
        raises :class:`~ferrotorch.CheckpointError` naming the file and the
        field (:class:`~ferrotorch.FileError` for OS errors), and the
        optimizer is left as it was."""
        path = os.fspath(path)
        sd = read_checked("optimizer state", path)
        if not isinstance(sd, dict) or not {"state", "param_groups"} <= set(sd):
            what = (
                f"a dict with keys {sorted(map(str, sd))[:8]}" if isinstance(sd, dict) else type(sd).__name__
            )
            raise CheckpointError(
                f"optimizer state '{path}': not an optimizer state dict (needs 'state' and "
                f"'param_groups'; the file holds {what})"
            )
        try:
            self.load_state_dict(sd)
        except (Error, TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"optimizer state '{path}' does not fit this optimizer: {e}") from e

    @classmethod
    def with_groups(cls, **defaults: Any) -> GroupBuilder:
        """floDl's group builder: ``.group(params, lr)`` per group, then ``.build()``."""
        return GroupBuilder(cls, defaults)


# Keys torch's lr schedulers keep in param groups (restored with the state dict).
_SCHED_KEYS = frozenset(["initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"])


def _make(cls: Any, params: Any, defaults: dict, implementation: str) -> Any:
    if isinstance(params, torch.Tensor):
        raise InputTypeError(
            f"{cls.__name__}(): argument 'params' must be an iterable of tensors or of group "
            f"dicts, got a single {type(params).__name__} of shape {tuple(params.shape)}; "
            "wrap it in a list"
        )
    opt = _boundary.call(
        _CoreOptimizer.__new__,
        f"{cls.__name__}()",
        cls,
        cls._algorithm,
        params,
        defaults,
        implementation,
    )
    opt.__dict__["_defaults"] = dict(defaults)
    return opt


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening and Nesterov (``torch.optim.SGD``)."""

    _algorithm = "sgd"
    _d = optimizer_defaults("sgd")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        momentum: float = _d["momentum"],
        dampening: float = _d["dampening"],
        weight_decay: float = _d["weight_decay"],
        nesterov: bool = _d["nesterov"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> SGD:
        d = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        return _make(cls, params, d, implementation)

    @classmethod
    def with_groups(cls, momentum: float = _d["momentum"], **defaults: Any) -> GroupBuilder:  # type: ignore[override]
        return GroupBuilder(cls, dict(defaults, momentum=momentum))


class Adam(Optimizer):
    """Adam with L2 weight decay, optionally AMSGrad (``torch.optim.Adam``)."""

    _algorithm = "adam"
    _d = optimizer_defaults("adam")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        amsgrad: bool = _d["amsgrad"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> Adam:
        d = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        return _make(cls, params, d, implementation)


class AdamW(Optimizer):
    """Adam with decoupled weight decay (``torch.optim.AdamW``); floDl's order: ``AdamW(params, lr, weight_decay)``."""

    _algorithm = "adamw"
    _d = optimizer_defaults("adamw")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        weight_decay: float = _d["weight_decay"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        amsgrad: bool = _d["amsgrad"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> AdamW:
        d = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        return _make(cls, params, d, implementation)

    @classmethod
    def with_groups(cls, weight_decay: float = _d["weight_decay"], **defaults: Any) -> GroupBuilder:  # type: ignore[override]
        return GroupBuilder(cls, dict(defaults, weight_decay=weight_decay))


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum (``torch.optim.RMSprop``)."""

    _algorithm = "rmsprop"
    _d = optimizer_defaults("rmsprop")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        alpha: float = _d["alpha"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        momentum: float = _d["momentum"],
        centered: bool = _d["centered"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> RMSprop:
        d = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        return _make(cls, params, d, implementation)


class Adagrad(Optimizer):
    """Adagrad with lr decay (``torch.optim.Adagrad``)."""

    _algorithm = "adagrad"
    _d = optimizer_defaults("adagrad")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        lr_decay: float = _d["lr_decay"],
        weight_decay: float = _d["weight_decay"],
        initial_accumulator_value: float = _d["initial_accumulator_value"],
        eps: float = _d["eps"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> Adagrad:
        d = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        return _make(cls, params, d, implementation)


class RAdam(Optimizer):
    """Rectified Adam (``torch.optim.RAdam``)."""

    _algorithm = "radam"
    _d = optimizer_defaults("radam")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        decoupled_weight_decay: bool = _d["decoupled_weight_decay"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> RAdam:
        d = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        return _make(cls, params, d, implementation)


class NAdam(Optimizer):
    """torch's NAdam, with its momentum-decay schedule (``torch.optim.NAdam``)."""

    _algorithm = "nadam"
    _d = optimizer_defaults("nadam")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        momentum_decay: float = _d["momentum_decay"],
        decoupled_weight_decay: bool = _d["decoupled_weight_decay"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> NAdam:
        d = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        return _make(cls, params, d, implementation)


class LAMB(Optimizer):
    """LAMB: Adam's direction plus decoupled decay, scaled per tensor by the trust ratio
    ||p|| / ||update|| (You et al. 2019)."""

    _algorithm = "lamb"
    _d = optimizer_defaults("lamb")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> LAMB:
        d = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        return _make(cls, params, d, implementation)


class Adamax(Optimizer):
    """Adamax, Adam over the infinity norm (``torch.optim.Adamax``)."""

    _algorithm = "adamax"
    _d = optimizer_defaults("adamax")

    def __new__(
        cls,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> Adamax:
        d = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        return _make(cls, params, d, implementation)


class GroupBuilder:
    """floDl's ``X.with_groups()`` builder: set shared options with methods
    named after them (``.betas(b1, b2)``, ``.eps(e)``, ``.weight_decay(w)``,
    ...), add ``.group(params, lr)`` per group, then ``.build()``."""

    def __init__(self, cls: type, defaults: dict) -> None:
        self._cls, self._defaults = cls, dict(defaults)
        self._groups: list = []
        self._implementation = "auto"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def setter(*values: Any) -> GroupBuilder:
            self._defaults[name] = values[0] if len(values) == 1 else tuple(values)
            return self

        return setter

    def implementation(self, name: str) -> GroupBuilder:
        self._implementation = name
        return self

    def group(self, params: Iterable[Any], lr: Optional[float] = None, **options: Any) -> GroupBuilder:
        g = {"params": list(params), **options}
        if lr is not None:
            g["lr"] = lr
        self._groups.append(g)
        return self

    def build(self) -> Optimizer:
        if not self._groups:
            raise ConfigError(
                f"{self._cls.__name__}.with_groups(): add at least one .group(params, lr) before build()"
            )
        # The first group's lr, else the builder's, else the class default.
        defaults = dict(self._defaults)
        if "lr" in self._groups[0]:
            defaults["lr"] = self._groups[0]["lr"]
        return self._cls(self._groups, implementation=self._implementation, **defaults)


def by_name(name: str, params: Iterable[Any], lr: float, **options: Any) -> Optimizer:
    """An optimizer chosen by name (case-insensitive), for command lines."""
    key = str(name).lower()
    if key not in optimizer_names():
        raise ConfigError(f"unknown optimizer '{name}'; valid names are {optimizer_names()}")
    # Each class names its algorithm; the core's registry holds the names.
    cls = next(c for c in Optimizer.__subclasses__() if c._algorithm == key)
    return cls(params, lr, **options)
