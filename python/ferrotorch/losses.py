"""Losses: functions returning torch tensors (autograd-connected) and class forms.

Every loss checks its inputs (shapes and dtypes must match: :class:`ShapeError`
and :class:`DTypeError` name both) and then runs libtorch's own kernel, so values
and gradients equal ``torch.nn.functional``. Under ``torch.autocast`` (CPU or
CUDA) mixed float dtypes are accepted and cast by torch's autocast policy, so
each loss returns the dtype and value ``torch.nn.functional`` returns there.
Cross entropy and nll also take one unbatched sample (``logits[C]``, a 0-dim
class index or ``[C]`` probabilities), as torch does. ``reduction`` is ``"mean"``,
``"sum"`` or ``"none"`` (``kl_div_loss`` also ``"batchmean"``, its default); bad
options raise :class:`ConfigError` naming the argument.

Each class (``MSELoss()``, ``CrossEntropyLoss(label_smoothing=0.1)``, ...) holds
the loss and its options in Rust: call it (``loss(pred, target)``) or use
``loss.compute(pred, target)``; given to ``Trainer(loss=...)`` it keeps the whole
step in Rust. ``Trainer(loss="name")`` accepts the names in :data:`LOSS_NAMES`
(every loss taking ``(pred, target)``; also ``"<name>_loss"``).
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple

import torch

from . import _core
from ._core import (
    bce_loss,
    bce_with_logits_loss,
    cosine_embedding_loss,
    cross_entropy_loss,
    cross_entropy_sparse,
    ctc_loss,
    focal_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div_loss,
    l1_loss,
    loss_names,
    margin_ranking_loss,
    mse_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    triplet_margin_loss,
)

#: The core's loss table: class name -> (function, inputs, {option: default}).
_TABLE: Dict[str, Tuple[str, list, dict]] = {c: (f, i, d) for f, c, i, d in _core.loss_table()}


def _signature(class_name: str) -> inspect.Signature:
    """A class's signature from the core table (pyo3 writes a negative default
    such as ``ignore_index=-100`` as ``...``; the table has the value)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    defaults = _TABLE[class_name][2]
    return inspect.Signature([inspect.Parameter(k, kind, default=v) for k, v in defaults.items()])


class Loss(torch.nn.Module):
    """Base of the loss classes: a ``torch.nn.Module`` holding the Rust loss
    (its kind and options) as ``_core``, so it sits in a module, a
    ``ModuleDict`` or ``nn.Sequential`` like torch's losses. ``Loss(name)`` is
    a (pred, target) loss by name with default options.

    ``loss(pred, target)`` runs ``forward`` (torch's hooks included);
    ``loss.compute(...)`` is the Rust loss itself. Given to
    ``Trainer(loss=...)`` the whole step stays in Rust, unless Python must
    run: a subclass with its own ``forward``, or forward hooks."""

    #: The Rust loss class a subclass wraps.
    _core_cls: Any = _core.Loss
    _core: Any

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        core = cls.__dict__.get("_core_cls")
        if core is not None:  # one of ours: the table's signature, the Rust class's doc
            cls.__signature__ = _signature(core.__name__)  # type: ignore[attr-defined]
            cls.__doc__ = cls.__doc__ or core.__doc__
        elif "__init__" in cls.__dict__:  # a user subclass: its own signature
            cls.__signature__ = None  # type: ignore[attr-defined]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        core_cls = next(k.__dict__["_core_cls"] for k in type(self).__mro__ if "_core_cls" in k.__dict__)
        self.__dict__["_core"] = _core.call(type(self).__name__, core_cls, *args, **kwargs)
        self.__dict__["_ft_spec"] = (args, kwargs)

    def forward(self, *inputs: Any) -> torch.Tensor:
        """The loss of the given tensors (``inputs`` names them in order)."""
        return self._core.compute(*inputs)

    def compute(self, *inputs: Any) -> torch.Tensor:
        """The built-in loss of the given tensors (the Rust loss; no hooks)."""
        return self._core.compute(*inputs)

    def _ft_node(self) -> Any:
        """The Rust loss a Trainer runs, or None when Python must run (an
        overridden ``forward``, forward hooks)."""
        if type(self).forward is not Loss.forward:
            return None
        if self._forward_hooks or self._forward_pre_hooks or _global_hooks():
            return None
        return self._core

    @property
    def name(self) -> str:
        """The canonical name (``Trainer(loss=name)`` accepts it when the loss
        takes (pred, target))."""
        return self._core.name

    @property
    def reduction(self) -> str:
        return self._core.reduction

    @property
    def inputs(self) -> list:
        """The names of the tensors the loss takes, in order."""
        return self._core.inputs

    def __repr__(self) -> str:
        return repr(self._core)

    # copies and pickle: rebuild the Rust loss from the constructor arguments
    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_core", None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        spec: Tuple[tuple, dict] = state["_ft_spec"]
        torch.nn.Module.__setstate__(self, state)
        core_cls = next(k.__dict__["_core_cls"] for k in type(self).__mro__ if "_core_cls" in k.__dict__)
        self.__dict__["_core"] = core_cls(*spec[0], **spec[1])


Loss.__signature__ = inspect.signature(_core.Loss)  # type: ignore[attr-defined]


def _global_hooks() -> bool:
    from torch.nn.modules import module as m

    return bool(m._global_forward_hooks or m._global_forward_pre_hooks)


class BCELoss(Loss):
    _core_cls = _core.BCELoss


class BCEWithLogitsLoss(Loss):
    _core_cls = _core.BCEWithLogitsLoss


class CosineEmbeddingLoss(Loss):
    _core_cls = _core.CosineEmbeddingLoss


class CrossEntropyLoss(Loss):
    _core_cls = _core.CrossEntropyLoss


class CrossEntropySparseLoss(Loss):
    _core_cls = _core.CrossEntropySparseLoss


class CTCLoss(Loss):
    _core_cls = _core.CTCLoss


class FocalLoss(Loss):
    _core_cls = _core.FocalLoss


class HingeEmbeddingLoss(Loss):
    _core_cls = _core.HingeEmbeddingLoss


class HuberLoss(Loss):
    _core_cls = _core.HuberLoss


class KLDivLoss(Loss):
    _core_cls = _core.KLDivLoss


class L1Loss(Loss):
    _core_cls = _core.L1Loss


class MarginRankingLoss(Loss):
    _core_cls = _core.MarginRankingLoss


class MSELoss(Loss):
    _core_cls = _core.MSELoss


class NLLLoss(Loss):
    _core_cls = _core.NLLLoss


class PoissonNLLLoss(Loss):
    _core_cls = _core.PoissonNLLLoss


class SmoothL1Loss(Loss):
    _core_cls = _core.SmoothL1Loss


class TripletMarginLoss(Loss):
    _core_cls = _core.TripletMarginLoss


#: Names ``Trainer(loss=...)`` accepts.
LOSS_NAMES = tuple(loss_names())

mae = l1_loss
MAELoss = L1Loss


__all__ = [
    "LOSS_NAMES",
    "Loss",
    "mse_loss",
    "l1_loss",
    "mae",
    "smooth_l1_loss",
    "huber_loss",
    "poisson_nll_loss",
    "cross_entropy_loss",
    "cross_entropy_sparse",
    "nll_loss",
    "bce_loss",
    "bce_with_logits_loss",
    "focal_loss",
    "kl_div_loss",
    "ctc_loss",
    "triplet_margin_loss",
    "cosine_embedding_loss",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "MSELoss",
    "L1Loss",
    "MAELoss",
    "SmoothL1Loss",
    "HuberLoss",
    "PoissonNLLLoss",
    "CrossEntropyLoss",
    "CrossEntropySparseLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "FocalLoss",
    "KLDivLoss",
    "CTCLoss",
    "TripletMarginLoss",
    "CosineEmbeddingLoss",
    "HingeEmbeddingLoss",
    "MarginRankingLoss",
]
