"""``ferrotorch.Graph``: the core graph as a real ``torch.nn.Module``.

Every graph ``FlowBuilder.build()`` and ``Graph.subgraph()`` return is this
class: a subclass of both the core graph (``ferrotorch._core.Graph``, which
the Trainer, checkpoints, styles and monitors take) and ``torch.nn.Module``.
Its ``_parameters`` / ``_buffers`` hold the very tensors the Rust graph
computes with and trains (same storage, same autograd leaf, parameters
turned into ``nn.Parameter`` in place), under floDl's names
(``linear_1/weight``). So, held by a torch module, a graph's parameters and
buffers appear in the holder's ``parameters()`` / ``state_dict()``, and
``.to()``, ``.train()``, ``.eval()``, ``load_state_dict`` reach the Rust graph.

``torch.func.functional_call`` replaces entries of ``_parameters`` /
``_buffers`` for the call; :meth:`Graph.forward` sees which entries no longer
hold the core's tensors and runs the Rust graph with those substitutes in
force (on the calling thread only).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Mapping, Tuple

import torch
from torch.nn.modules.module import _IncompatibleKeys

from . import _core
from .nn.module import Module, Tensors, _Registry, as_parameter


class _Slots(_Registry):
    """A graph's ``_parameters`` or ``_buffers`` (a :class:`_Registry`), with
    the substitutes its forward passes to the Rust graph."""

    def substitutes(self, owner: Any) -> Tuple[list, list]:
        originals, subs = [], []
        for n in self.changed:
            cur = self.get(n) if n in self else getattr(owner, n, None)
            if cur is None:
                raise _core.ConfigError(
                    f"graph: '{n}' was removed from its registry; the Rust graph needs a tensor there"
                )
            originals.append(self.core[n])
            subs.append(cur)
        return originals, subs


class _Parts(torch.nn.Module):
    """The modules of a composite node (a loop's body, a gate's router and
    experts, ...), numbered in the node's order, as a ``ModuleList`` is."""


def _recorded(recipe: Any) -> Dict[int, torch.nn.Module]:
    """The modules a FlowBuilder recipe was given, by their core's key."""
    found: Dict[int, torch.nn.Module] = {}

    def visit(a: Any) -> None:
        if isinstance(a, (list, tuple)):
            for x in a:
                visit(x)
        elif isinstance(a, dict):
            visit(list(a.values()))
        elif isinstance(a, torch.nn.Module):
            core = a if isinstance(a, _core.Graph) else a.__dict__.get("_core")
            key = None if core is None else _core._module_key(core)
            if key is not None:
                found.setdefault(key, a)

    for _, args, kwargs in recipe or ():
        visit(args)
        visit(kwargs)
    return found


def _child(desc: Any, known: Dict[int, torch.nn.Module]) -> Any:
    """The torch module for one node's module description (see
    ``_core._node_modules``), or None when Python has no object for it."""
    key, obj, parts = desc
    if obj is not None:
        return obj if isinstance(obj, torch.nn.Module) else None  # a plain function node
    if key in known:
        return known[key]
    box = _Parts()
    for i, p in enumerate(parts):
        c = _child(p, known)
        if c is not None:
            box.add_module(str(i), c)
    return box if box._modules else None


class Graph(_core.Graph, torch.nn.Module):  # type: ignore[misc]
    """A built graph: a ``torch.nn.Module`` whose forward runs in Rust.

    Made by ``FlowBuilder.build()`` (never directly). ``graph(x, *aux)``
    goes through ``torch.nn.Module.__call__`` (hooks apply) to
    :meth:`forward`. The core's methods keep their floDl behaviour:
    ``parameters()`` and ``named_parameters()`` return lists with floDl
    names, ``load_state_dict`` is strict by name and returns
    ``(missing, unexpected)``, ``repr`` is the module tree keyed by node ids.
    """

    __call__: Callable[..., Any] = torch.nn.Module.__call__

    def __init__(self, core: _core.Graph) -> None:
        torch.nn.Module.__init__(self)  # its `training = True` is ignored (see the setter)
        params = [(n, as_parameter(t)) for n, t in _core.Graph.named_parameters(self)]
        buffers = _core.Graph.named_buffers(self)
        object.__setattr__(self, "_parameters", _Slots(params))
        object.__setattr__(self, "_buffers", _Slots(buffers))
        object.__setattr__(self, "_ft_ready", True)

    def _ft_sync(self, computing: bool = False) -> None:
        """Before the Rust side uses the graph outside a forward (Trainer,
        checkpoint files): tensors that replaced the graph's own in its
        registry, or in a child module's (a buffer set by accelerate, say),
        become the graph's own. ``computing`` (the Trainer): an entry the
        Rust engine cannot compute (a parametrized weight) raises at once."""
        if not _Registry.changed_anywhere:
            # No registry holds a replacement: nothing to adopt or refuse. The
            # Trainer calls this for every graph each step; the walk below cost
            # a step ~0.2 ms with 9-13 nested graphs (benches/results/profiles.md).
            return
        for path, m in self.named_modules():
            for reg in (m._parameters, m._buffers):
                if not (isinstance(reg, _Registry) and reg.changed):
                    continue
                reg.adopt_changed()
                if computing and reg.changed:
                    name = f"{path}.{min(reg.changed)}" if path else min(reg.changed)
                    raise _core.ConfigError(
                        f"Trainer: graph entry '{name}' is computed by Python "
                        "(torch.nn.utils.parametrize, or removed); the Rust engine cannot run it: "
                        "call the graph itself (graph(x)) in a torch loop, or remove the parametrization"
                    )

    # --- the module tree: each node's module under its parameters' prefix -----

    def _ft_tree(self) -> Dict[str, torch.nn.Module]:
        """{floDl name: module} of the nodes that run a module the graph was
        built from (a composite node: its parts, numbered). Computed once: a
        built graph's structure does not change."""
        tree = self.__dict__.get("_ft_children")
        if tree is None:
            known = _recorded(self.__dict__.get("_ft_recipe"))
            tree = {}
            for name, desc in _core._node_modules(self):
                child = _child(desc, known)
                if child is not None:
                    tree[name] = child
            self.__dict__["_ft_children"] = tree
        return tree

    def named_children(self) -> Iterator[Tuple[str, torch.nn.Module]]:
        """(floDl name, module) of each node's module: the first tag of the
        node, else its id, as in ``named_parameters`` (``linear_1``, ``encoder``).
        Composite nodes (loops, gates, switches, maps) hold their parts as
        children ``0``, ``1``, ... The graph's state stays its own, by floDl
        name: ``state_dict`` does not repeat it under the children's names."""
        seen = set()
        for name, m in self._ft_tree().items():
            if m not in seen:
                seen.add(m)
                yield name, m

    def named_modules(  # type: ignore[override]
        self, memo: Any = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[Tuple[str, torch.nn.Module]]:
        """torch's walk over the module tree (see :meth:`named_children`)."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, m in self._ft_tree().items():
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def __getattr__(self, name: str) -> Any:
        try:
            return torch.nn.Module.__getattr__(self, name)
        except AttributeError:
            if name.startswith("_") or "_ft_ready" not in self.__dict__ or name not in self._ft_tree():
                raise
        return self._ft_tree()[name]

    def _ft_substitutes(self) -> Tuple[list, list]:
        """(core tensors, replacements) over the graph and its module tree:
        entries that hold another tensor than the Rust side's for this call
        (``functional_call`` by either name, a parametrized weight)."""
        pairs: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}
        for m in self.modules():
            if isinstance(m, Graph):
                regs: List[Any] = [m._parameters, m._buffers]
                found = [reg.substitutes(m) for reg in regs]
            elif isinstance(m, Module):
                found = [m._ft_substitutes()]
            else:
                continue
            for originals, subs in found:
                for o, r in zip(originals, subs):
                    pairs.setdefault(id(o), (o, r))  # a tensor shared by two nodes: once
        return [o for o, _ in pairs.values()], [r for _, r in pairs.values()]

    def save_checkpoint(self, path: Any) -> None:
        """floDl's ``.fdl`` file of the graph's parameters and buffers (atomic write)."""
        self._ft_sync()
        _core.Graph.save_checkpoint(self, path)

    def load_checkpoint(self, path: Any, strict_hash: bool = True) -> Any:
        """Loads a floDl ``.fdl`` file into the graph's tensors (validated first)."""
        self._ft_sync()
        return _core.Graph.load_checkpoint(self, path, strict_hash)

    @property  # type: ignore[override]
    def training(self) -> bool:
        """Training mode of the Rust graph (dropout on, batch statistics)."""
        return bool(_core.Graph.training.__get__(self))  # type: ignore[attr-defined]

    @training.setter
    def training(self, mode: bool) -> None:
        # The core graph keeps its mode while nn.Module.__init__ runs.
        if self.__dict__.get("_ft_ready"):
            _core.Graph.train(self, bool(mode))

    # Under torch.compile the Rust forward is one intended graph break: Dynamo
    # runs it as an opaque call and compiles the torch code around it.
    @torch.compiler.disable
    def forward(self, *inputs: Any) -> torch.Tensor:  # type: ignore[override]
        """Runs the graph (one tensor per declared input). Entries of
        ``_parameters`` / ``_buffers`` replaced by ``functional_call`` are
        used in place of the core's tensors for this call."""
        if not _Registry.changed_anywhere:
            return _core.Graph.forward(self, *inputs)
        originals, subs = self._ft_substitutes()
        if not originals:
            return _core.Graph.forward(self, *inputs)
        return _core.Graph._forward_with(self, originals, subs, *inputs)

    def train(self, mode: bool = True) -> "Graph":
        """Training mode (True) or evaluation mode, in the Rust graph too."""
        if not isinstance(mode, bool):
            raise _core.InputTypeError(f"Graph.train: mode must be a bool, got {mode!r}")
        _core.Graph.train(self, mode)
        for m in self.children():  # torch's walk: the tree's modules show the mode too
            m.train(mode)
        return self

    def eval(self) -> "Graph":
        """Evaluation mode (``train(False)``)."""
        return self.train(False)

    def parameters(self, recurse: bool = True) -> List[torch.Tensor]:  # type: ignore[override]
        """Every parameter in floDl's order (torch's signature; a list).
        ``recurse=False``: none, as for a torch container (the nodes own them)."""
        return Tensors(_core.Graph.parameters(self) if recurse else [])

    def named_parameters(  # type: ignore[override]
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> List[Tuple[str, torch.Tensor]]:
        """[(floDl name, parameter)] with torch's keywords (``prefix`` joins
        with '.'; ``recurse=False``: none, as for a torch container)."""
        return Tensors(_core.Graph.named_parameters(self, prefix, recurse, remove_duplicate))

    def buffers(self, recurse: bool = True) -> List[torch.Tensor]:  # type: ignore[override]
        """Every buffer (running statistics); ``recurse=False``: none."""
        return Tensors(_core.Graph.buffers(self) if recurse else [])

    def load_state_dict(  # type: ignore[override]
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Copies values by floDl name into the graph's own tensors and
        returns torch's ``_IncompatibleKeys(missing_keys, unexpected_keys)``.
        ``strict``: a missing or unexpected name is a ``TagError`` and nothing
        changes; a shape mismatch is a ``ShapeError``. ``assign=True`` is
        accepted and still copies (new tensors would leave the Rust graph
        computing with the old ones)."""
        if not isinstance(state_dict, Mapping):
            raise _core.InputTypeError(
                f"Graph.load_state_dict: expected a mapping of names to tensors, got {type(state_dict).__name__}"
            )
        del assign
        missing, unexpected = _core.Graph.load_state_dict(self, dict(state_dict), strict)
        return _IncompatibleKeys(list(missing), list(unexpected))

    def named_buffers(  # type: ignore[override]
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> List[Tuple[str, torch.Tensor]]:
        """[(name, buffer)] with floDl names and torch's keywords (as
        :meth:`named_parameters`: ``recurse=False`` lists none)."""
        if not recurse:
            return Tensors()
        own = self._named_members(lambda m: m._buffers.items(), prefix, False, remove_duplicate)
        return Tensors(own)

    def state_dict(  # type: ignore[override]
        self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> Dict[str, Any]:
        """torch's ``state_dict``: parameters then buffers by floDl name
        (detached tensors sharing storage, unless ``keep_vars``)."""
        return torch.nn.Module.state_dict(
            self, *args, destination=destination, prefix=prefix, keep_vars=keep_vars
        )

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, *args: Any) -> None:
        # Values are always copied into the core's tensors: assigning new
        # tensors (load_state_dict(assign=True)) would leave the Rust graph
        # computing with the old ones.
        local_metadata = dict(local_metadata, assign_to_params_buffers=False)
        torch.nn.Module._load_from_state_dict(self, state_dict, prefix, local_metadata, *args)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # A graph built by FlowBuilder keeps its recipe: a copy (deepcopy,
        # pickle) replays it over copies of its modules and loads its state.
        recipe = self.__dict__.get("_ft_recipe")
        if recipe is None:
            raise _core.InputTypeError(
                "this ferrotorch Graph cannot be pickled or deep-copied (it was not built by "
                "ferrotorch.FlowBuilder, e.g. a subgraph): rebuild it and load its weights "
                "(state_dict(), save_checkpoint or safetensors)"
            )
        state = {k: v.detach() for k, v in self.state_dict().items()}
        return (_rebuild, (recipe, state, self.training))

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "Graph":
        # torch's .to()/.half()/.cuda() (directly or from a holding module):
        # converted values go into the core's own tensors (set_data), so the
        # Rust graph, the registered Parameters and optimizers keep one tensor.
        tensors = list(self._parameters.core.values()) + list(self._buffers.core.values())  # type: ignore[attr-defined]
        devices = [t.device for t in tensors]
        with torch.no_grad():
            for t in tensors:
                new = fn(t)
                if new is not t:
                    t.data = new
                g = t.grad
                if g is not None:
                    new_g = fn(g)
                    if new_g is not g:
                        g.data = new_g
        if any(t.device != d for t, d in zip(tensors, devices)):
            _core.Graph.reset_state(self)  # carried state lives on the old device
        return self


def _rebuild(recipe: Any, state: Dict[str, torch.Tensor], training: bool) -> Graph:
    """A graph from its recipe (``copy``/``pickle``), with ``state`` loaded."""
    from .builder import replay

    g = replay(recipe)
    with torch.no_grad():
        g.load_state_dict(state)
    return g.train(training)


_core._set_graph_type(Graph)
