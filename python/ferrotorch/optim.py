"""Optimizers, numerically equal to ``torch.optim`` and usable on any torch
parameters.

Each class is an ordinary Python subclass of ``torch.optim.Optimizer`` that
holds its Rust optimizer by composition (``self._core``): Python holds the
identity, Rust the update. So Lightning's and Fabric's re-classing wrappers,
accelerate, transformers' ``Trainer`` and torch's lr schedulers take them
unchanged, and ``step`` runs torch's step hooks.

Every optimizer takes ``params`` as tensors, ``(name, tensor)`` pairs
(``model.named_parameters()``) or torch-style group dicts
(``[{"params": [...], "lr": 0.1}, ...]``). Positional arguments follow
torch's signature exactly (``Adam(params, lr, betas, eps, weight_decay,
amsgrad)``), and torch's keyword arguments are accepted: ``fused=True`` /
``foreach=True`` choose ferrotorch's path, ``capturable`` is accepted (the
CUDA-graph mode of the ``Trainer`` captures the step), ``differentiable=True``
is refused. ``implementation=`` chooses the path directly: ``"auto"`` (fused
kernel where libtorch has one, else ``_foreach_*``), ``"fused"``,
``"foreach"`` or ``"reference"`` (per tensor, for tests). Tensors of one group
are updated per (device, dtype) bucket, as torch's foreach and fused paths do.
floDl's forms keep working where they are unambiguous: ``AdamW(params, lr,
weight_decay)`` (a number as third argument is floDl's weight decay) and the
group builders, ``Adam.with_groups().betas(0.9, 0.99).group(enc, 1e-4).group(dec, 1e-3).build()``.

``lr`` may be a schedule (Kaun's ``~lr``): ``SGD(p, lr=ferrotorch.schedule.cosine_decay(0.1, 1000))``
or a Python callable ``step -> lr``. Before each update every group's lr is set
to ``schedule(n)``, ``n`` counting updates from the schedule's first step (1 for
``ferrotorch.schedule`` functions, as Kaun; 0 for callables and floDl
calculators). The count lives in the optimizer and is not part of its state dict.

Under ``torch.compile`` the update is an intended graph break: ``step`` and
``zero_grad`` are ``torch.compiler.disable``d (the Rust update is opaque to
Dynamo), so compiling a train step that calls them warns about nothing.
"""

from __future__ import annotations

import inspect
import os
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Any, Iterable, Iterator, Optional

import torch

from . import _core
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

# torch's constructor keywords that pick torch's code path, not a hyperparameter.
TORCH_PATH_KEYS = ("foreach", "fused", "capturable", "differentiable")


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


def _implementation(name: str, implementation: str, torch_keys: dict) -> str:
    """torch's ``fused=`` / ``foreach=`` as ferrotorch's ``implementation=``."""
    if torch_keys.get("differentiable"):
        raise ConfigError(f"{name}(): differentiable=True is not supported (the update runs in Rust)")
    chosen = [k for k in ("fused", "foreach") if torch_keys.get(k)]
    if len(chosen) == 2:
        raise ConfigError(f"{name}(): fused=True and foreach=True cannot both be set")
    if not chosen:
        return implementation
    if implementation not in ("auto", chosen[0]):
        raise ConfigError(f"{name}(): {chosen[0]}=True contradicts implementation={implementation!r}")
    return chosen[0]


def _split_named(params: Any) -> tuple:
    """torch 2.6+ also takes ``named_parameters()``: (tensors or group dicts,
    names per group or None)."""
    if isinstance(params, torch.Tensor):
        return params, None
    try:
        items = list(params)
    except TypeError:
        return params, None  # the core names the argument
    named = lambda x: isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str)  # noqa: E731
    if items and all(named(i) for i in items):
        return [t for _, t in items], [[n for n, _ in items]]
    if items and all(isinstance(g, dict) for g in items):
        groups: list = []
        names: list = []
        for g in items:
            ps = g.get("params")
            ps = list(ps) if ps is not None and not isinstance(ps, torch.Tensor) else ps
            if ps and all(named(p) for p in ps):
                groups.append(dict(g, params=[t for _, t in ps]))
                names.append([n for n, _ in ps])
            else:
                groups.append(g if ps is None else dict(g, params=ps))
                names.append(None)
        return groups, names if any(n is not None for n in names) else None
    return items, None


class Optimizer(torch.optim.Optimizer):
    """Base class: ``step(closure=None)``, ``zero_grad(set_to_none=True)``,
    ``lr`` / ``set_lr``, ``set_group_lr``, ``scale_lr``, ``param_groups``
    (live views), ``add_param_group``, ``state`` (a snapshot keyed by
    parameter), ``state_dict`` / ``load_state_dict`` in ``torch.optim``'s
    layout, ``save_state`` / ``load_state`` to files.

    A plain subclass of ``torch.optim.Optimizer`` holding the Rust optimizer
    as ``_core``. torch's lr schedulers read and write ``param_groups``
    (views onto the Rust groups; extra keys such as ``initial_lr`` are kept
    beside them) and wrap ``step``; step pre- and post-hooks
    (``register_step_pre_hook``) run around every ``step()`` call. The
    ``ferrotorch.Trainer`` and ``GradScaler`` call the Rust update directly
    (no Python call per step), so hooks do not run there."""

    _algorithm = ""
    _core: _CoreOptimizer
    _group_extras: list

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Arguments that do not fit the class's own ``__init__`` (an unknown
        # keyword, a missing ``params``) are InputTypeErrors, as the core's
        # are. No arguments: copy and pickle make an empty instance.
        if args or kwargs:
            try:
                inspect.signature(cls.__init__).bind(None, *args, **kwargs)
            except TypeError as e:
                raise InputTypeError(f"{cls.__name__}(): {e}") from None
        return super().__new__(cls)

    def __init__(self, params: Any, defaults: dict, implementation: str = "auto") -> None:
        """Builds the Rust optimizer ``self._algorithm`` over ``params`` with
        the hyperparameters ``defaults``. Subclasses pass their arguments."""
        name = type(self).__name__
        if isinstance(params, torch.Tensor):
            raise InputTypeError(
                f"{name}(): argument 'params' must be an iterable of tensors or of group "
                f"dicts, got a single {type(params).__name__} of shape {tuple(params.shape)}; "
                "wrap it in a list"
            )
        if not self._algorithm:
            raise ConfigError(f"{name}(): subclass one of ferrotorch.optim's optimizers (SGD, Adam, ...)")
        torch_keys = {k: defaults.pop(k) for k in TORCH_PATH_KEYS if k in defaults}
        implementation = _implementation(name, implementation, torch_keys)
        params, names = _split_named(params)
        core = _core.call(name, _CoreOptimizer, self._algorithm, params, defaults, implementation)
        d = self.__dict__
        d["_core"] = core
        d["defaults"] = dict(defaults, **torch_keys)
        d["_group_extras"] = [
            {"param_names": n} if n is not None else {} for n in (names or [None] * core.num_groups())
        ]
        for hooks in (
            "_optimizer_step_pre_hooks",
            "_optimizer_step_post_hooks",
            "_optimizer_state_dict_pre_hooks",
            "_optimizer_state_dict_post_hooks",
            "_optimizer_load_state_dict_pre_hooks",
            "_optimizer_load_state_dict_post_hooks",
        ):
            d[hooks] = OrderedDict()
        d["_warned_capturable_if_run_uncaptured"] = True
        # torch's wrapper around the class's step: profiler range and step hooks.
        self._patch_step_function()
        # Dynamo does not trace the wrapper either (it would only log that the
        # profiler range is ignored): the whole step is one intended graph break.
        cls = type(self)
        if not getattr(cls.step, "_ft_opaque", False):
            opaque = torch.compiler.disable(cls.step)
            opaque._ft_opaque = True  # type: ignore[attr-defined]
            cls.step = opaque  # type: ignore[method-assign]

    def step(self, closure: Any = None) -> Any:
        """One update of every parameter with a gradient (Rust, GIL released).
        ``closure`` (torch's) is called first, with grad enabled, and its
        loss returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._core.step()
        return loss

    @torch.compiler.disable
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Sets every gradient to None, or with ``set_to_none=False`` to zero
        in place (torch's two modes)."""
        if set_to_none:
            self._core.zero_grad()
        else:  # torch's own in-place zeroing, over the live param_groups
            torch.optim.Optimizer.zero_grad(self, set_to_none=False)

    # torch's are plain attributes; ours read the Rust core live.
    @property
    def param_groups(self) -> list:  # type: ignore[override]
        return [_GroupView(self, i) for i in range(self._core.num_groups())]

    @property
    def state(self) -> dict:  # type: ignore[override]
        """Per-parameter state keyed by the parameter tensor (a snapshot of
        live tensors, as torch's ``optimizer.state``)."""
        out: dict = {}
        k = 0
        core = self._core
        for g in range(core.num_groups()):
            for p in core.group_params(g):
                st = core.param_state(k)
                if st is not None:
                    out[p] = st
                k += 1
        return out

    @property
    def lr(self) -> float:
        """The first group's learning rate."""
        return self._core.lr

    def set_lr(self, lr: float) -> None:
        """Sets every group's learning rate (floDl's ``set_lr``)."""
        self._core.set_lr(lr)

    def set_group_lr(self, index: int, lr: float) -> None:
        """Sets group ``index``'s learning rate."""
        self._core.set_group_lr(index, lr)

    def scale_lr(self, factor: float) -> None:
        """Multiplies every group's learning rate by ``factor``."""
        self._core.scale_lr(factor)

    @property
    def implementation(self) -> str:
        """The update path: ``"fused"``, ``"foreach"`` or ``"reference"``."""
        return self._core.implementation

    @property
    def algorithm(self) -> str:
        """The registry name (``"adam"``, ``"sgd"``, ...)."""
        return self._core.algorithm

    def num_groups(self) -> int:
        return self._core.num_groups()

    def group_hyper(self, index: int) -> dict:
        """Group ``index``'s hyperparameters (a copy)."""
        return self._core.group_hyper(index)

    def set_group_hyper(self, index: int, key: str, value: Any) -> None:
        """Sets one hyperparameter of group ``index`` (validated)."""
        self._core.set_group_hyper(index, key, value)

    def group_params(self, index: int) -> list:
        return self._core.group_params(index)

    def param_state(self, index: int) -> Optional[dict]:
        """The state of parameter ``index`` (over all groups), or None before its first step."""
        return self._core.param_state(index)

    def add_param_group(self, param_group: dict) -> None:
        """Adds a group ``{"params": [...], **hyperparameters}`` (missing
        hyperparameters take the constructor's values)."""
        if not isinstance(param_group, dict):
            raise InputTypeError(f"add_param_group: expected a dict, got {type(param_group).__name__}")
        groups, names = _split_named([param_group])
        group = {k: v for k, v in groups[0].items() if k not in TORCH_PATH_KEYS}
        extras = {k: group.pop(k) for k in list(group) if k in _SCHED_KEYS}
        self._core.add_param_group(group)
        if names and names[0] is not None:
            extras["param_names"] = names[0]
        self._group_extras.append(extras)

    def state_dict(self) -> dict:
        sd = self._core.state_dict()
        for g, extras in zip(sd["param_groups"], self._group_extras):
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
        core = self._core
        known = [set(core.group_hyper(i)) for i in range(core.num_groups())]
        extras, trimmed = [], []
        for i, g in enumerate(groups):
            keys = known[i] if i < len(known) else set()
            extra = {k: v for k, v in g.items() if k != "params" and k not in keys and k in _SCHED_KEYS}
            extras.append(extra)
            trimmed.append({k: v for k, v in g.items() if k not in extra})
        core.load_state_dict(dict(state_dict, param_groups=trimmed))
        # In place: wrappers that copied this object's __dict__ (Lightning, Fabric) share the list.
        self._group_extras[:] = extras

    def __getstate__(self) -> dict:
        raise InputTypeError(
            f"{type(self).__name__} cannot be pickled (its state lives in Rust); "
            "save state_dict() and load it into a new optimizer"
        )

    def __repr__(self) -> str:
        return repr(self._core)

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
_SCHED_KEYS = frozenset(["initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum", "param_names"])


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening and Nesterov (``torch.optim.SGD``)."""

    _algorithm = "sgd"
    _d = optimizer_defaults("sgd")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        momentum: float = _d["momentum"],
        dampening: float = _d["dampening"],
        weight_decay: float = _d["weight_decay"],
        nesterov: bool = _d["nesterov"],
        *,
        maximize: bool = _d["maximize"],
        foreach: Optional[bool] = None,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        implementation: str = "auto",
    ) -> None:
        d = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(
            params, _torch_keys(d, foreach, fused, differentiable=differentiable), implementation
        )

    @classmethod
    def with_groups(cls, momentum: float = _d["momentum"], **defaults: Any) -> GroupBuilder:  # type: ignore[override]
        return GroupBuilder(cls, dict(defaults, momentum=momentum))


def _torch_keys(d: dict, foreach: Optional[bool], fused: Optional[bool] = None, **flags: bool) -> dict:
    """``d`` plus torch's code-path keywords (taken off again by ``Optimizer.__init__``)."""
    return dict(d, foreach=foreach, fused=fused, **flags)


def _betas_or_floDl_wd(name: str, betas: Any, weight_decay: Any, default_wd: float) -> tuple:
    """floDl's ``AdamW(params, lr, weight_decay)``: a number where torch has
    ``betas`` is floDl's weight decay (torch's betas is a pair)."""
    if isinstance(betas, (int, float)) and not isinstance(betas, bool):
        if weight_decay != default_wd:
            raise ConfigError(
                f"{name}(): the third argument {betas!r} is floDl's weight_decay, and weight_decay="
                f"{weight_decay!r} is given too; pass betas as a pair (torch's order) or one weight_decay"
            )
        return _D_ADAM["betas"], betas
    return tuple(betas), weight_decay


_D_ADAM = optimizer_defaults("adam")


class Adam(Optimizer):
    """Adam with L2 weight decay, optionally AMSGrad (``torch.optim.Adam``);
    ``decoupled_weight_decay=True`` is AdamW, as in torch."""

    _algorithm = "adam"
    _d = optimizer_defaults("adam")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        amsgrad: bool = _d["amsgrad"],
        *,
        foreach: Optional[bool] = None,
        maximize: bool = _d["maximize"],
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        decoupled_weight_decay: bool = False,
        implementation: str = "auto",
    ) -> None:
        d = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        if decoupled_weight_decay:  # torch's Adam(decoupled_weight_decay=True) is AdamW
            self.__dict__["_algorithm"] = "adamw"
        keys = _torch_keys(d, foreach, fused, capturable=capturable, differentiable=differentiable)
        super().__init__(params, keys, implementation)


class AdamW(Optimizer):
    """Adam with decoupled weight decay (``torch.optim.AdamW``). torch's
    positional order; floDl's ``AdamW(params, lr, weight_decay)`` works too
    (a number as third argument)."""

    _algorithm = "adamw"
    _d = optimizer_defaults("adamw")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        amsgrad: bool = _d["amsgrad"],
        *,
        maximize: bool = _d["maximize"],
        foreach: Optional[bool] = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        implementation: str = "auto",
    ) -> None:
        betas, weight_decay = _betas_or_floDl_wd("AdamW", betas, weight_decay, self._d["weight_decay"])
        d = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        keys = _torch_keys(d, foreach, fused, capturable=capturable, differentiable=differentiable)
        super().__init__(params, keys, implementation)

    @classmethod
    def with_groups(cls, weight_decay: float = _d["weight_decay"], **defaults: Any) -> GroupBuilder:  # type: ignore[override]
        return GroupBuilder(cls, dict(defaults, weight_decay=weight_decay))


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum (``torch.optim.RMSprop``)."""

    _algorithm = "rmsprop"
    _d = optimizer_defaults("rmsprop")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        alpha: float = _d["alpha"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        momentum: float = _d["momentum"],
        centered: bool = _d["centered"],
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = _d["maximize"],
        differentiable: bool = False,
        *,
        implementation: str = "auto",
    ) -> None:
        d = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        keys = _torch_keys(d, foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, keys, implementation)


class Adagrad(Optimizer):
    """Adagrad with lr decay (``torch.optim.Adagrad``)."""

    _algorithm = "adagrad"
    _d = optimizer_defaults("adagrad")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        lr_decay: float = _d["lr_decay"],
        weight_decay: float = _d["weight_decay"],
        initial_accumulator_value: float = _d["initial_accumulator_value"],
        eps: float = _d["eps"],
        foreach: Optional[bool] = None,
        *,
        maximize: bool = _d["maximize"],
        differentiable: bool = False,
        fused: Optional[bool] = None,
        implementation: str = "auto",
    ) -> None:
        d = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(
            params, _torch_keys(d, foreach, fused, differentiable=differentiable), implementation
        )


class RAdam(Optimizer):
    """Rectified Adam (``torch.optim.RAdam``)."""

    _algorithm = "radam"
    _d = optimizer_defaults("radam")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        decoupled_weight_decay: bool = _d["decoupled_weight_decay"],
        *,
        foreach: Optional[bool] = None,
        maximize: bool = _d["maximize"],
        capturable: bool = False,
        differentiable: bool = False,
        implementation: str = "auto",
    ) -> None:
        d = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        keys = _torch_keys(d, foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, keys, implementation)


class NAdam(Optimizer):
    """torch's NAdam, with its momentum-decay schedule (``torch.optim.NAdam``)."""

    _algorithm = "nadam"
    _d = optimizer_defaults("nadam")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        momentum_decay: float = _d["momentum_decay"],
        decoupled_weight_decay: bool = _d["decoupled_weight_decay"],
        *,
        foreach: Optional[bool] = None,
        maximize: bool = _d["maximize"],
        capturable: bool = False,
        differentiable: bool = False,
        implementation: str = "auto",
    ) -> None:
        d = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        keys = _torch_keys(d, foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, keys, implementation)


class LAMB(Optimizer):
    """LAMB: Adam's direction plus decoupled decay, scaled per tensor by the trust ratio
    ||p|| / ||update|| (You et al. 2019). torch has no LAMB; the signature follows Adam's."""

    _algorithm = "lamb"
    _d = optimizer_defaults("lamb")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        *,
        maximize: bool = _d["maximize"],
        implementation: str = "auto",
    ) -> None:
        d = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, d, implementation)


class Adamax(Optimizer):
    """Adamax, Adam over the infinity norm (``torch.optim.Adamax``)."""

    _algorithm = "adamax"
    _d = optimizer_defaults("adamax")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = _d["lr"],
        betas: tuple = _d["betas"],
        eps: float = _d["eps"],
        weight_decay: float = _d["weight_decay"],
        foreach: Optional[bool] = None,
        *,
        maximize: bool = _d["maximize"],
        differentiable: bool = False,
        capturable: bool = False,
        implementation: str = "auto",
    ) -> None:
        d = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        keys = _torch_keys(d, foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, keys, implementation)


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
    cls: Any = next(c for c in Optimizer.__subclasses__() if c._algorithm == key)
    return cls(params, lr, **options)
