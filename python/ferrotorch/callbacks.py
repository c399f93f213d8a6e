"""Trainer callbacks: early stopping, model checkpoints, CSV logs, lambdas.

A callback may define any of ``on_train_begin(trainer)``,
``on_epoch_begin(epoch, trainer)``, ``on_epoch_end(epoch, logs, trainer)``
and ``on_train_end(logs, trainer)``; ``epoch`` counts from 1 and ``logs`` is
the epoch's dict (``loss``, ``val_loss``, metrics, ``lr``). Raising
:class:`ferrotorch.EarlyStop` in one ends ``fit`` cleanly.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Callable, Optional

from ._io import atomic_save, atomic_write
from .errors import ConfigError, EarlyStop

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "CSVLogger", "LambdaCallback", "atomic_save"]


def _model_state(model: Any) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Callback:
    """Base class with no-op hooks."""

    def on_train_begin(self, trainer: Any) -> None:
        pass

    def on_epoch_begin(self, epoch: int, trainer: Any) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict, trainer: Any) -> None:
        pass

    def on_train_end(self, logs: dict, trainer: Any) -> None:
        pass


class _Monitored(Callback):
    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        if mode not in ("auto", "min", "max"):
            raise ConfigError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "f1", "precision", "recall", "r2")) else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def _value(self, logs: dict) -> float:
        v = logs.get(self.monitor)
        if v is None:
            raise ConfigError(
                f"{type(self).__name__}: monitored value '{self.monitor}' is not in the logs {sorted(logs)}"
            )
        return float(v)

    def _improved(self, v: float) -> bool:
        if self.mode == "min":
            return v < self.best - self.min_delta
        return v > self.best + self.min_delta


class EarlyStopping(_Monitored):
    """Stops when ``monitor`` has not improved by ``min_delta`` for ``patience``
    epochs. With ``restore_best_weights`` the model gets its best weights back
    when training stops early AND when it ends normally."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if patience < 0:
            raise ConfigError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.patience, self.restore_best_weights = patience, restore_best_weights
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self._best_state: Optional[dict] = None

    def on_train_begin(self, trainer: Any) -> None:
        self.wait, self.stopped_epoch = 0, 0

    def on_epoch_end(self, epoch: int, logs: dict, trainer: Any) -> None:
        v = self._value(logs)
        if self._improved(v):
            self.best, self.best_epoch, self.wait = v, epoch, 0
            if self.restore_best_weights:
                self._best_state = _model_state(trainer.model)
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            raise EarlyStop(f"{self.monitor} did not improve for {self.wait} epochs")

    def on_train_end(self, logs: dict, trainer: Any) -> None:
        if self.restore_best_weights and self._best_state is not None:
            trainer.model.load_state_dict(self._best_state)


class ModelCheckpoint(_Monitored):
    """Saves the model's state dict to ``path`` (``{epoch}`` is formatted in)
    after each epoch, or only on improvement with ``save_best_only``. The best
    value is kept in ``<path>.best.json`` so it survives an interruption."""

    def __init__(
        self, path: str, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"
    ) -> None:
        super().__init__(monitor, mode)
        self.path, self.save_best_only = os.fspath(path), save_best_only
        self._best_file = self.path.replace("{epoch}", "") + ".best.json"
        if os.path.exists(self._best_file):
            with open(self._best_file) as f:
                self.best = float(json.load(f)["best"])

    def on_epoch_end(self, epoch: int, logs: dict, trainer: Any) -> None:
        if self.save_best_only:
            v = self._value(logs)
            if not self._improved(v):
                return
            self.best = v
        if not getattr(trainer, "is_main", True):  # data-parallel: rank 0 writes
            return
        path = self.path.format(epoch=epoch)
        atomic_save(_model_state(trainer.model), path)
        if self.save_best_only:
            best = {"best": self.best, "epoch": epoch, "monitor": self.monitor}
            atomic_write(self._best_file, lambda f: f.write(json.dumps(best).encode()))


class CSVLogger(Callback):
    """Appends one row per epoch (the logs' keys as columns) to ``path``."""

    def __init__(self, path: str, append: bool = False) -> None:
        self.path, self.append = os.fspath(path), append
        self._keys: Optional[list] = None

    def on_train_begin(self, trainer: Any) -> None:
        if not self.append and os.path.exists(self.path) and getattr(trainer, "is_main", True):
            os.unlink(self.path)
        self._keys = None

    def on_epoch_end(self, epoch: int, logs: dict, trainer: Any) -> None:
        if not getattr(trainer, "is_main", True):  # data-parallel: rank 0 writes
            return
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if self._keys is None:
            self._keys = ["epoch", *sorted(logs)]
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._keys, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({"epoch": epoch, **logs})


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=fn, ...)``."""

    def __init__(
        self,
        on_train_begin: Optional[Callable] = None,
        on_epoch_begin: Optional[Callable] = None,
        on_epoch_end: Optional[Callable] = None,
        on_train_end: Optional[Callable] = None,
    ) -> None:
        if on_train_begin:
            self.on_train_begin = on_train_begin  # type: ignore[method-assign]
        if on_epoch_begin:
            self.on_epoch_begin = on_epoch_begin  # type: ignore[method-assign]
        if on_epoch_end:
            self.on_epoch_end = on_epoch_end  # type: ignore[method-assign]
        if on_train_end:
            self.on_train_end = on_train_end  # type: ignore[method-assign]
