"""Metrics: host-side summaries equal to scikit-learn's, and a running Tracker.

Every metric takes ``(pred, targets)`` (note: scikit-learn takes
``(y_true, y_pred)``), counts on the tensors' device with libtorch ops and
returns a Python float, except :func:`confusion_matrix`, which returns an
int64 tensor on the inputs' device.

Classification inputs: ``pred`` is either logits ``[N, C, ...]`` (classes on
dim 1; the argmax is taken) with integer ``targets`` ``[N, ...]``, or integer
labels of the targets' shape. Labels are class indices ``0..C-1``.

Classes for ``precision``, ``recall`` and ``f1`` follow scikit-learn's
``precision_recall_fscore_support(..., zero_division=0)``: with
``num_classes=None`` the classes that count are those present in the targets
or the predictions; ``num_classes=C`` counts ``range(C)`` (scikit-learn's
``labels=range(C)``). A class with no predicted (or no true) samples scores 0.

Errors: mismatched shapes raise :class:`~ferrotorch.ShapeError` naming both
shapes; non-integer labels raise :class:`~ferrotorch.DTypeError`; an unknown
``average``, ``k`` outside ``1..C`` or labels outside ``0..num_classes-1``
raise :class:`~ferrotorch.ConfigError`.
"""

import numbers
from typing import Any, Callable, Dict, Iterable, Mapping

import numpy as np
import torch

from . import _core
from .errors import ConfigError, InputTypeError, ShapeError

Tracker = _core.Tracker


def accuracy(pred, targets) -> float:
    """Fraction of correct predictions.

    ``pred`` is logits ``[N, C, ...]`` (argmax over dim 1) against integer
    ``targets`` ``[N, ...]``, or integer labels compared with ``targets``
    directly. One-hot or probability targets of the logits' shape
    ``[N, C >= 2, ...]`` are reduced by argmax over dim 1 too (torchmetrics'
    class accuracy; use :func:`binary_accuracy` for element-wise multilabel
    accuracy). Other floating predictions of the targets' shape (or
    ``[N, 1]``) are binary probabilities thresholded at 0.5, as in Kaun; their
    targets must be 0 or 1. Equals ``sklearn.metrics.accuracy_score(targets, labels)``.
    """
    return _core.accuracy(pred, targets)


def top_k_accuracy(logits, targets, k: int = 2) -> float:
    """Fraction of samples whose target is among the ``k`` highest logits.

    ``logits`` is ``[N, C, ...]``, ``targets`` integer ``[N, ...]``; ``k`` must
    be in ``1..C``. Equals ``sklearn.metrics.top_k_accuracy_score(targets,
    logits, k=k, labels=range(C))`` when scores are distinct.
    """
    return _core.top_k_accuracy(logits, targets, k)


def binary_accuracy(pred, targets, threshold: float = 0.5) -> float:
    """Fraction of samples where ``pred > threshold`` matches a 0/1 target.

    ``pred`` and ``targets`` have the same shape; ``targets`` (bool, integer
    or floating) must hold only 0 and 1.
    """
    return _core.binary_accuracy(pred, targets, threshold)


def precision(pred, targets, average: str = "macro", num_classes=None) -> float:
    """Precision, ``tp / (tp + fp)`` per class, then averaged.

    ``average`` is ``"macro"`` (unweighted mean over the classes that count),
    ``"micro"`` (global counts) or ``"weighted"`` (mean weighted by support).
    Equals ``precision_recall_fscore_support(targets, labels, average=average,
    zero_division=0)[0]`` (with ``labels=range(num_classes)`` when given).
    """
    return _core.precision(pred, targets, average, num_classes)


def recall(pred, targets, average: str = "macro", num_classes=None) -> float:
    """Recall, ``tp / (tp + fn)`` per class, then averaged as in :func:`precision`."""
    return _core.recall(pred, targets, average, num_classes)


def f1(pred, targets, average: str = "macro", num_classes=None) -> float:
    """F1, ``2 tp / (2 tp + fp + fn)`` per class, then averaged as in :func:`precision`."""
    return _core.f1(pred, targets, average, num_classes)


def confusion_matrix(pred, targets, num_classes=None) -> torch.Tensor:
    """``[C, C]`` int64 counts on the inputs' device: rows = true class,
    columns = predicted class, as scikit-learn.

    ``C`` is ``num_classes``, else the largest label + 1, so row ``i`` is
    always class ``i`` (scikit-learn with ``labels=range(C)``).
    """
    return _core.confusion_matrix(pred, targets, num_classes)


def mae(pred, targets) -> float:
    """Mean absolute error, as ``sklearn.metrics.mean_absolute_error(targets, pred)``."""
    return _core.mae(pred, targets)


def rmse(pred, targets) -> float:
    """Root mean squared error, as ``sklearn.metrics.root_mean_squared_error(targets, pred)``.

    Dim 0 holds samples; with several outputs per sample each output's RMSE is
    taken, then averaged (scikit-learn's ``multioutput="uniform_average"``).
    """
    return _core.rmse(pred, targets)


def r2(pred, targets) -> float:
    """Coefficient of determination, as ``sklearn.metrics.r2_score(targets, pred)``.

    Per output, then averaged. A constant target scores 1.0 when predicted
    exactly and 0.0 otherwise (``force_finite=True``); fewer than two samples
    give NaN, as in scikit-learn.
    """
    return _core.r2(pred, targets)


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        size = value.numel() if isinstance(value, torch.Tensor) else value.size
        if size != 1:
            raise ShapeError(f"{what}: expected a scalar, got shape {list(value.shape)}")
        return float(value.item())
    if isinstance(value, numbers.Real):
        return float(value)
    raise InputTypeError(f"{what}: expected a number or a one-element tensor, got {type(value).__name__}")


def eval(fn: Callable[[Any], Any], data: Iterable) -> float:
    """Mean of ``fn(batch)`` over the batches of ``data`` (Kaun's ``Metric.eval``).

    ``data`` is anything iterable: a :class:`~ferrotorch.data.DataLoader` (each
    batch a tuple of tensors), a list of batches, a generator. ``fn`` returns
    a number or a one-element tensor; each batch weighs the same. An empty
    ``data`` raises :class:`~ferrotorch.ConfigError`.
    """
    total, n = 0.0, 0
    for batch in data:
        total += _as_float(fn(batch), f"eval: fn(batch {n})")
        n += 1
    if n == 0:
        raise ConfigError("eval: data yielded no batches")
    return total / n


def eval_many(fn: Callable[[Any], Mapping[str, Any]], data: Iterable) -> Dict[str, float]:
    """Per-name means of ``fn(batch)``, a dict name -> scalar, over ``data``.

    Returns a dict sorted by name. Each batch weighs the same; a name missing
    from some batches is averaged over the batches that returned it. An empty
    ``data`` raises :class:`~ferrotorch.ConfigError`.
    """
    tracker = Tracker()
    n = 0
    for batch in data:
        out = fn(batch)
        if not isinstance(out, Mapping):
            raise InputTypeError(
                f"eval_many: fn(batch {n}) must return a dict name -> scalar, got {type(out).__name__}"
            )
        for name, value in out.items():
            tracker.observe(str(name), _as_float(value, f"eval_many: fn(batch {n})[{name!r}]"))
        n += 1
    if n == 0:
        raise ConfigError("eval_many: data yielded no batches")
    return tracker.to_dict()


__all__ = [
    "accuracy",
    "top_k_accuracy",
    "binary_accuracy",
    "precision",
    "recall",
    "f1",
    "confusion_matrix",
    "mae",
    "rmse",
    "r2",
    "Tracker",
    "eval",
    "eval_many",
]
