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

from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple

import torch
from torch.nn.modules.module import _IncompatibleKeys

from . import _core
from .nn.module import Tensors, _Registry, as_parameter


class _Slots(_Registry):
    """A graph's ``_parameters`` or ``_buffers``: a :class:`_Registry` (a new
    ``nn.Parameter`` is adopted at once) that also remembers which names hold
    another tensor now, so a forward without substitutes costs one truth test."""

    def __init__(self, items: Iterable[Tuple[str, torch.Tensor]]) -> None:
        self.changed: set = set()
        super().__init__(items)

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, value)  # adopts a new Parameter
        if value is self.core.get(name):
            self.changed.discard(name)
        else:
            self.changed.add(name)  # a substitute for forward (functional_call), or a new buffer

    def adopt_changed(self) -> None:
        """Makes every replacement permanent (see :meth:`Graph._ft_sync`)."""
        for name in list(self.changed):
            if name not in self:
                continue  # parametrized: computed at each forward
            value = self.get(name)
            if value is not None and name in self.core and isinstance(value, torch.Tensor):
                self.adopt(name, value)
            self.changed.discard(name)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        if name in self.core:  # torch.nn.utils.parametrize moves it to a property
            self.changed.add(name)

    def substitutes(self, owner: Any) -> Tuple[list, list]:
        originals, subs = [], []
        for n in self.changed:
            if n not in self.core:
                continue
            cur = self.get(n) if n in self else getattr(owner, n, None)
            if cur is None:
                raise _core.ConfigError(
                    f"graph: '{n}' was removed from its registry; the Rust graph needs a tensor there"
                )
            originals.append(self.core[n])
            subs.append(cur)
        return originals, subs


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

    def _ft_sync(self) -> None:
        """Before the Rust side uses the graph outside a forward (Trainer,
        checkpoint files): tensors that replaced the graph's own in its
        registry (a buffer set by accelerate, say) become the graph's own."""
        self._parameters.adopt_changed()  # type: ignore[attr-defined]
        self._buffers.adopt_changed()  # type: ignore[attr-defined]

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
        p, b = self._parameters, self._buffers
        if not (p.changed or b.changed):  # type: ignore[attr-defined]
            return _core.Graph.forward(self, *inputs)
        po, ps = p.substitutes(self)  # type: ignore[attr-defined]
        bo, bs = b.substitutes(self)  # type: ignore[attr-defined]
        return _core.Graph._forward_with(self, po + bo, ps + bs, *inputs)

    def train(self, mode: bool = True) -> "Graph":
        """Training mode (True) or evaluation mode, in the Rust graph too."""
        if not isinstance(mode, bool):
            raise _core.InputTypeError(f"Graph.train: mode must be a bool, got {mode!r}")
        _core.Graph.train(self, mode)
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
        return Tensors(torch.nn.Module.named_buffers(self, prefix, True, remove_duplicate))

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
