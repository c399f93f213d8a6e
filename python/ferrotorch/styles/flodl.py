"""floDl's training styles over the engine.

* ``Trainer.builder(model_factory, optim_factory, step_fn).dataset(ds)
  .batch_size(n).num_epochs(e).run().join()`` returns the trained parameters.
  Per batch: ``step_fn(model, batch)`` gives the loss, then backward, the
  optional ``max_grad_norm`` clip, the scheduled lr (0-based step), the
  optimizer step: the engine's order, through ``Trainer.step(closure)``.
* ``Trainer.setup(model, model_factory, optim_factory)`` attaches the
  optimizer so ``loss.backward(); model.step()`` trains (the engine's update
  half: non-finite check, scheduled lr, optimizer, zero_grad).

This module does not import the Trainer: ``Trainer.builder`` hands its class
in, which keeps the import graph acyclic.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

import torch

from ..data import DataLoader
from ..errors import ConfigError

__all__ = ["TrainerBuilder", "TrainHandle", "TrainedState", "setup"]


@dataclass
class TrainedState:
    """What floDl's ``join()`` returns: CPU copies, in ``parameters()`` order."""

    params: list
    buffers: list


class TrainHandle:
    """The result of ``run()``; training already happened (single device)."""

    def __init__(self, state: TrainedState, losses: List[float], trainer: Any) -> None:
        self._state, self.losses, self.trainer = state, losses, trainer

    def join(self) -> TrainedState:
        return self._state


class TrainerBuilder:
    """floDl's ``Trainer::builder``: dataset, batch_size and num_epochs are required."""

    def __init__(
        self, trainer_cls: Any, model_factory: Callable, optim_factory: Callable, step_fn: Callable
    ) -> None:
        self._trainer_cls = trainer_cls
        self._model_factory, self._optim_factory, self._step_fn = model_factory, optim_factory, step_fn
        self._dataset: Any = None
        self._batch_size: Optional[int] = None
        self._epochs: Optional[int] = None
        self._scheduler: Optional[Callable] = None
        self._max_grad_norm: Optional[float] = None
        self._device = "cpu"
        self._seed = 42

    def dataset(self, ds: Any) -> TrainerBuilder:
        self._dataset = ds
        return self

    def batch_size(self, n: int) -> TrainerBuilder:
        self._batch_size = n
        return self

    def num_epochs(self, n: int) -> TrainerBuilder:
        self._epochs = n
        return self

    def scheduler(self, factory: Callable) -> TrainerBuilder:
        """``factory()`` returns a schedule ``step -> lr`` (0-based)."""
        self._scheduler = factory
        return self

    def max_grad_norm(self, x: float) -> TrainerBuilder:
        self._max_grad_norm = x
        return self

    def device(self, d: str) -> TrainerBuilder:
        self._device = str(d)
        return self

    def seed(self, s: int) -> TrainerBuilder:
        self._seed = s
        return self

    def _loader(self) -> DataLoader:
        ds = self._dataset
        if isinstance(ds, DataLoader):
            return ds
        if hasattr(ds, "get_batch") and hasattr(ds, "__len__"):
            ds = ds.get_batch(list(range(len(ds))))
        assert self._batch_size is not None  # run() checked it
        return DataLoader(ds, self._batch_size, shuffle=True, seed=self._seed, device=self._device)

    def run(self) -> TrainHandle:
        missing = [
            n
            for n, v in (
                ("dataset", self._dataset),
                ("batch_size", self._batch_size),
                ("num_epochs", self._epochs),
            )
            if v is None
        ]
        if missing:
            raise ConfigError(f"Trainer.builder: {', '.join(missing)} must be set before run()")
        epochs = int(self._epochs or 0)
        model = self._model_factory(self._device)
        opt = self._optim_factory(model.parameters())
        sched = self._scheduler() if self._scheduler is not None else None
        trainer = self._trainer_cls(
            model, opt, scheduler=sched, clip_grad_norm=self._max_grad_norm, device=self._device
        )
        loader = self._loader()
        if trainer.distributed and loader.shard_of is None:
            from .. import distributed as dist

            loader = loader.shard(dist.rank(), dist.world_size())
        step_fn = self._step_fn
        losses: List[float] = []
        model.train()
        for epoch in range(epochs):
            for batch in loader.epoch(epoch):
                items = list(batch)
                losses.append(trainer.step(lambda items=items: step_fn(model, items)))
            trainer._engine.end_epoch()
        state = TrainedState(
            params=[p.detach().cpu().clone() for p in model.parameters()],
            buffers=[b.detach().cpu().clone() for b in model.buffers()],
        )
        return TrainHandle(state, losses, trainer)


def setup(
    model: Any, model_factory: Optional[Callable], optim_factory: Callable, verbose: bool = True
) -> Any:
    """floDl's ``Trainer::setup``: on one device it attaches
    ``optim_factory(model.parameters())`` to the graph and sets training
    mode; afterwards ``loss.backward(); model.step()`` trains."""
    from .. import distributed as dist

    del model_factory  # floDl uses it to build replicas on other GPUs
    n = dist.world_size()
    if verbose and dist.is_main():
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        print(f"  ferrotorch: training on {dev} ({n} process{'es' if n > 1 else ''})", file=sys.stderr)
    if dist.active():  # torchrun: same graph everywhere, rank 0's weights, averaged gradients
        dist.join(model)
        model.set_process_group(dist.group_name())
    opt = optim_factory(model.parameters())
    model.set_optimizer(opt)
    model.train()
    return opt
