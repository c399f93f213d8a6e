"""floDl's built-in graph nodes, each a :class:`~ferrotorch.nn.Module` (a
``torch.nn.Module``) over its Rust module, with the Rust class's signature
and docstring: ``StateAdd``, ``Reshape``, the routers, selectors and halts."""

from . import _core
from .nn.module import Module


class StateAdd(Module):
    _core_cls = _core.StateAdd


class Reshape(Module):
    _core_cls = _core.Reshape


class SoftmaxRouter(Module):
    _core_cls = _core.SoftmaxRouter


class SigmoidRouter(Module):
    _core_cls = _core.SigmoidRouter


class FixedSelector(Module):
    _core_cls = _core.FixedSelector


class ArgmaxSelector(Module):
    _core_cls = _core.ArgmaxSelector


class ThresholdHalt(Module):
    _core_cls = _core.ThresholdHalt


class LearnedHalt(Module):
    _core_cls = _core.LearnedHalt
