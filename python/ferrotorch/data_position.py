"""Where an epoch over a data source stands, so that ``fit`` continues it
exactly: the remainder of an interrupted epoch over a torch ``DataLoader``,
and one rule for ``fit`` over a different source after a partial epoch.

A torch ``DataLoader`` draws its shuffle when an epoch starts (from its
sampler's or its own ``generator``, else from torch's global generator).
:class:`Position` records that generator's state at the start of every
epoch; it is part of the training state. On resume it restores that state,
iterates the loader afresh (the same order, worker seeds included) and
skips the batches already consumed, then puts torch's global generator
back where the saved state had it. A loader with its own ``state_dict`` /
``load_state_dict`` (torchdata's ``StatefulDataLoader``) is resumed from its
own state instead. A sampler or dataset of a kind that cannot be replayed
(a custom sampler, an ``IterableDataset``) warns once that the remainder is
not reproducible.

The rule for another source: the position inside an epoch belongs to the
data it was taken over. ``fit`` over the same object (or after
``load_state``) continues the epoch; ``fit`` over a different one ends the
partial epoch (the last accumulation window updates on what it has, as at
any epoch's end) and starts a new one, as Keras does.
"""

from __future__ import annotations

import itertools
import warnings
import weakref
from typing import Any, Dict, Iterator, Optional

import torch
from torch.utils import data as tud

# Samplers whose order is a function of the generator state at the epoch's start.
_REPLAYABLE = (
    tud.SequentialSampler,
    tud.RandomSampler,
    tud.SubsetRandomSampler,
    tud.WeightedRandomSampler,
    tud.distributed.DistributedSampler,
)


def is_torch_loader(data: Any) -> bool:
    return isinstance(data, tud.DataLoader)


def _stateful(loader: Any) -> bool:
    return callable(getattr(loader, "state_dict", None)) and callable(
        getattr(loader, "load_state_dict", None)
    )


def _generator(loader: Any) -> Optional[torch.Generator]:
    """The generator the loader's shuffle draws from (None: torch's global one)."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    for ob in (getattr(loader, "sampler", None), getattr(batch_sampler, "sampler", None), loader):
        g = getattr(ob, "generator", None)
        if isinstance(g, torch.Generator):
            return g
    return None


def _replayable(loader: Any) -> bool:
    if isinstance(loader.dataset, tud.IterableDataset):
        return False
    bs = loader.batch_sampler
    if bs is not None and type(bs) is not tud.BatchSampler:
        return False
    return type(loader.sampler) in _REPLAYABLE


class Position:
    """The data side of a training state (held by the Trainer)."""

    def __init__(self) -> None:
        # Generator states at the start of the current epoch: torch's global
        # one (the loader's iterator draws its base seed there unless the
        # loader has a generator) and the shuffle's generator, if any.
        self.epoch_rng: Optional[Dict[str, Any]] = None
        # The shuffle generator's state when a training state was saved (a
        # resume at an epoch boundary continues it: the next epoch's order).
        self.generator_now: Optional[torch.Tensor] = None
        self.current: Any = None  # the torch loader of the current epoch
        self._loaded = False  # a training state was just loaded
        # A stateful loader's own state, read when a state is saved.
        self.loader_state: Any = None
        self._source: Any = None  # the data the current partial epoch runs over
        self._warned = False

    # --- one rule for another source ------------------------------------------

    def same_source(self, data: Any) -> bool:
        """Whether ``data`` is the source of the partial epoch (True when no
        source is known: after ``load_state``, or before any ``fit``)."""
        src = self._source
        if src is None:
            return True
        held = src() if isinstance(src, weakref.ref) else src
        return held is data

    def set_source(self, data: Any) -> None:
        try:
            self._source = weakref.ref(data)
        except TypeError:  # tuples and lists of tensors: held until the next fit
            self._source = data

    def forget_source(self) -> None:
        self._source = None

    # --- the remainder of an epoch over a torch DataLoader ---------------------

    def epoch_iter(self, loader: Any, epoch: int, skip: int) -> Iterator[Any]:
        """The batches of epoch ``epoch`` from batch ``skip`` on (``skip`` >
        0, or the first epoch after ``load``: a resumed epoch)."""
        resumed, self._loaded = self._loaded, False
        self.current = loader
        if _stateful(loader):
            if resumed and self.loader_state is not None:
                loader.load_state_dict(self.loader_state)
                self.loader_state = None
                return iter(loader)  # it resumes itself
            if skip:
                self._warn("the stateful loader's saved state is missing")
                return _skipped(iter(loader), skip)
            return iter(loader)
        gen = _generator(loader)
        resumed_gen, self.generator_now = self.generator_now, None
        saved = self.epoch_rng
        if (resumed or skip) and saved is not None and saved["epoch"] == epoch:
            # Inside this epoch (its order may already have been drawn): the
            # same order again, after a load or in a later fit of this Trainer.
            if not _replayable(loader) or (saved["generator"] is None) != (gen is None):
                self._warn("its sampler or dataset cannot be replayed")
                return _skipped(iter(loader), skip)
            return self._replay(loader, gen, saved, skip)
        if skip:
            self._warn("its order at the epoch's start was not saved")
            return _skipped(iter(loader), skip)
        if resumed_gen is not None and gen is not None:
            gen.set_state(resumed_gen)  # where the saved run's generator was
        self.epoch_rng = {
            "epoch": epoch,
            "global": torch.get_rng_state(),
            "generator": None if gen is None else gen.get_state(),
        }
        return iter(loader)

    @staticmethod
    def _replay(
        loader: Any, gen: Optional[torch.Generator], saved: Dict[str, Any], skip: int
    ) -> Iterator[Any]:
        """The epoch's order drawn again from its start states, the first
        ``skip`` batches dropped; torch's global generator is left as the
        saved state had it."""
        now = torch.get_rng_state()
        torch.set_rng_state(saved["global"])
        if gen is not None:
            gen.set_state(saved["generator"])
        it = iter(loader)
        head: list = []
        try:
            for _ in range(skip + 1):  # the order is drawn at the first batch
                head.append(next(it))
        except StopIteration:
            pass
        finally:
            torch.set_rng_state(now)
        return itertools.chain(head[skip:], it)

    def _warn(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"fit: resuming mid-epoch over a torch DataLoader: {why}, so the remaining batches "
                "may differ from the interrupted epoch's (seed the loader's generator, or use a "
                "loader with state_dict / load_state_dict such as torchdata's StatefulDataLoader)",
                RuntimeWarning,
                stacklevel=4,
            )

    # --- the training state ------------------------------------------------------

    def state(self) -> Dict[str, Any]:
        loader, rng = self.current, self.epoch_rng
        stateful = loader is not None and _stateful(loader)
        gen = None if loader is None or stateful else _generator(loader)
        return {
            "epoch_rng": None if rng is None else {k: _copy(v) for k, v in rng.items()},
            "generator_now": None if gen is None else gen.get_state(),
            "loader": loader.state_dict() if stateful else None,
        }

    @staticmethod
    def check(st: Any) -> Optional[str]:
        """What is wrong with a saved data position, or None."""
        if st is None:
            return None
        if not isinstance(st, dict) or set(st) != {"epoch_rng", "generator_now", "loader"}:
            return "not a dict with exactly 'epoch_rng', 'generator_now' and 'loader'"
        now = st["generator_now"]
        if now is not None and (
            not isinstance(now, torch.Tensor) or now.dtype != torch.uint8 or now.dim() != 1
        ):
            return "generator_now must be None or a generator state (a 1-D uint8 tensor)"
        rng = st["epoch_rng"]
        if rng is None:
            return None
        if not isinstance(rng, dict) or set(rng) != {"epoch", "global", "generator"}:
            return "epoch_rng must be a dict with 'epoch', 'global' and 'generator'"
        if isinstance(rng["epoch"], bool) or not isinstance(rng["epoch"], int) or rng["epoch"] < 0:
            return "epoch_rng['epoch'] must be a non-negative int"
        for key in ("global", "generator"):
            v = rng[key]
            if v is None and key == "generator":
                continue
            if not isinstance(v, torch.Tensor) or v.dtype != torch.uint8 or v.dim() != 1:
                return f"epoch_rng['{key}'] must be a generator state (a 1-D uint8 tensor)"
        if rng["global"].numel() != torch.get_rng_state().numel():
            return "epoch_rng['global'] has the wrong size"
        return None

    def load(self, st: Any) -> None:
        st = st or {}
        rng = st.get("epoch_rng")
        self.epoch_rng = None if rng is None else {k: _copy(v) for k, v in rng.items()}
        now = st.get("generator_now")
        self.generator_now = None if now is None else now.clone()
        self.loader_state = st.get("loader")
        self._loaded = True
        self.forget_source()


def _copy(v: Any) -> Any:
    return v.clone() if isinstance(v, torch.Tensor) else v


def _skipped(it: Iterator[Any], n: int) -> Iterator[Any]:
    for _ in range(n):
        try:
            next(it)
        except StopIteration:
            break
    return it
