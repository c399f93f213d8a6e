"""Training styles, each driving the one engine (``ferrotorch.Trainer``):

* :mod:`ferrotorch.styles.flodl`: ``Trainer.builder(model_factory,
  optim_factory, step_fn).dataset(ds).batch_size(n).num_epochs(e).run().join()``
  and ``Trainer.setup(model, factory, optim_factory)`` + ``graph.step()``.
* :mod:`ferrotorch.styles.kaun`: ``make``, ``init``, ``fit``, ``step``,
  ``predict``, ``make_state``, ``vars``, ``EarlyStop``.
* :mod:`ferrotorch.styles.torchlean`: ``TrainConfig`` (steps),
  ``LoaderConfig`` (epochs), ``OptimizerConfig``, ``train``, ``Stepper``,
  ``logEvery``.

Names are loaded on first use, so importing one style does not import the
Trainer's module (which imports :mod:`flodl`): no import cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "TrainerBuilder": "flodl",
    "TrainHandle": "flodl",
    "TrainedState": "flodl",
    "setup": "flodl",
    "OptimizerConfig": "torchlean",
    "TrainConfig": "torchlean",
    "LoaderConfig": "torchlean",
    "Stepper": "torchlean",
    "train": "torchlean",
    "make_state": "kaun",
}

__all__ = sorted(_NAMES) + ["flodl", "kaun", "torchlean"]


def __getattr__(name: str) -> Any:
    if name in ("flodl", "kaun", "torchlean"):
        return importlib.import_module(f"{__name__}.{name}")
    mod = _NAMES.get(name)
    if mod is None:
        raise AttributeError(f"module 'ferrotorch.styles' has no attribute '{name}'")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
