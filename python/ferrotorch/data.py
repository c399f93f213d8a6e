"""Data: an in-memory ``DataLoader`` iterated in Rust by ``Trainer.fit``,
Kaun-style lazy pipelines (``Data``), and data sets read from folders
(``Mnist``, ``Cifar10``, ``Shakespeare``; see ``ferrotorch.datasets``), which
``DataLoader`` takes directly.

``DataLoader`` is the fast path: batches are gathered in Rust, and
``Trainer.fit`` runs whole epochs without Python. ``Data`` pipelines hold any
Python values and compose like Kaun's ``Data`` module: constructors, then
transformers (``map``, ``batch``, ``shuffle``), then consumers (``iter``,
``fold``, ``to_list``). Consumers do not rewind a pipeline; ``reset()`` does.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, TypeVar

import torch

from ._core import DataLoader, Epoch, permutation
from .datasets import Cifar10, Mnist, Shakespeare
from .errors import ConfigError, InputTypeError, ShapeError

__all__ = ["DataLoader", "Epoch", "Data", "Mnist", "Cifar10", "Shakespeare"]

T = TypeVar("T")
U = TypeVar("U")
Acc = TypeVar("Acc")


def _check_count(what: str, n: int) -> None:
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"{what}: expected n >= 0, got {n!r}")


class Data:
    """A resettable, lazy pipeline of elements.

    Build one with a constructor (``Data.of_array``, ``of_tensor``,
    ``of_tensors``, ``of_fn``, ``repeat``, ``prepare``), chain transformers
    (each returns a new pipeline over the same source), consume it.
    """

    def __init__(
        self,
        next_fn: Callable[[], tuple[bool, Any]],
        reset_fn: Callable[[], None],
        length: Optional[int],
    ) -> None:
        self._next = next_fn
        self._reset = reset_fn
        self._length = length

    # constructors -----------------------------------------------------------

    @staticmethod
    def of_fn(n: int, fn: Callable[[int], T]) -> Data:
        """Yields ``fn(0), fn(1), ..., fn(n - 1)``."""
        _check_count("Data.of_fn", n)
        pos = [0]

        def nxt() -> tuple[bool, Any]:
            if pos[0] >= n:
                return False, None
            v = fn(pos[0])
            pos[0] += 1
            return True, v

        def reset() -> None:
            pos[0] = 0

        return Data(nxt, reset, n)

    @staticmethod
    def of_array(items: Any) -> Data:
        """Yields the elements of a sequence in order."""
        items = list(items)
        return Data.of_fn(len(items), items.__getitem__)

    @staticmethod
    def repeat(n: int, value: T) -> Data:
        """Yields ``value`` exactly ``n`` times."""
        _check_count("Data.repeat", n)
        return Data.of_fn(n, lambda _i: value)

    @staticmethod
    def of_tensor(t: Any) -> Data:
        """Yields slices of ``t`` along its first dimension."""
        t = torch.as_tensor(t)
        return Data.of_fn(t.shape[0], lambda i: t[i])

    @staticmethod
    def of_tensors(pair: tuple[Any, Any]) -> Data:
        """Yields ``(x[i], y[i])`` pairs; the first dimensions must agree."""
        x, y = (torch.as_tensor(t) for t in pair)
        if x.shape[0] != y.shape[0]:
            raise ShapeError(
                f"Data.of_tensors: first dimensions differ ({x.shape[0]} vs {y.shape[0]}); "
                f"shapes {list(x.shape)} and {list(y.shape)}"
            )
        return Data.of_fn(x.shape[0], lambda i: (x[i], y[i]))

    @staticmethod
    def prepare(
        pair: tuple[Any, Any], batch_size: int, shuffle: Optional[int] = None, drop_last: bool = True
    ) -> Data:
        """Batched ``(x_batch, y_batch)`` pairs, gathered in Rust.

        ``shuffle`` is a seed: the order is one permutation fixed when the
        pipeline is made (``reset()`` replays it). ``drop_last`` defaults to
        True, as in Kaun.
        """
        x, y = pair
        loader = DataLoader(
            (x, y),
            batch_size,
            shuffle=shuffle is not None,
            seed=0 if shuffle is None else shuffle,
            drop_last=drop_last,
        )
        state: list[Any] = [loader.epoch(0)]

        def nxt() -> tuple[bool, Any]:
            try:
                return True, next(state[0])
            except StopIteration:
                return False, None

        def reset() -> None:
            state[0] = loader.epoch(0)

        return Data(nxt, reset, loader.num_batches)

    # transformers -----------------------------------------------------------

    def map(self, fn: Callable[[Any], Any]) -> Data:
        """Applies ``fn`` to each element."""

        def nxt() -> tuple[bool, Any]:
            ok, v = self._next()
            return (True, fn(v)) if ok else (False, None)

        return Data(nxt, self._reset, self._length)

    def batch(self, n: int, drop_last: bool = False) -> Data:
        """Lists of ``n`` consecutive elements; a short last batch is kept
        unless ``drop_last``."""
        if not isinstance(n, int) or n <= 0:
            raise ConfigError(f"Data.batch: expected n > 0, got {n!r}")

        def nxt() -> tuple[bool, Any]:
            buf: list = []
            while len(buf) < n:
                ok, v = self._next()
                if not ok:
                    break
                buf.append(v)
            if not buf or (len(buf) < n and drop_last):
                return False, None
            return True, buf

        length = None
        if self._length is not None:
            length = self._length // n if drop_last else -(-self._length // n)
        return Data(nxt, self._reset, length)

    def map_batch(self, n: int, fn: Callable[[list], Any], drop_last: bool = False) -> Data:
        """``batch(n, drop_last).map(fn)``."""
        return self.batch(n, drop_last).map(fn)

    def shuffle(self, seed: int) -> Data:
        """The elements in an order fixed by ``seed`` when called. The
        pipeline's elements are read now (its length must be known)."""
        if self._length is None:
            raise ConfigError("Data.shuffle: requires a pipeline with known length")
        items: list = []
        for _ in range(self._length):
            ok, v = self._next()
            if not ok:
                raise ShapeError(
                    f"Data.shuffle: pipeline ended after {len(items)} of {self._length} elements"
                )
            items.append(v)
        return Data.of_array([items[i] for i in permutation(len(items), seed)])

    # consumers --------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        """Yields the remaining elements (does not reset)."""
        while True:
            ok, v = self._next()
            if not ok:
                return
            yield v

    def iter(self, fn: Callable[[Any], Any]) -> None:
        """Calls ``fn`` on each remaining element."""
        for v in self:
            fn(v)

    def iteri(self, fn: Callable[[int, Any], Any]) -> None:
        """Calls ``fn(i, element)`` with a 0-based index."""
        for i, v in enumerate(self):
            fn(i, v)

    def fold(self, fn: Callable[[Acc, Any], Acc], init: Acc) -> Acc:
        """Folds ``fn`` over the remaining elements."""
        acc = init
        for v in self:
            acc = fn(acc, v)
        return acc

    def to_list(self) -> list:
        """The remaining elements as a list."""
        return list(self)

    def reset(self) -> None:
        """Rewinds the pipeline to its first element."""
        self._reset()

    @property
    def length(self) -> Optional[int]:
        """The number of elements, when known."""
        return self._length

    def __len__(self) -> int:
        if self._length is None:
            raise InputTypeError("len(): this Data pipeline has no known length (its source has none)")
        return self._length

    @staticmethod
    def stack_batch(tensors: list) -> torch.Tensor:
        """Stacks a list of tensors along a new first dimension."""
        return torch.stack(list(tensors))
