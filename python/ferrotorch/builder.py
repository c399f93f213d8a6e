"""``FlowBuilder``: floDl's fluent graph builder over the Rust one, keeping
the recipe of every call so a built graph can be copied and pickled.

The Rust builder does the work (``ferrotorch._core.FlowBuilder``); this class
forwards each call to it and records ``(method, args, kwargs)`` once the call
succeeds, sub-builders (``loop_body``, ``map``) included. ``build()`` hands
the recipe to the graph: ``copy.deepcopy(graph)`` and pickle replay it over
copies of its modules (``torch.optim.swa_utils.AveragedModel`` and timm's EMA
copy graphs this way), then load the graph's state.
"""

from __future__ import annotations

import copyreg
from typing import Any, List, Optional, Tuple

from . import _core

Recipe = List[Tuple[str, tuple, dict]]


class _Recorder:
    """Forwards calls to a Rust builder and records them in ``recipe``."""

    def __init__(self, native: Any, recipe: Recipe) -> None:
        self._native, self._recipe = native, recipe

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._native, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            out = _core.call(f"{type(self._native).__name__}.{name}", attr, *args, **kwargs)
            self._recipe.append((name, args, kwargs))
            if out is self._native:
                return self
            if isinstance(out, (_core.FlowBuilder, _core.LoopBuilder, _core.MapBuilder)):
                return (FlowBuilder if isinstance(out, _core.FlowBuilder) else _Recorder)._wrap(
                    out, self._recipe
                )
            if hasattr(out, "__dict__") and isinstance(out, _core.Graph):
                out.__dict__["_ft_recipe"] = list(self._recipe)
            return out

        call.__name__ = name
        call.__doc__ = getattr(attr, "__doc__", None)
        return call

    @classmethod
    def _wrap(cls, native: Any, recipe: Recipe) -> Any:
        obj = cls.__new__(cls)
        _Recorder.__init__(obj, native, recipe)
        return obj

    def __repr__(self) -> str:
        return repr(self._native)


class FlowBuilder(_Recorder):
    """floDl's graph builder: ``FlowBuilder.from_(m)`` (or ``FlowBuilder(m)``,
    ``FlowBuilder.new()``), then ``through``, ``also``, ``fork``, ``split`` /
    ``merge``, ``tag``, ``using``, ``loop_body(...).for_n(...)``, ``gate``,
    ``switch``, ``map(...)``, ``label``, ... and ``build()`` (see the README's
    construct list). Every method is the Rust builder's."""

    def __init__(self, module: Optional[Any] = None) -> None:
        native = _core.call("FlowBuilder", _core.FlowBuilder, *([] if module is None else [module]))
        super().__init__(native, [("__init__", (module,), {})])

    @staticmethod
    def from_(module: Any) -> FlowBuilder:
        """The entry node: its input is the graph's input 0."""
        return FlowBuilder(module)

    @staticmethod
    def new() -> FlowBuilder:
        """``from_(Identity)``."""
        return FlowBuilder._wrap(_core.FlowBuilder.new(), [("new", (), {})])


def replay(recipe: Recipe) -> Any:
    """Runs a recorded recipe on a fresh Rust builder; returns what its last
    call returned (the graph)."""
    (first, args, kwargs), *rest = recipe
    obj: Any = (
        _core.FlowBuilder.new() if first == "new" else _core.FlowBuilder(*[a for a in args if a is not None])
    )
    for name, a, k in rest:
        obj = getattr(obj, name)(*a, **k)
    if hasattr(obj, "__dict__"):
        obj.__dict__["_ft_recipe"] = list(recipe)
    return obj


def _merge_op(name: str) -> Any:
    return getattr(_core.MergeOp, name)


# Recipes hold MergeOp values: they pickle (and deep-copy) by name.
copyreg.pickle(_core.MergeOp, lambda op: (_merge_op, (repr(op).split(".")[-1],)))
