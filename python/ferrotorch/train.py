"""The Trainer: Python argument handling and callbacks over the Rust engine.

The engine (``_core.Engine``, ``rust/train/``) owns the loop: the optimizer
step, micro-step, epoch and batch counters, the data position, the per-epoch
loss sums, the non-finite checks and the order of a step (schedule →
forward → loss → backward → unscale → check → clip → optimizer → scaler
update → ``end_step``). ``fit`` over a :class:`ferrotorch.data.DataLoader`
hands whole runs of batches to it without the GIL; any other iterable goes
through it one batch at a time. floDl's ``Trainer.builder``/``setup``,
Kaun's and TorchLean's styles (``ferrotorch.styles``) and torch-style manual
loops (``step(closure)``, ``step_loss(loss)``) drive the same engine.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterable, Iterator, List, Literal, Optional, Sequence, Tuple, overload

import torch

from . import _core, training_state
from . import distributed as _dist
from .data_position import Position, is_torch_loader
from .errors import ConfigError, EarlyStop, InputTypeError
from .graph_module import Graph as _Graph
from .history import History
from .monitor import epoch_line, format_duration, format_number

__all__ = ["Trainer", "History", "EarlyStop", "format_number", "format_duration"]

CHUNK = 64  # batches per GIL release in fit: Ctrl-C is honoured between chunks

Update = Tuple[int, float, bool]  # (optimizer step, its loss, skipped)


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 3
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 3
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _lr(opt: Any) -> float:
    """The first group's lr of a ferrotorch or a torch optimizer."""
    lr = getattr(opt, "lr", None)
    if lr is None or callable(lr):
        lr = opt.param_groups[0]["lr"]
    return float(lr)


def _modules(model: Any) -> list:
    """The model and its submodules (itself alone for a callable)."""
    return list(model.modules()) if isinstance(model, torch.nn.Module) else [model]


def _is_step_scheduler(s: Any) -> bool:
    """torch-style schedulers (stepped by fit once per epoch) vs schedules
    (lr = s(count), applied by the engine before every optimizer step)."""
    return hasattr(s, "step") and not isinstance(s, _core.Schedule)


def _count(name: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {v!r}")
    return v


def _graph_mode(v: Any) -> str:
    """``cuda_graph`` as the engine's mode name."""
    if v is True:
        return "on"
    if v is False or v is None:
        return "off"
    # "_emulate" (the capture path's code without CUDA) is for ferrotorch's tests only.
    if v in ("auto", "_emulate"):
        return str(v)
    raise ConfigError(f"Trainer: cuda_graph must be 'auto', True or False, got {v!r}")


def _is_kaun_pair(b: Any) -> bool:
    return (
        isinstance(b, (tuple, list)) and len(b) == 2 and callable(b[1]) and not isinstance(b[1], torch.Tensor)
    )


def _split(batch: Any) -> Tuple[Any, Any]:
    """(inputs, target-or-loss_fn) of one batch from an iterable."""
    if isinstance(batch, dict):
        vals = list(batch.values())
        batch = tuple(vals)
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise InputTypeError(
            "fit: each batch must be (input, target), (input, ..., target) or Kaun's (input, loss_fn); "
            f"got {type(batch).__name__}"
            + (f" of shape {list(batch.shape)}" if hasattr(batch, "shape") else "")
        )
    *xs, y = batch
    return (xs[0] if len(xs) == 1 else tuple(xs)), y


# --- a Python model's batches and outputs (the GIL path) --------------------------

_TARGET_KEYS = ("labels", "label")


def _runs_in_rust(model: Any) -> bool:
    """Whether the engine runs ``model`` as its Rust module (a ferrotorch
    module or graph), as ``_core.Engine`` decides (``module_arg``); else it
    is a Python model, called back under the GIL."""
    if isinstance(model, _core.Module):
        return True
    node = getattr(model, "_ft_node", None)
    return callable(node) and isinstance(node(), _core.Module)


def _output_loss(pred: Any, target: Any) -> Any:
    """The engine's loss under ``Trainer(loss=None)``: never called, the
    model's output carries the loss (``_PyStep.loss`` reads it)."""
    raise ConfigError("Trainer(loss=None): the loss comes from the model's output")


def _model_name(model: Any) -> str:
    return type(model).__name__


def _describe(batch: Any) -> str:
    """A batch's structure for messages: ``dict with keys [...]``, ``tuple of 3``..."""
    if isinstance(batch, Mapping):
        return f"{type(batch).__name__} with keys {list(batch.keys())}"
    if isinstance(batch, (tuple, list)):
        return f"{type(batch).__name__} of {len(batch)}"
    if isinstance(batch, torch.Tensor):
        return f"tensor of shape {list(batch.shape)}"
    return type(batch).__name__


def _is_loss_fn(v: Any) -> bool:
    """Kaun's per-batch ``loss_fn`` (callable of the prediction)."""
    return callable(v) and not isinstance(v, (torch.Tensor, Mapping))


def _keys(out: Any) -> str:
    return f" (keys {list(out.keys())})" if isinstance(out, Mapping) else ""


def _logits(out: Any, model: Any, has_loss: bool = False) -> torch.Tensor:
    """The prediction in a model's output: the output itself if a tensor;
    ``logits`` of a dict / ``ModelOutput`` (else its first entry other than
    ``loss``); a tuple's first element (its second when the first is the
    model's loss, ``has_loss``)."""
    if isinstance(out, torch.Tensor):
        return out
    pick: Any = None
    if isinstance(out, Mapping):
        pick = out.get("logits")
        if pick is None:
            pick = next((v for k, v in out.items() if k != "loss" and v is not None), None)
    elif isinstance(out, (tuple, list)):
        items = list(out[1:] if has_loss and len(out) > 1 else out)
        pick = items[0] if items else None
    else:
        pick = getattr(out, "logits", None)
    if not isinstance(pick, torch.Tensor):
        raise InputTypeError(
            f"output of {_model_name(model)}: expected a torch.Tensor, or a tuple, dict or ModelOutput "
            f"whose logits (or first entry) is one; got {type(out).__name__}{_keys(out)}"
        )
    return pick


def _model_loss(out: Any, model: Any) -> torch.Tensor:
    """The loss a model's output carries (``Trainer(loss=None)``), as Hugging
    Face's Trainer reads it: ``loss`` of a dict / ``ModelOutput``, a tuple's
    first element, or a scalar tensor output itself."""
    if isinstance(out, Mapping):
        loss = out.get("loss")
    elif isinstance(out, (tuple, list)):
        loss = out[0] if len(out) else None
    elif isinstance(out, torch.Tensor):
        loss = out
    else:
        loss = getattr(out, "loss", None)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        what = (
            f"a tensor of shape {list(loss.shape)}, not a scalar loss"
            if isinstance(loss, torch.Tensor)
            else "no loss"
        )
        raise ConfigError(
            f"Trainer(loss=None) trains on the loss the model's output carries; the output of "
            f"{_model_name(model)} ({type(out).__name__}{_keys(out)}) has {what}. A Hugging Face "
            "model returns one when the batch has 'labels'; otherwise give Trainer(loss=...)"
        )
    return loss


def _float32(out: Any) -> Any:
    """``out`` with its float16/bfloat16 tensors (top level) in float32: under
    ``amp`` the loss sees float32 outputs, as autocast's fp32 list would."""
    low = (torch.float16, torch.bfloat16)
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype in low else out
    if isinstance(out, (tuple, list)):
        items = [_float32(v) if isinstance(v, torch.Tensor) else v for v in out]
        if hasattr(out, "_make"):  # a namedtuple
            return out._make(items)  # type: ignore[union-attr]
        return type(out)(items) if type(out) in (tuple, list) else tuple(items)
    if isinstance(out, dict):
        d = {k: (_float32(v) if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
        try:
            return type(out)(**d)  # a ModelOutput keeps its class (and attributes)
        except Exception:  # noqa: BLE001 - any dict subclass that cannot be built so
            return d
    return out


class _PyStep:
    """The batch rule and the output rule of a Python model (any
    ``torch.nn.Module`` or callable that is not a ferrotorch module): what
    the engine's forward and loss callbacks do on the GIL path. The engine
    runs ``forward`` under ``amp`` and ``loss`` outside it, then the rest of
    the step. See :class:`Trainer` for the rules."""

    def __init__(self, trainer: Trainer) -> None:
        self.model = trainer.model
        self.engine = trainer._engine
        self.user_loss = trainer.loss
        self.mode = (
            "model" if trainer.loss is None else "builtin" if trainer._engine.builtin_loss else "callable"
        )
        self.amp = trainer.amp is not None
        self.move = trainer.device is not None

    def _to_device(self, v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return self.engine.to_device(v)
        if isinstance(v, Mapping):
            return {k: self._to_device(t) for k, t in v.items()}
        if isinstance(v, (tuple, list)):
            return type(v)(self._to_device(t) for t in v) if type(v) in (tuple, list) else v
        return v

    def parts(self, batch: Any, predict: bool = False) -> Tuple[tuple, dict, Any]:
        """(positional inputs, keyword inputs, target) of one batch."""
        needs_target = self.mode != "model" and not predict
        if isinstance(batch, Mapping):
            keys = [k for k in _TARGET_KEYS if k in batch]
            if len(keys) > 1 and needs_target:
                raise ConfigError(
                    f"Trainer: the batch is a {_describe(batch)}: both 'labels' and 'label' could be the "
                    "target; keep one"
                )
            if predict or needs_target:
                inputs = {k: v for k, v in batch.items() if k not in keys}
            else:
                inputs = dict(batch)
            if not needs_target:
                return (), inputs, None
            if keys:
                return (), inputs, batch[keys[0]]
            if self.mode == "builtin":
                raise ConfigError(
                    f"Trainer: the batch is a {_describe(batch)}; the loss '{self.user_loss}' needs a target: "
                    "a 'labels' (or 'label') key, or batches (inputs..., target)"
                )
            return (), inputs, batch  # a loss callable gets (output, batch)
        if isinstance(batch, (tuple, list)):
            items = list(batch)
            if _is_kaun_pair(batch) and not predict:
                xs, y = items[:1], items[1]
            elif needs_target:
                if len(items) < 2:
                    raise ConfigError(
                        f"Trainer: the batch is a {_describe(batch)}; the loss needs (inputs..., target)"
                    )
                xs, y = items[:-1], items[-1]
            else:
                xs, y = items, None
            if len(xs) == 1 and isinstance(xs[0], Mapping):
                return (), dict(xs[0]), y
            return tuple(xs), {}, y
        if needs_target:
            raise ConfigError(
                f"Trainer: the batch is a {_describe(batch)}; the loss needs a target: batches "
                "(inputs..., target), a dict with 'labels', or step(x, y)"
            )
        return (batch,), {}, None

    @staticmethod
    def _check_not_empty(args: tuple, kwargs: dict, target: Any) -> None:
        named = [(f"input {i}", t) for i, t in enumerate(args)]
        named += [(f"input '{k}'", t) for k, t in kwargs.items()]
        named.append(("target", target))
        for what, t in named:
            if isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape[0] == 0:
                raise ConfigError(
                    f"Trainer.step: the batch is empty ({what} has shape {list(t.shape)}); "
                    "a batch needs at least one sample"
                )

    def forward(self, batch: Any) -> Tuple[Any, Any]:
        """The engine's forward callback: (the model's output, the target)."""
        if self.move:
            batch = self._to_device(batch)
        args, kwargs, target = self.parts(batch)
        self._check_not_empty(args, kwargs, target)
        return self.model(*args, **kwargs), target

    def loader_forward(self, loader: Any) -> Callable[[Any], Tuple[Any, Any]]:
        """``forward`` for a ferrotorch DataLoader's batches, whose structure
        is fixed (and never empty): a tuple of fields is split by the rule
        without its per-batch checks; named fields (dict batches), a device
        move or too few fields take ``forward``."""
        model = self.model
        if _loader_names(loader) is not None or self.move:
            return self.forward
        if self.mode == "model":
            return lambda b: (model(*b), None)
        if len(loader.names) < 2:
            return self.forward  # raises the rule's ConfigError
        return lambda b: (model(*b[:-1]), b[-1])

    def loss(self, state: Tuple[Any, Any]) -> torch.Tensor:
        """The engine's loss callback (outside autocast): the batch's loss."""
        out, target = state
        if self.mode == "model":
            return _model_loss(out, self.model)
        if _is_loss_fn(target):  # Kaun's (x, loss_fn)
            return target(self._cast(_logits(out, self.model)))
        if self.mode == "builtin":
            return self.engine.compute_loss(self._cast(_logits(out, self.model)), target)
        return self.user_loss(self._cast(out), target)

    def _cast(self, out: Any) -> Any:
        return _float32(out) if self.amp else out

    def labels(self, batch: Any, target: Any) -> Any:
        """The target tensor a batch's metrics compare with (loss=None: its labels)."""
        if isinstance(target, torch.Tensor):
            return target
        if self.mode == "model" and isinstance(batch, Mapping):
            for k in _TARGET_KEYS:
                if isinstance(batch.get(k), torch.Tensor):
                    return batch[k]
        return None

    def eval_batch(self, batch: Any) -> Tuple[torch.Tensor, torch.Tensor, Any]:
        """(loss, logits, target for metrics) of one batch; run under ``eval_call``."""
        if self.move:
            batch = self._to_device(batch)
        args, kwargs, target = self.parts(batch)
        out = self.model(*args, **kwargs)
        loss = self.loss((out, target)).detach()
        return loss, _logits(out, self.model, self.mode == "model"), self.labels(batch, target)

    def predict(self, x: Any) -> torch.Tensor:
        """The logits of ``x`` (inputs only: a dict's 'labels'/'label' are dropped)."""
        if self.move:
            x = self._to_device(x)
        args, kwargs, _ = self.parts(x, predict=True)
        return _logits(self.model(*args, **kwargs), self.model)


def _loader_names(loader: Any) -> Optional[List[str]]:
    """A loader's field names when they were given (a dict of fields or
    ``names=``): a Python model then gets its batches as dicts."""
    names = list(loader.names)
    return None if names == [str(i) for i in range(len(names))] else names


class _Interrupts:
    """Defers Ctrl-C inside ``fit`` to the next step boundary: the first
    SIGINT sets a flag that ``fit`` checks between engine calls (so counters,
    position, history and the saved state agree); a second one raises at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
            except ValueError:
                self._old = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class _Stop(Exception):
    """Internal: a deferred Ctrl-C reached a step boundary."""


#: The core's table of Trainer options (``rust/train/options.rs``): name -> default.
_OPTION: Dict[str, Any] = {name: default for name, default, _ in _core.trainer_options()}


def _options_doc() -> str:
    """The docstring's list of options, from the core's table."""
    lines = [f"    - ``{n}={d!r}``: {doc}" for n, d, doc in _core.trainer_options()]
    return "\n\n    Options (``Trainer(model, optimizer, ...)``):\n\n" + "\n".join(lines) + "\n"


class Trainer:
    """Trains a model: the options and their defaults are listed at the end
    (from the core's table, ``_core.trainer_options()``).

    ``model`` is a ferrotorch module or graph (the step runs in Rust), or any
    ``torch.nn.Module`` / callable; ``optimizer`` a ferrotorch optimizer (fused
    Rust update) or any ``torch.optim.Optimizer``. torch pieces run on the
    GIL path: the engine calls the module's ``__call__`` and the optimizer's
    ``step`` / ``zero_grad`` / ``param_groups`` back in Python, so they cost
    a few Python calls per step (``benches/torch_pieces_bench.py`` measures it).
    ``Trainer(device=...)`` moves a torch module with its own ``.to``.

    ``loss`` by name or as a ``ferrotorch.losses`` class keeps the whole step in
    Rust with the GIL released; a callable ``loss(pred, target)`` costs one
    Python call per step. ``loss=None`` (Python models only) trains on the
    loss the model's output carries, as Hugging Face's Trainer does.

    Batches and outputs of a Python model (any ``torch.nn.Module`` or
    callable that is not a ferrotorch module: Hugging Face, timm...) are read
    in Python, by one rule on every path (``fit``, ``step``, ``evaluate``):

    - a dict batch (any mapping, e.g. ``BatchEncoding``) is passed as keyword
      arguments, ``model(**batch)``. With a loss given, the target is its
      ``'labels'`` (or ``'label'``) entry, taken out of the model's inputs (as
      Hugging Face's Trainer does with a ``compute_loss_func``); a dict with
      both keys is ambiguous (``ConfigError``); with neither, a built-in loss
      raises ``ConfigError`` naming the keys and a loss callable gets
      ``(output, batch)`` (the model got the whole batch). With
      ``loss=None`` the whole dict, labels included, goes to the model.
    - a tuple or list batch is ``(inputs..., target)`` when a loss needs a
      target (``model(*inputs)``; a single input that is a dict goes as
      keywords), and all inputs when ``loss=None``; Kaun's ``(x, loss_fn)``
      pairs are ``loss_fn(logits)``. A tensor batch is one input, so it
      needs ``loss=None``. Anything else raises ``ConfigError`` naming the
      batch structure. ``step(x, y)`` is the batch ``(x..., y)`` and
      ``step(batch)`` one batch; a ferrotorch ``DataLoader`` with field names
      (built from a dict, or ``names=``) yields dict batches, else tuples.
    - the output may be a tensor, tuple, dict or ``ModelOutput``. Its loss
      (``loss=None``): ``output.loss`` / ``output["loss"]``, a tuple's first
      element, or a scalar tensor output itself; ``ConfigError`` when there
      is none. Its logits: the output itself if a tensor, ``.logits`` (else
      the first entry other than ``loss``) of a dict or ``ModelOutput``, a
      tuple's first element (the second when the first is the loss). A
      built-in loss (name or ``ferrotorch.losses`` class) applies to the
      logits; a loss callable gets the output as the model returned it.

    ferrotorch modules and graphs take tensor batches ``(inputs..., target)``
    and run the whole step in Rust, as before. ``scheduler``: a schedule (``ferrotorch.schedule``
    function, floDl calculator, or ``int -> float`` callable) sets the lr before
    every optimizer step from the step count (``schedule_unit="epoch"``: from
    the epoch count); floDl calculators and callables see 0-based counts, Kaun's
    ``ferrotorch.schedule`` functions 1-based ones, as in Kaun. A torch-style
    scheduler (with ``.step()``) is stepped once per epoch by ``fit``
    (``ReduceLROnPlateau`` with ``val_loss``, else ``loss``).
    ``amp=torch.bfloat16 | torch.float16`` runs the forward under autocast on
    every step path (a GradScaler is created for float16 unless given);
    gradients are unscaled before clipping. ``fit`` and ``step(x, y)``: the
    model's forward runs under autocast and the loss outside it on the output
    cast to float32 (as autocast's fp32 list would; a model's own loss,
    ``loss=None``, is computed inside its forward, so under autocast).
    ``step(closure)``: the whole closure (forward and loss) runs under
    autocast, as in a torch ``with torch.autocast(...)`` loop.
    ``step_loss(loss)`` raises ``ConfigError`` with ``amp``: its forward ran
    before the call, where amp cannot apply. ``evaluate`` and ``predict`` run
    without autocast. ``grad_accumulation=k``: k batches per optimizer update
    (steps, ``report``, ``log_every`` and ``steps=`` count updates, as
    Lightning does; the last window of an epoch updates on what it has).
    ``on_nonfinite``: a non-finite loss or gradient raises ``TrainingError``
    naming the step and batch before anything changes ("raise"), or the update
    is skipped and counted ("skip"), or nothing is checked ("off", floDl's
    behaviour: one multi-tensor check and host read fewer per update); with a
    GradScaler the scaler's own skip decides. ``device``: every batch on every path is moved there.

    ``cuda_graph``: whole-step CUDA graphs (README, "CUDA graphs"). ``True``
    captures forward, loss, backward, unscale, clipping, the fused optimizer
    and the scaler update into one graph per input shape after 3 eager
    warm-up steps, and replays it; anything that prevents capture raises
    (``DeviceError`` off CUDA, ``ConfigError`` naming the node). ``"auto"``
    does the same where it can and otherwise runs eagerly, with one warning
    naming the node on a CUDA device (silently on the CPU). ``False`` (the
    default until the mode has run on a GPU) never captures.

    ``loss_reads``: when the engine reads losses to the host. On CUDA a read
    is a sync that stalls the launch queue. ``"auto"`` (the default) keeps
    each step's loss on the device and reads them in batches on CUDA where
    nothing on the host must decide from it per step, and reads every step
    otherwise (on the CPU a read costs nothing). ``"batched"`` asks for that
    and raises ``ConfigError`` where it is not possible; ``"step"`` reads
    every loss. A per-step decision exists with ``on_nonfinite="raise"`` (the
    default; use "skip" or "off", or a GradScaler, whose found-inf decides
    on the device), with "skip" in eager mode (graph mode skips on the
    device), and under a process group. Batched losses are read when a
    number is needed: ``step()``'s float, every 64 batches of ``fit`` and
    its ``log_every`` / ``checkpoint_every`` points, ``skipped_steps``, the
    epoch's end, ``save_state``; ``global_step``, ``epoch`` and ``batch`` are
    read without waiting for them.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss: Any = _OPTION["loss"],
        scheduler: Any = _OPTION["scheduler"],
        clip_grad_norm: Optional[float] = _OPTION["clip_grad_norm"],
        clip_grad_value: Optional[float] = _OPTION["clip_grad_value"],
        scaler: Any = _OPTION["scaler"],
        amp: Any = _OPTION["amp"],
        grad_accumulation: int = _OPTION["grad_accumulation"],
        metrics: Optional[Sequence[Any]] = _OPTION["metrics"],
        device: Any = _OPTION["device"],
        on_nonfinite: str = _OPTION["on_nonfinite"],
        schedule_unit: str = _OPTION["schedule_unit"],
        distributed: Optional[bool] = _OPTION["distributed"],
        cuda_graph: Any = _OPTION["cuda_graph"],
        loss_reads: str = _OPTION["loss_reads"],
    ) -> None:
        graph_mode = _graph_mode(cuda_graph)
        python_model = not _runs_in_rust(model)
        if loss is None and not python_model:
            raise ConfigError(
                f"Trainer(loss=None) trains on the loss a model's output carries (a torch model such as a "
                f"Hugging Face one given 'labels'); {type(model).__name__} is a ferrotorch module, whose "
                "output is its prediction: give loss="
            )
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.amp = amp
        self.device = None if device is None else str(device)
        if self.device is not None:
            model.to(self.device)
        self.distributed = self._join_group(model, distributed)
        if scaler is None and amp is not None and _core.amp_needs_scaler(amp, "Trainer(amp)"):
            from .amp import GradScaler

            scaler = GradScaler()
        self.scaler = scaler
        self.scheduler = scheduler
        schedule = None if scheduler is None or _is_step_scheduler(scheduler) else scheduler
        amp_device = "cuda" if self.device and self.device.startswith("cuda") else "cpu"
        self.metrics = list(metrics or [])
        self._data_pos = Position()
        # Graphs in the model: tensors that replaced theirs are adopted before each Rust use.
        self._graphs = [m for m in _modules(model) if isinstance(m, _Graph)]
        self._sync()
        self._engine = _core.call(
            "Trainer",
            _core.Engine,
            model,
            optimizer,
            _output_loss if loss is None else loss,
            clip_grad_norm,
            clip_grad_value,
            schedule,
            schedule_unit,
            grad_accumulation,
            scaler,
            amp,
            amp_device,
            on_nonfinite,
            self.device,
            _dist.group_name() if self.distributed else None,
            graph_mode,
            loss_reads,
        )
        # A Python model's steps run its forward and loss from Python (the
        # batch and output rules); a ferrotorch model's run in the engine.
        self._py: Optional[_PyStep] = _PyStep(self) if python_model else None
        status = self._engine.cuda_graph_status()
        if status["warn"]:
            warnings.warn(
                f"Trainer(cuda_graph='auto'): steps run eagerly: '{status['node']}' prevents "
                f"CUDA graph capture: {status['reason']}",
                RuntimeWarning,
                stacklevel=2,
            )

    def cuda_graph_status(self) -> dict:
        """CUDA graph mode at a glance: ``mode`` ("off", "auto", "on"),
        ``active``, ``node`` and ``reason`` (what keeps steps
        eager, or None), ``key`` (the capture key: it changes with anything
        that makes a captured step stale, e.g. freeze/thaw, param groups,
        dtype or device moves, optimizer state loads, ``load_state``; not
        with lr changes), ``graphs`` (one per input shape), ``captures``,
        ``replays`` and ``invalidations``."""
        return dict(self._engine.cuda_graph_status())

    @staticmethod
    def _join_group(model: Any, distributed: Optional[bool]) -> bool:
        """Data-parallel under a process group of 2+ ranks (see
        :mod:`ferrotorch.distributed`): same graph everywhere, rank 0's weights."""
        if distributed is False:
            return False
        if not _dist.active():
            if distributed:
                raise ConfigError(
                    "Trainer(distributed=True) needs a torch.distributed process group of more than one "
                    "rank: call ferrotorch.distributed.init() under torchrun"
                )
            return False
        _dist.join(model)
        return True

    @property
    def is_main(self) -> bool:
        """True where reports, progress and files happen: rank 0, or the only process."""
        return not self.distributed or _dist.is_main()

    def _any_rank(self, flag: bool) -> bool:
        """``flag`` agreed over the ranks (True if any rank has it); itself alone."""
        if not self.distributed:
            return flag
        return _dist.any_rank(flag, next(iter(self.model.parameters())).device)

    def _agreed(self, fn: Callable[[], Any]) -> None:
        """Runs ``fn`` (reports, callbacks); an EarlyStop on any rank stops every rank."""
        stop = False
        try:
            fn()
        except EarlyStop:
            stop = True
        if self._any_rank(stop):
            raise EarlyStop

    # --- other styles -------------------------------------------------------------

    @staticmethod
    def builder(model_factory: Callable, optim_factory: Callable, step_fn: Callable) -> Any:
        """floDl's ``Trainer::builder(...).dataset(ds).batch_size(n).num_epochs(e).run().join()``."""
        from .styles.flodl import TrainerBuilder

        return TrainerBuilder(Trainer, model_factory, optim_factory, step_fn)

    @staticmethod
    def setup(
        model: Any, model_factory: Optional[Callable], optim_factory: Callable, verbose: bool = True
    ) -> Any:
        """floDl's ``Trainer::setup``: afterwards ``model.step()`` trains."""
        from .styles.flodl import setup

        return setup(model, model_factory, optim_factory, verbose)

    def make_state(self, vars: Any) -> Trainer:
        """Kaun's ``make_state``: these weights, fresh optimizer state and counters."""
        from .styles.kaun import make_state

        return make_state(self, vars)

    # --- counters (owned by the engine) --------------------------------------------

    @property
    def global_step(self) -> int:
        """Optimizer updates taken so far (skipped ones included); read
        without waiting for pending device losses."""
        return int(self._engine.position()[0])

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return int(self._engine.position()[2])

    @property
    def batch(self) -> int:
        """Batches consumed in the current epoch (the data position)."""
        return int(self._engine.position()[3])

    @property
    def builtin_loss(self) -> bool:
        """True when the loss is built in: steps run in Rust without the GIL."""
        return bool(self._engine.builtin_loss)

    @property
    def skipped_steps(self) -> int:
        """Updates skipped for a non-finite loss or gradient."""
        return int(self._engine.state["skipped"])

    # --- single steps -----------------------------------------------------------

    def _sync(self) -> None:
        """Tensors that replaced a graph's own in its registry become its own
        before the Rust side uses it (see ``Graph._ft_sync``)."""
        for g in self._graphs:
            g._ft_sync(computing=True)

    @overload
    def step(self, x: Any, y: Any = None, *, lazy: Literal[False] = False) -> float: ...
    @overload
    def step(self, x: Any, y: Any = None, *, lazy: Literal[True]) -> torch.Tensor: ...

    def step(self, x: Any, y: Any = None, *, lazy: bool = False) -> "float | torch.Tensor":
        """One batch through the engine; returns its loss (read on the host).

        ``step(x, y)``: forward, the Trainer's loss, backward and (at the end
        of an accumulation window) the update. ``y`` may be a callable
        ``pred -> loss`` (Kaun). ``step(closure)``: ``closure()`` runs the
        forward and returns the loss; the engine does the rest.

        A Python model reads ``x`` and ``y`` by the batch rule (see the class
        docs): ``step(batch)`` takes one whole batch, e.g. a Hugging Face
        dict with ``'labels'``; ``step(x, y)`` is the batch ``(x..., y)``.
        With ``amp``, ``step(x, y)`` runs the forward under autocast and
        ``step(closure)`` the whole closure.

        ``lazy=True`` (``step(x, y)`` form only) returns the loss as a
        detached 0-dim tensor on the device instead of a float: with batched
        ``loss_reads`` nothing is read to the host until someone asks
        (``.item()``, or the engine's next batched read), as in a torch loop."""
        self._sync()
        if y is None and callable(x) and not isinstance(x, (torch.Tensor, Mapping)):
            if lazy:
                raise ConfigError("Trainer.step(closure): lazy=True needs the step(x, y) form")
            return self._engine.step_closure(x)[0]
        py = self._py
        if py is not None:
            batch = self._step_batch(x, y)
            if lazy:
                return self._engine.step_batch_lazy(batch, py.forward, py.loss, False)[0]
            return self._engine.step_batch(batch, py.forward, py.loss)[0]
        if lazy:
            return self._engine.step_lazy(x, y, False)[0]
        return self._engine.step(x, y)[0]

    def _step_batch(self, x: Any, y: Any) -> Any:
        """``step(x, y)``'s arguments as one batch of the batch rule."""
        if y is None:
            return x  # step(batch)
        if self.loss is None:
            raise ConfigError(
                "Trainer.step(x, y): with loss=None the loss comes from the model's output; pass the "
                "whole batch, step(batch) (a dict with 'labels' for a Hugging Face model)"
            )
        return (*x, y) if isinstance(x, (tuple, list)) else (x, y)

    def step_loss(self, loss: torch.Tensor) -> float:
        """A torch-style manual loop: ``loss`` was computed by the caller;
        the engine runs backward, the checks, clipping, the update and
        ``end_step``, counting the step.

        With ``amp=`` this raises ``ConfigError``: the forward already ran,
        before the call and outside the engine's autocast, so amp cannot
        apply to it (and silently training in float32 would be wrong). Use
        ``step(closure)``, whose closure runs under autocast, or run the
        forward under ``torch.autocast`` yourself with ``Trainer(scaler=...)``
        (float16) and no ``amp=``."""
        self._sync()
        return self._engine.step_loss(loss)[0]

    def predict(self, x: Any, batch_size: Optional[int] = 4096) -> torch.Tensor:
        """The model's output in eval mode without gradient tracking, on the
        Trainer's device; tensor inputs larger than ``batch_size`` rows go
        through in batches (None: at once).

        A Python model gets ``x`` as a batch of inputs (a tensor, a tuple of
        positional inputs, or a dict of keyword inputs whose ``'labels'`` /
        ``'label'`` entries are left out) and ``predict`` returns the logits
        of its output: the output itself if a tensor, ``.logits`` of a
        ``ModelOutput`` or dict (else its first entry other than ``loss``),
        a tuple's first element (see the class docs)."""
        self._sync()
        if batch_size is not None:
            _count("predict: batch_size", batch_size, 1)
        was_training = getattr(self.model, "training", True)
        py = self._py
        if py is not None and not isinstance(x, torch.Tensor):
            return self._engine.eval_call(lambda: py.predict(x), was_training)
        if isinstance(x, (tuple, list)):
            return self._engine.predict(tuple(x), was_training)
        x = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x

        def run(xb: torch.Tensor) -> torch.Tensor:
            if py is not None:
                return self._engine.eval_call(lambda: py.predict(xb), was_training)
            return self._engine.predict(xb, was_training)

        if batch_size is None or x.dim() == 0 or x.shape[0] <= batch_size:
            return run(x)
        return torch.cat([run(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])

    def evaluate(self, data: Iterable[Any], metrics: Optional[Sequence[Any]] = None) -> dict:
        """Mean loss and metrics over ``data`` (eval mode, no grad, on the
        Trainer's device). Metrics are names from ``ferrotorch.metrics``
        (``"accuracy"``, ``"f1"``...) or callables ``(pred, target) -> float``,
        computed over all predictions. The mean weighs each batch by its
        target's rows.

        A Python model's batches follow the batch rule (see the class docs);
        the loss is the Trainer's (``loss=None``: the output's own), and the
        metrics compare the output's logits with the target (``loss=None``:
        the batch's ``'labels'``)."""
        self._sync()
        was_training = getattr(self.model, "training", True)
        data = self._as_data(data, None)
        if hasattr(data, "reset"):
            data.reset()
        total, n, preds, targets = 0.0, 0, [], []
        py = self._py
        for batch in _batches(data, 0, py is not None):
            if py is not None:
                loss_t, pred, y = self._engine.eval_call(
                    functools.partial(py.eval_batch, batch), was_training
                )
                loss = float(loss_t)
            else:
                x, y = _split(batch)
                loss, pred = self._engine.eval_batch(x, y, was_training)
            k = y.shape[0] if isinstance(y, torch.Tensor) and y.dim() else 1
            total += loss * k
            n += k
            if isinstance(y, torch.Tensor):
                preds.append(pred)
                targets.append(self._engine.to_device(y))
        if n == 0:
            raise ConfigError("evaluate: the data yielded no batches")
        out = {"loss": total / n}
        wanted = self.metrics if metrics is None else list(metrics)
        if wanted and preds:
            pred, target = torch.cat(preds), torch.cat(targets)
            for m in wanted:
                name, fn = _metric(m)
                out[name] = float(fn(pred, target))
        return out

    # --- fit --------------------------------------------------------------------------

    def _end_partial_epoch(self) -> None:
        """``fit`` over another data source than the partial epoch's: that
        epoch ends here (its last window updates on what it has), and the new
        source starts a new epoch (see :mod:`ferrotorch.data_position`)."""
        _step, micro, _epoch, batch = self._engine.position()
        if batch or micro:
            self._engine.end_epoch()
        self._data_pos.epoch_rng = None

    def _as_data(self, data: Any, batch_size: Optional[int]) -> Any:
        """A DataLoader for tensors, a tuple of tensors or a dataset exposing
        ``fields()``; any other iterable as it is."""
        is_fields = isinstance(data, (torch.Tensor, dict)) or (
            isinstance(data, tuple) and data and all(isinstance(t, torch.Tensor) for t in data)
        )
        if is_fields or hasattr(data, "__ferrotorch_fields__"):
            from .data import DataLoader

            return DataLoader(data, batch_size or 32)
        if batch_size is not None:
            raise ConfigError("fit: batch_size applies to tensors or datasets, not to a loader or iterable")
        return data

    def fit(
        self,
        data: Iterable[Any],
        epochs: Optional[int] = None,
        steps: Optional[int] = None,
        report: Optional[Callable[..., Any]] = None,
        val_data: Optional[Iterable[Any]] = None,
        callbacks: Sequence[Any] = (),
        progress: bool = False,
        log_every: Optional[int] = None,
        checkpoint_dir: Optional[str] = None,
        checkpoint_every: Optional[int] = None,
        resume: bool = False,
        monitor: Any = None,
        batch_size: Optional[int] = None,
    ) -> History:
        """Trains for ``epochs`` epochs or ``steps`` optimizer updates over ``data``.

        ``data``: a DataLoader (whole runs of batches in Rust), tensors or a
        tuple of tensors (batched by ``batch_size``, default 32, shuffled), or
        any iterable of ``(x, y)`` / ``(x1, ..., y)`` batches, or Kaun's
        ``(x, loss_fn)`` pairs (e.g. ``Data.repeat(n, (x, loss_fn))``); a
        Python model also takes dict batches, e.g. a torch DataLoader over a
        Hugging Face data set (the batch rule in the class docs).
        ``report(k, loss[, trainer])`` runs after each epoch (k = epoch from 1,
        loss = epoch mean) or, with ``log_every=N``, every N optimizer steps
        (k = global step, loss = that step's); over Kaun pairs it runs after
        every step, as Kaun's does. Raising :class:`EarlyStop` in ``report`` or
        a callback ends training and returns the history. ``val_data`` adds
        ``val_loss`` and metrics to each epoch's logs. With ``checkpoint_dir``
        the full training state is saved atomically after every epoch, every
        ``checkpoint_every`` steps and on Ctrl-C; ``resume=True`` picks up from
        ``checkpoint_dir/last.pt`` exactly where it stopped. Ctrl-C stops at a
        step boundary and returns (``history.interrupted``). ``monitor``: a
        :class:`ferrotorch.Monitor` that gets every epoch's logs.
        """
        self._sync()
        if epochs is None and steps is None:
            epochs = 1
        if epochs is not None:
            _count("fit: epochs", epochs, 1)
        if steps is not None:
            _count("fit: steps", steps, 1)
        for name, v in (("log_every", log_every), ("checkpoint_every", checkpoint_every)):
            if v is not None:
                _count(f"fit: {name}", v, 1)
        if resume and checkpoint_dir is None:
            raise ConfigError("fit: resume=True needs checkpoint_dir")
        source = data
        data = self._as_data(data, batch_size)
        if self.distributed and isinstance(data, _core.DataLoader) and data.shard_of is None:
            data = data.shard(_dist.rank(), _dist.world_size())
        state_path = None
        if checkpoint_dir is not None:
            os.makedirs(checkpoint_dir, exist_ok=True)
            state_path = os.path.join(checkpoint_dir, "last.pt")
        resuming = resume and state_path is not None and os.path.exists(state_path)
        if not resuming and not self._data_pos.same_source(source):
            self._end_partial_epoch()
        step, _micro, epoch, _batch = self._engine.position()
        history = History(start_step=int(step), start_epoch=int(epoch))
        if resuming and state_path is not None:
            history = self.load_state(state_path)
        self._data_pos.set_source(source)
        run = _Run(self, data, history, report, log_every, checkpoint_every, state_path, progress, epochs)
        target_steps = None if steps is None else history.start_step + steps
        total_epochs = None if epochs is None else history.start_epoch + epochs
        callbacks = list(callbacks)
        for cb in callbacks:
            _call(cb, "on_train_begin", self)
        logs: dict = {}
        with _Interrupts() as intr:
            run.interrupts = intr
            try:
                while True:
                    if total_epochs is not None and self.epoch >= total_epochs:
                        break
                    if target_steps is not None and self.global_step >= target_steps:
                        break
                    epoch = self.epoch
                    if self.batch == 0 and self._engine.position()[1] == 0:
                        for cb in callbacks:
                            _call(cb, "on_epoch_begin", epoch + 1, self)
                    t0 = time.perf_counter()
                    done = run.epoch(epoch, target_steps)
                    if not done:  # steps ran out mid-epoch: log the partial epoch
                        logs = self._epoch_logs(history, epoch, self._engine.epoch_loss(), t0, val_data)
                        break
                    flushed, (_num, loss, _nb) = self._engine.end_epoch()
                    if flushed is not None:
                        run.updates([flushed])
                    logs = self._epoch_logs(history, epoch, loss, t0, val_data)
                    self._step_scheduler(logs)
                    if progress and self.is_main:
                        self._print_progress(epoch - history.start_epoch, epochs, logs, run.started)
                    if monitor is not None and self.is_main:
                        monitor.log(epoch - history.start_epoch, logs["duration"], logs)
                    if state_path is not None:
                        self.save_state(state_path, history)

                    def epoch_end(epoch: int = epoch, loss: float = loss, logs: dict = logs) -> None:
                        for cb in callbacks:
                            _call(cb, "on_epoch_end", epoch + 1, logs, self)
                        if report is not None and not (run.log_every or run.kaun) and self.is_main:
                            report(*(epoch + 1, loss, self)[: max(run.n_args, 0)])

                    self._agreed(epoch_end)  # EarlyStop ends fit below
                    run._boundary()
            except EarlyStop:
                history.stopped_early = True
            except (_Stop, KeyboardInterrupt):
                history.interrupted = True
                if state_path is not None:
                    self.save_state(state_path, history)
                if self.is_main:
                    print(
                        f"fit: interrupted at step {self.global_step}; model and optimizer are consistent",
                        file=sys.stderr,
                    )
        for cb in callbacks:
            _call(cb, "on_train_end", logs, self)
        if monitor is not None and hasattr(monitor, "finish") and self.is_main:
            monitor.finish()
        return history

    def _epoch_logs(self, history: History, epoch: int, loss: float, t0: float, val_data: Any) -> dict:
        """The epoch's logs (loss, lr, duration, validation), appended to the history."""
        logs = {"loss": loss, "lr": _lr(self.optimizer), "duration": time.perf_counter() - t0}
        if val_data is not None:
            for k, v in self.evaluate(val_data).items():
                logs[f"val_{k}"] = v
        history.losses.append(loss)
        history.epochs_logs.append({"epoch": epoch + 1, **logs})
        return logs

    def _step_scheduler(self, logs: dict) -> None:
        s = self.scheduler
        if s is None or not _is_step_scheduler(s):
            return
        # The engine updates through the Rust core, not through the wrapper a
        # torch scheduler puts on optimizer.step: record the step as torch does.
        opt = getattr(s, "optimizer", None)
        if opt is not None and self.global_step > 0:
            opt._opt_called = True
        # ferrotorch's ReduceLROnPlateau subclasses torch's: one check for both.
        if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
            s.step(logs.get("val_loss", logs["loss"]))
        else:
            s.step()

    def _print_progress(self, epoch: int, total: Optional[int], logs: dict, started: float) -> None:
        shown = {k: v for k, v in logs.items() if k not in ("duration", "lr")}
        elapsed = time.perf_counter() - started
        print(epoch_line(epoch, total, logs["duration"], shown, elapsed), file=sys.stdout, flush=True)

    # --- training state -------------------------------------------------------

    def state_dict(self, history: Optional[History] = None) -> dict:
        """Everything needed to continue bit for bit (see
        :mod:`ferrotorch.training_state`)."""
        return training_state.collect(self, history)

    def save_state(self, path: str, history: Optional[History] = None) -> None:
        """Writes the training state atomically (temp file, fsync, rename)."""
        training_state.save(self, path, history)

    def load_state(self, path: str) -> History:
        """Restores a state written by ``save_state``; returns its history.
        Every part is validated before any is applied; a failure changes
        nothing and raises ``CheckpointError`` naming the file and the part.
        Captured CUDA graphs are dropped (they would read replaced state)."""
        history = training_state.load(self, path)
        self._engine.invalidate_cuda_graphs()
        return history


Trainer.__doc__ = (Trainer.__doc__ or "") + _options_doc()


class _Run:
    """One ``fit`` call's per-step bookkeeping: history, reports, progress,
    checkpoints, and the step-boundary check for Ctrl-C."""

    def __init__(
        self,
        trainer: Trainer,
        data: Any,
        history: History,
        report: Optional[Callable[..., Any]],
        log_every: Optional[int],
        checkpoint_every: Optional[int],
        state_path: Optional[str],
        progress: bool,
        epochs: Optional[int],
    ) -> None:
        self.t, self.data, self.history = trainer, data, history
        self.report, self.log_every, self.checkpoint_every = report, log_every, checkpoint_every
        self.state_path, self.progress, self.epochs = state_path, progress, epochs
        self.n_args = _arity(report) if report is not None else 0
        self.kaun = False
        self.bar: Any = None
        self.started = time.perf_counter()
        self.interrupts: Optional[_Interrupts] = None

    def updates(self, ups: List[Update]) -> None:
        h = self.history
        for k, loss, skipped in ups:
            h.step_losses.append(loss)
            h.steps += 1
            h.skipped += int(skipped)
            if self.bar is not None:
                self.bar.update(1, loss=loss)
            every = self.log_every or (1 if self.kaun else None)
            if self.report is not None and every and k % every == 0:
                self.t._agreed(self._report_call(self.report, (k, loss, self.t)[: max(self.n_args, 0)]))
        if self.checkpoint_every and self.state_path:
            if any(k % self.checkpoint_every == 0 for k, _, _ in ups):
                self.t.save_state(self.state_path, h)

    def _report_call(self, report: Callable[..., Any], args: tuple) -> Callable[[], None]:
        def call() -> None:
            if self.t.is_main:  # data-parallel: rank 0 reports
                report(*args)

        return call

    def _boundary(self) -> None:
        """A step boundary: honour a deferred Ctrl-C (on every rank at once)."""
        if self.t._any_rank(self.interrupts is not None and self.interrupts.requested):
            raise _Stop

    def epoch(self, epoch: int, target_steps: Optional[int]) -> bool:
        """Trains the rest of epoch ``epoch``; True when its data ran out."""
        if self.progress and self.t.is_main and sys.stdout.isatty():  # live bar on terminals
            from .progress import ProgressBar, epoch_desc

            n = self.data.num_batches if isinstance(self.data, _core.DataLoader) else None
            self.bar = ProgressBar(
                total=n, desc=epoch_desc(epoch - self.history.start_epoch, self.epochs or 1)
            )
        try:
            if isinstance(self.data, _core.DataLoader):
                return self._loader_epoch(target_steps)
            return self._iterable_epoch(epoch, target_steps)
        finally:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    def _loader_epoch(self, target_steps: Optional[int]) -> bool:
        every = [v for v in (self.log_every, self.checkpoint_every) if v]
        py = self.t._py
        extra: dict = {}
        if py is not None:  # a Python model: its forward and loss from Python
            names = _loader_names(self.data)
            extra = {"forward": py.loader_forward(self.data), "loss": py.loss, "names": names}
        while True:
            ups, _n, done = self.t._engine.run_loader(self.data, CHUNK, target_steps, every, **extra)
            self.updates(ups)
            self._boundary()
            if done:
                return True
            if target_steps is not None and self.t.global_step >= target_steps:
                return False

    def _iterable_epoch(self, epoch: int, target_steps: Optional[int]) -> bool:
        data = self.data
        if hasattr(data, "reset"):
            data.reset()
        skip = self.t.batch  # resumed mid-epoch: these batches were consumed
        seen = pending = 0
        every = [v for v in (self.log_every, self.checkpoint_every) if v]
        if self.bar is not None:
            every.append(1)  # a live bar shows every step's loss
        py = self.t._py
        if is_torch_loader(data):  # the remainder of its epoch (its order replayed on resume)
            batches, start = self.t._data_pos.epoch_iter(data, epoch, skip), skip
        else:
            batches, start = _batches(data, epoch), 0
        for i, batch in enumerate(batches, start):
            if i < skip:
                continue
            seen += 1
            self.kaun = self.kaun or _is_kaun_pair(batch)
            if py is not None:
                _loss, k = self.t._engine.step_batch_lazy(batch, py.forward, py.loss, True)
            else:
                x, y = _split(batch)
                _loss, k = self.t._engine.step_lazy(x, y, True)
            pending += 1
            stop = k is not None and target_steps is not None and k >= target_steps
            if k is not None and (stop or pending >= CHUNK or self.kaun or any(k % e == 0 for e in every)):
                # Reports and checkpoints are due: one read of the pending losses.
                self.updates(self.t._engine.take_updates())
                pending = 0
            self._boundary()
            if stop:
                return False
        self.updates(self.t._engine.take_updates())
        if seen == 0 and skip == 0:
            raise ConfigError(
                "fit: the data yielded no batches this epoch (a generator can be iterated only once; "
                "pass a list, a DataLoader or a resettable pipeline)"
            )
        return True


def _call(cb: Any, hook: str, *args: Any) -> None:
    fn = getattr(cb, hook, None)
    if fn is not None:
        fn(*args)


def _batches(data: Any, epoch: int, named: bool = False) -> Iterator[Any]:
    """The batches of ``data``'s epoch ``epoch``; ``named``: a loader with
    field names yields dicts (a Python model's batches)."""
    if isinstance(data, _core.DataLoader):
        names = _loader_names(data) if named else None
        if names is not None:
            return (dict(zip(names, b)) for b in data.epoch(epoch))
        return iter(data.epoch(epoch))
    return iter(data)


def _metric(m: Any) -> "tuple[str, Callable[[Any, Any], float]]":
    if callable(m):
        return getattr(m, "__name__", "metric"), m
    from . import metrics as M

    fn = getattr(M, str(m), None)
    if fn is None or not callable(fn):
        raise ConfigError(f"unknown metric '{m}'")
    return str(m), fn
