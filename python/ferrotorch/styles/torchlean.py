"""TorchLean's training configs over the engine.

* ``TrainConfig(steps, batch_size=1, optimizer, scheduler, logEvery)``: a
  step-based run; the scheduler gives the lr of each update from the 0-based
  update count.
* ``LoaderConfig(epochs, batch_size, shuffle, seed, drop_last, optimizer,
  scheduler, logEvery)``: an epoch-based run; the scheduler gives one lr per
  epoch from the 0-based epoch count (a torch-style scheduler is stepped once
  per epoch).
* ``logEvery=N`` prints ``step {k}: loss={loss:.6f}`` after every N-th update
  (k counts updates from 1), as TorchLean's trainer does; 0 or None: silent.
* ``Stepper``: one update per ``step(sample)``; ``steps`` counts them.

Field names are accepted in TorchLean's camelCase (``batchSize``,
``logEvery``, ``dropLast``) and Python's snake_case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from .. import _core
from ..data import DataLoader
from ..errors import ConfigError
from ..history import History
from ..optim import by_name
from ..train import Trainer, _arity

__all__ = ["OptimizerConfig", "TrainConfig", "LoaderConfig", "Stepper", "train", "log_line"]


def log_line(step: int, loss: float) -> str:
    """TorchLean's log line for update ``step`` (1-based)."""
    return f"step {step}: loss={loss:.6f}"


@dataclass
class OptimizerConfig:
    """An optimizer by name (``"sgd" | "adam" | "adamw" | ...``, case-insensitive)."""

    name: str = "adam"
    lr: float = 1e-3
    options: dict = field(default_factory=dict)

    @staticmethod
    def adam(lr: float = 1e-3, **options: Any) -> OptimizerConfig:
        return OptimizerConfig("adam", lr, options)

    @staticmethod
    def adamw(lr: float = 1e-3, **options: Any) -> OptimizerConfig:
        return OptimizerConfig("adamw", lr, options)

    @staticmethod
    def sgd(lr: float = 1e-2, **options: Any) -> OptimizerConfig:
        return OptimizerConfig("sgd", lr, options)

    def build(self, params: Any) -> Any:
        return by_name(self.name, params, self.lr, **self.options)


def _pick(snake: Any, camel: Any, default: Any) -> Any:
    if snake is not None and camel is not None and snake != camel:
        raise ConfigError(f"conflicting values {snake!r} and {camel!r} for the same field")
    return snake if snake is not None else (camel if camel is not None else default)


@dataclass
class TrainConfig:
    """Step-based training: ``steps`` optimizer updates of ``batch_size``."""

    steps: int
    batch_size: Optional[int] = None
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig.adam)
    scheduler: Any = None
    log_every: Optional[int] = None
    loss: Any = "mse"
    clip_grad_norm: Optional[float] = None
    seed: int = 42
    batchSize: Optional[int] = None  # noqa: N815 - TorchLean's name
    logEvery: Optional[int] = None  # noqa: N815 - TorchLean's name

    def __post_init__(self) -> None:
        self.batch_size = _pick(self.batch_size, self.batchSize, 1)
        self.log_every = _pick(self.log_every, self.logEvery, None)
        self.batchSize, self.logEvery = self.batch_size, self.log_every


@dataclass
class LoaderConfig:
    """Epoch-based training: ``epochs`` passes over the data."""

    epochs: int
    batch_size: Optional[int] = None
    shuffle: bool = True
    seed: int = 42
    drop_last: Optional[bool] = None
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig.adam)
    scheduler: Any = None
    log_every: Optional[int] = None
    loss: Any = "mse"
    clip_grad_norm: Optional[float] = None
    batchSize: Optional[int] = None  # noqa: N815 - TorchLean's name
    logEvery: Optional[int] = None  # noqa: N815 - TorchLean's name
    dropLast: Optional[bool] = None  # noqa: N815 - TorchLean's name

    def __post_init__(self) -> None:
        self.batch_size = _pick(self.batch_size, self.batchSize, 32)
        self.log_every = _pick(self.log_every, self.logEvery, None)
        self.drop_last = _pick(self.drop_last, self.dropLast, False)
        self.batchSize, self.logEvery, self.dropLast = self.batch_size, self.log_every, self.drop_last


def train(
    model: Any,
    data: Any,
    config: Any,
    report: Optional[Callable] = None,
    device: Any = None,
    **fit_options: Any,
) -> History:
    """Runs a TrainConfig (step-based) or LoaderConfig (epoch-based) on
    ``data`` (tensors, a tuple of tensors, or a DataLoader) on ``device``;
    returns the History."""
    if not isinstance(config, (TrainConfig, LoaderConfig)):
        raise ConfigError(f"train: expected a TrainConfig or LoaderConfig, got {type(config).__name__}")
    per_epoch = isinstance(config, LoaderConfig)
    opt = config.optimizer.build(model.parameters())
    trainer = Trainer(
        model,
        opt,
        loss=config.loss,
        scheduler=config.scheduler,
        clip_grad_norm=config.clip_grad_norm,
        schedule_unit="epoch" if per_epoch else "step",
        device=device,
    )
    if not isinstance(data, _core.DataLoader):
        shuffle = config.shuffle if isinstance(config, LoaderConfig) else True
        drop_last = bool(config.drop_last) if isinstance(config, LoaderConfig) else False
        data = DataLoader(
            data, int(config.batch_size or 1), shuffle=shuffle, seed=config.seed, drop_last=drop_last
        )
    every = config.log_every or None
    if every:
        n_args = _arity(report) if report is not None else 0

        def logged(k: int, loss: float, tr: Any) -> None:
            print(log_line(k, loss), flush=True)
            if report is not None:
                report(*(k, loss, tr)[:n_args])

        fit_report: Optional[Callable] = logged
    else:
        fit_report = report
    if isinstance(config, LoaderConfig):
        return trainer.fit(data, epochs=config.epochs, log_every=every, report=fit_report, **fit_options)
    return trainer.fit(data, steps=config.steps, log_every=every, report=fit_report, **fit_options)


class Stepper:
    """TorchLean's stepper: ``step(sample)`` runs one update on a
    ``(x, y)`` sample and returns its loss (computed before the update);
    ``epoch(samples)`` runs one per sample; ``steps`` counts the updates.
    The scheduler gives each update's lr from the 0-based update count."""

    def __init__(
        self, model: Any, optimizer: Any = None, scheduler: Any = None, loss: Any = "mse", device: Any = None
    ) -> None:
        optimizer = optimizer if optimizer is not None else OptimizerConfig.sgd(0.01)
        if device is not None:
            model.to(str(device))
        opt = optimizer.build(model.parameters()) if isinstance(optimizer, OptimizerConfig) else optimizer
        self.trainer = Trainer(model, opt, loss=loss, scheduler=scheduler, device=device)

    def step(self, sample: Any) -> float:
        *xs, y = sample
        return self.trainer.step(xs[0] if len(xs) == 1 else tuple(xs), y)

    def epoch(self, samples: Any) -> List[float]:
        return [self.step(s) for s in samples]

    @property
    def steps(self) -> int:
        return self.trainer.global_step
