"""``ferrotorch.nn.Module``: the base of every ferrotorch layer, a real
``torch.nn.Module`` whose forward runs in Rust.

A layer holds its Rust module as ``_core`` (composition). Its parameters and
buffers are registered ``nn.Parameter``s / buffers that are the very tensors
the Rust module computes with (one copy: same storage, same autograd leaf),
under floDl's raw names (``weight``, ``bias``, ``running_mean``; a dotted raw
name such as MultiheadAttention's ``out_proj.weight`` lives in a child module
``out_proj``). So layers work inside ``nn.Sequential``, ``ModuleList`` and
``ModuleDict``, with hooks, ``.to()``, ``state_dict``, ``functional_call``,
``torch.utils.checkpoint``, ``copy.deepcopy`` and pickle.

As a graph node a layer runs as its Rust module, unless Python must run: a
subclass with its own ``forward``, or a layer with forward hooks, is a Python
node (one GIL round trip per call, as any ``torch.nn.Module`` node). A
subclass of ``Module`` itself, without a Rust layer, is a plain torch module.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import torch

from .. import _core


class Tensors(list):  # type: ignore[type-arg]
    """What ``parameters()`` and friends return: a list (floDl's ``Vec``:
    ``len``, indexing) that is also an iterator, as torch's generators are,
    so ``next(model.parameters())`` works."""

    def __next__(self) -> Any:
        pos = self.__dict__.get("_pos", 0)
        if pos >= len(self):
            raise StopIteration
        self.__dict__["_pos"] = pos + 1
        return self[pos]


def as_parameter(t: torch.Tensor) -> torch.Tensor:
    # In place, so the core keeps the same tensor (torch keeps the Python
    # object, and its class, while the core holds the tensor).
    if type(t) is torch.Tensor:
        t.__class__ = torch.nn.Parameter
    return t


class _Registry(OrderedDict):  # type: ignore[type-arg]
    """A layer's or graph's ``_parameters`` / ``_buffers``: remembers the Rust
    side's tensor of each name. A new ``nn.Parameter`` put in a parameter's
    place (setattr, ``register_parameter``, ``load_state_dict(assign=True)``,
    accelerate) is a permanent replacement: the Rust module, its graphs and
    every optimizer holding the old tensor adopt it (``_core.rebind``). Any
    other tensor is a substitute the forward uses (``functional_call``)."""

    def __init__(self, items: Iterable[Tuple[str, torch.Tensor]] = ()) -> None:
        items = list(items)
        self.core: Dict[str, torch.Tensor] = dict(items)
        super().__init__(items)

    def adopt(self, name: str, value: torch.Tensor) -> None:
        """``value`` replaces the Rust side's tensor ``name`` everywhere."""
        _core.rebind(self.core[name], value)
        self.core[name] = value

    def __setitem__(self, name: str, value: Any) -> None:
        core = self.__dict__.get("core", {}).get(name)
        if core is not None and value is not core and isinstance(value, torch.nn.Parameter):
            self.adopt(name, value)
        super().__setitem__(name, value)


class _Slot:
    """Where one core tensor is registered: the holder module, its path, the
    leaf name and whether it is a parameter."""

    __slots__ = ("holder", "path", "name", "param")

    def __init__(self, holder: torch.nn.Module, path: Tuple[str, ...], name: str, param: bool) -> None:
        self.holder, self.path, self.name, self.param = holder, path, name, param

    def table(self) -> Any:
        return self.holder._parameters if self.param else self.holder._buffers

    @property
    def core(self) -> torch.Tensor:
        return self.table().core[self.name]

    def current(self) -> Optional[torch.Tensor]:
        t = self.table().get(self.name)
        if t is None and self.name not in self.table():
            # torch.nn.utils.parametrize moved it: the holder computes it.
            t = getattr(self.holder, self.name, None)
        return t


def _registries(m: torch.nn.Module) -> None:
    if not isinstance(m._parameters, _Registry):
        reg = _Registry()
        reg.update(m._parameters)
        m.__dict__["_parameters"] = reg
    if not isinstance(m._buffers, _Registry):
        reg = _Registry()
        reg.update(m._buffers)
        m.__dict__["_buffers"] = reg


class Module(torch.nn.Module):
    """Base of every ferrotorch layer (see the module docstring).

    ``parameters()`` / ``named_parameters()`` / ``buffers()`` /
    ``named_buffers()`` take torch's arguments and return :class:`Tensors`
    (a list, floDl's ``Vec``, that is also an iterator, as torch's are). floDl's per-layer methods
    (``forward_seq``, ``forward_step``, ``forward_ext``, ``forward_bag``,
    ``end_step``, ``name``) are the Rust module's."""

    #: The Rust layer class a subclass wraps (None: a plain torch module).
    _core_cls: Any = None
    _core: Any
    _ft_slots: List[_Slot]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        core = cls.__dict__.get("_core_cls")
        if core is not None:  # a layer: the Rust class's signature and doc
            cls.__signature__ = inspect.signature(core)  # type: ignore[attr-defined]
            cls.__doc__ = cls.__doc__ or core.__doc__
            cls.__module__ = "ferrotorch" if cls.__module__ == "ferrotorch.builtins" else "ferrotorch.nn"
        elif "__init__" in cls.__dict__:  # a user subclass: its own signature
            cls.__signature__ = None  # type: ignore[attr-defined]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        torch.nn.Module.__init__(self)
        core_cls = _core_class(type(self))
        if core_cls is None:
            if args or kwargs:
                raise _core.InputTypeError(
                    f"{type(self).__name__}(): ferrotorch.nn.Module takes no arguments "
                    "(subclass a layer such as ferrotorch.nn.Linear to get one)"
                )
            return
        self._ft_attach(core_cls(*args, **kwargs), (args, kwargs))

    def _ft_attach(self, core: Any, spec: Tuple[tuple, dict]) -> None:
        d = self.__dict__
        d["_core"] = core
        d["_ft_spec"] = spec
        slots: List[_Slot] = []
        _registries(self)
        for param, items in ((True, core.named_parameters()), (False, core.named_buffers())):
            for name, t in _unique(items):
                holder: torch.nn.Module = self
                *path, leaf = name.split(".")
                for part in path:
                    child = holder._modules.get(part)
                    if child is None:
                        child = torch.nn.Module()
                        _registries(child)
                        holder._modules[part] = child
                    holder = child
                table: Any = holder._parameters if param else holder._buffers
                table.core[leaf] = as_parameter(t) if param else t
                table[leaf] = t
                slots.append(_Slot(holder, tuple(path), leaf, param))
        if type(self)._bias_slot and "bias" not in self._parameters:
            self._parameters["bias"] = None  # torch's layers built with bias=False
        d["_ft_slots"] = slots

    #: Layers whose torch counterpart has ``bias = None`` when built without one.
    _bias_slot = False
    #: The Rust method a direct call runs when it is not the node's forward
    #: (GRU and LSTM return torch's ``(output, h_n)``; as nodes, the output).
    _ft_call: Optional[str] = None

    # --- the Rust side -------------------------------------------------------

    def _ft_substitutes(self) -> Tuple[list, list]:
        """(core tensors, their replacements) for entries that no longer hold
        the core's tensor (``functional_call``, ``load_state_dict(assign=True)``,
        a new ``nn.Parameter`` set by hand)."""
        originals, subs = [], []
        for s in self.__dict__.get("_ft_slots", ()):
            cur = s.current()
            if cur is not s.core:
                if cur is None:
                    raise _core.ConfigError(
                        f"{type(self).__name__}: '{s.name}' was removed; the Rust layer needs it"
                    )
                originals.append(s.core)
                subs.append(cur)
        return originals, subs

    def _ft_node(self) -> Any:
        """The Rust module to run as a graph node, or None when Python must
        run (an overridden forward, hooks, replaced tensors)."""
        core = self.__dict__.get("_core")
        if core is None or type(self).forward is not Module.forward:
            return None
        if self._forward_hooks or self._forward_pre_hooks or _global_hooks():
            return None
        if self._ft_substitutes()[0]:
            return None
        return core

    @torch.compiler.disable  # one opaque call under torch.compile (the Rust layer)
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the Rust layer (tensors with the layer's own signature)."""
        core = self.__dict__.get("_core")
        if core is None:
            raise NotImplementedError(f"{type(self).__name__} has no forward (subclass ferrotorch.nn.Module)")
        call = core if self._ft_call is None else getattr(core, self._ft_call)
        originals, subs = self._ft_substitutes()
        if not originals:
            return call(*args, **kwargs)
        return _core.call_with_substitutes(originals, subs, call, *args, **kwargs)

    @property  # type: ignore[override]
    def training(self) -> bool:
        """Training mode; for a layer that has one (dropout, batch norm) the
        Rust layer's, so a graph's ``train()`` / ``eval()`` shows here too."""
        core = self.__dict__.get("_core")
        mode = None if core is None else core.training
        return bool(self.__dict__.get("_ft_training", True) if mode is None else mode)

    @training.setter
    def training(self, mode: bool) -> None:
        self.__dict__["_ft_training"] = bool(mode)
        core = self.__dict__.get("_core")
        if core is not None:
            core.train(bool(mode))

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        # torch replaces buffer objects in _apply; the core's buffers change in
        # place instead (set_data keeps the tensor the Rust layer holds).
        with torch.no_grad():
            for s in self.__dict__.get("_ft_slots", ()):
                if not s.param and s.current() is s.core:
                    new = fn(s.core)
                    if new is not s.core:
                        s.core.data = new
        return super()._apply(fn, recurse)

    def __getattr__(self, name: str) -> Any:
        try:
            return torch.nn.Module.__getattr__(self, name)
        except AttributeError:
            core = self.__dict__.get("_core")
            # The Rust layer's methods (forward_seq, end_step, name...), never
            # its tensors: those live in the registries (parametrize relies on it).
            tensors = {s.name for s in self.__dict__.get("_ft_slots", ())}
            if core is not None and name in ("weight", "bias") and name not in tensors:
                return None  # as torch's layers built without one (affine=False, bias=False)
            if core is None or name.startswith("_") or name in tensors or not hasattr(type(core), name):
                raise
        return getattr(core, name)

    # --- torch's API, with floDl's lists --------------------------------------

    def parameters(self, recurse: bool = True) -> List[torch.nn.Parameter]:  # type: ignore[override]
        return Tensors(super().parameters(recurse))

    def named_parameters(  # type: ignore[override]
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> List[Tuple[str, torch.nn.Parameter]]:
        return Tensors(super().named_parameters(prefix, recurse, remove_duplicate))

    def buffers(self, recurse: bool = True) -> List[torch.Tensor]:  # type: ignore[override]
        return Tensors(super().buffers(recurse))

    def named_buffers(  # type: ignore[override]
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> List[Tuple[str, torch.Tensor]]:
        return Tensors(super().named_buffers(prefix, recurse, remove_duplicate))

    def __repr__(self) -> str:
        core = self.__dict__.get("_core")
        own = [k for k, m in self._modules.items() if type(m) is not torch.nn.Module]
        if core is None or own:
            return super().__repr__()
        return repr(core)

    # --- copies: rebuild the Rust layer from its constructor arguments ---------

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_core", None)
        state.pop("_ft_slots", None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        spec = state.get("_ft_spec")
        params = state.pop("_parameters", OrderedDict())
        buffers = state.pop("_buffers", OrderedDict())
        modules = state.pop("_modules", OrderedDict())
        torch.nn.Module.__setstate__(self, state)
        d = self.__dict__
        d["_parameters"], d["_buffers"], d["_modules"] = OrderedDict(), OrderedDict(), OrderedDict()
        core_cls = _core_class(type(self))
        if core_cls is not None and spec is not None:
            with torch.random.fork_rng(devices=[]):  # a copy draws no random numbers
                self._ft_attach(core_cls(*spec[0], **spec[1]), spec)
            training = d.get("_ft_training", True)
            self.__dict__["_core"].train(bool(training))
        slots = d.get("_ft_slots", ())
        for s in slots:
            value = _copied(params, buffers, modules, s)
            if value is not None:
                with torch.no_grad():
                    s.core.data = value.detach()
                s.core.requires_grad_(value.requires_grad)
        # What a subclass registered beside the layer's own tensors.
        own = {s.name for s in slots if not s.path}
        holders = {s.path[0] for s in slots if s.path}
        for k, v in params.items():
            if k not in own and not (k == "bias" and v is None):
                self._parameters[k] = v
        for k, v in buffers.items():
            if k not in own:
                self._buffers[k] = v
        for k, m in modules.items():
            if k not in holders:
                self._modules[k] = m


def _copied(params: dict, buffers: dict, modules: dict, s: _Slot) -> Optional[torch.Tensor]:
    """The value the copied state holds for slot ``s``."""
    if s.path:
        holder: Any = modules.get(s.path[0])
        for part in s.path[1:]:
            holder = None if holder is None else holder._modules.get(part)
        if holder is None:
            return None
        params, buffers = holder._parameters, holder._buffers
    return (params if s.param else buffers).get(s.name)


def _unique(items: List[Tuple[str, torch.Tensor]]) -> List[Tuple[str, torch.Tensor]]:
    """floDl's rule for a module's repeated raw names (GRU's per-layer
    ``w_ih``): every occurrence of a repeated name becomes ``name_0``, ``name_1``, ..."""
    counts: Dict[str, int] = {}
    for n, _ in items:
        counts[n] = counts.get(n, 0) + 1
    seen: Dict[str, int] = {}
    out = []
    for n, t in items:
        if counts[n] > 1:
            i = seen.get(n, 0)
            seen[n] = i + 1
            n = f"{n}_{i}"
        out.append((n, t))
    return out


def _core_class(cls: type) -> Any:
    for k in cls.__mro__:
        core = k.__dict__.get("_core_cls")
        if core is not None:
            return core
    return None


def _global_hooks() -> bool:
    from torch.nn.modules import module as m

    return bool(m._global_forward_hooks or m._global_forward_pre_hooks)


def iter_layers() -> Iterator[type]:
    """Every layer class defined over a Rust module (for tests and stubs)."""
    stack = list(Module.__subclasses__())
    while stack:
        c = stack.pop()
        stack.extend(c.__subclasses__())
        if "_core_cls" in c.__dict__:
            yield c
