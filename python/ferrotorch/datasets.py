"""Data sets read from folders, as AxonML and torchvision users expect:
``Mnist(root, train=True)``, ``Cifar10(root, train=True)``,
``Shakespeare(path_or_text, seq_len)``.

The standard files are found and parsed in Rust with the GIL released.
Nothing is ever downloaded: a missing file is a ``FileError`` that lists what
was looked for and where, a malformed one a ``CheckpointError`` that names the
file and what was expected (magic number, size).

Every data set keeps its samples resident as two tensors, ``data`` and
``targets`` (settable, as in torchvision), and works with both loaders:

- ``torch.utils.data.DataLoader(ds, ...)``: ``len(ds)`` and
  ``ds[i] -> (sample, target)``, with ``transform`` / ``target_transform``
  applied there, per sample, every time;
- ``ferrotorch.data.DataLoader(ds, 64, shuffle=True)``: batches are gathered in
  Rust from ``data`` and ``targets`` (through ``__ferrotorch_fields__()``). No
  Python runs per sample there, so a data set with a ``transform`` or
  ``target_transform`` raises ``ConfigError`` instead of silently skipping it:
  transform the resident tensors once (``ds.data = f(ds.data)``) and drop the
  transform, or use torch's DataLoader.
"""

from __future__ import annotations

import operator
import os
from typing import Any, Callable, Optional, Sequence, Union

import torch

from . import _core
from .errors import ConfigError, DTypeError, InputTypeError

__all__ = ["Mnist", "Cifar10", "Shakespeare"]

PathLike = Union[str, "os.PathLike[str]"]
Transform = Optional[Callable[[Any], Any]]


def _no_download(who: str, download: bool) -> None:
    if download:
        raise ConfigError(
            f"{who}: download=True is not supported: ferrotorch never reaches the network. "
            "Download the files yourself and pass the folder that holds them as root."
        )


def _device(who: str, device: Any) -> Optional[torch.device]:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"{who}: unknown device {device!r} ({exc})") from None


def _pixels(who: str, images: torch.Tensor, dtype: Any, device: Any) -> torch.Tensor:
    """uint8 pixels as ``dtype``: floating dtypes scale to [0, 1], uint8 keeps
    the raw bytes. Moved to the device first, while still 1 byte a pixel."""
    if not isinstance(dtype, torch.dtype) or not (dtype.is_floating_point or dtype == torch.uint8):
        raise DTypeError(
            f"{who}: dtype must be a floating-point torch.dtype (pixels / 255) "
            f"or torch.uint8 (raw bytes), got {dtype!r}"
        )
    dev = _device(who, device)
    if dev is not None:
        images = images.to(dev)
    return images if dtype == torch.uint8 else images.to(dtype).div_(255)


class _Resident:
    """A map-style data set over resident ``data`` / ``targets`` tensors."""

    data: torch.Tensor
    targets: torch.Tensor

    def _setup(
        self,
        data: torch.Tensor,
        targets: torch.Tensor,
        transform: Transform,
        target_transform: Transform,
        files: Sequence[str],
    ) -> None:
        self.data = data
        self.targets = targets
        self.transform = transform
        self.target_transform = target_transform
        self.files = list(files)

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def _target(self, i: int) -> Any:
        return int(self.targets[i])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(sample, target)`` with the transforms applied; class labels are
        Python ints, as in torchvision."""
        n = len(self)
        try:
            i = operator.index(index)
        except TypeError:
            raise InputTypeError(
                f"{type(self).__name__}: index must be an integer, got {type(index).__name__}"
            ) from None
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__}: index {index} is out of range for {n} samples")
        x, y = self.data[i], self._target(i)
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __ferrotorch_fields__(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The resident ``(data, targets)`` that ``ferrotorch.data.DataLoader``
        batches in Rust; ConfigError when a transform is set (see the module
        docs)."""
        if self.transform is not None or self.target_transform is not None:
            raise ConfigError(
                f"{type(self).__name__} has a transform or target_transform: ferrotorch's DataLoader "
                "gathers batches in Rust and runs no Python per sample. Apply it to the resident "
                "tensors once (ds.data = f(ds.data); ds.transform = None), or use "
                "torch.utils.data.DataLoader."
            )
        return self.data, self.targets

    def __repr__(self) -> str:
        where = f", files={self.files!r}" if self.files else ""
        return (
            f"{type(self).__name__}(samples={len(self)}, data={list(self.data.shape)} "
            f"{self.data.dtype}{where})"
        )


class _Images(_Resident):
    """An image data set read in Rust by ``_reader(root, train)``, with
    floDl's ``images``/``labels`` names and the byte parsers' constructor."""

    _reader: Any

    def __init__(
        self,
        root: PathLike,
        train: bool = True,
        transform: Transform = None,
        target_transform: Transform = None,
        download: bool = False,
        *,
        dtype: torch.dtype = torch.float32,
        device: Any = None,
    ) -> None:
        who = type(self).__name__
        _no_download(who, download)
        images, labels, files = type(self)._reader(root, bool(train))
        dev = _device(who, device)
        self._setup(
            _pixels(who, images, dtype, dev),
            labels if dev is None else labels.to(dev),
            transform,
            target_transform,
            files,
        )

    @classmethod
    def _parsed(cls, x: torch.Tensor, y: torch.Tensor) -> Any:
        ds = cls.__new__(cls)
        ds._setup(x, y, None, None, ())
        return ds

    @property
    def images(self) -> torch.Tensor:
        """``data`` under floDl's name."""
        return self.data

    @property
    def labels(self) -> torch.Tensor:
        """``targets`` under floDl's name."""
        return self.targets


class Mnist(_Images):
    """MNIST (or any data set in its IDX format, e.g. Fashion-MNIST).

    ``Mnist(root, train=True)`` reads ``train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte`` (``t10k-*`` when ``train=False``), raw or
    ``.gz``, from ``root`` or torchvision's ``root/MNIST/raw``. ``data`` is
    [N, 1, 28, 28] in ``dtype`` (floating: pixels / 255, as torchvision's
    ``ToTensor``; ``torch.uint8``: the raw bytes), ``targets`` is [N] int64,
    both on ``device``. ``files`` lists the files read.
    """

    classes = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]

    _reader = staticmethod(_core.mnist_read)

    @classmethod
    def parse(cls, images: bytes, labels: bytes) -> Mnist:
        """From the bytes of the IDX image and label files (gzipped or not):
        float32 images in [0, 1]. Malformed bytes raise ConfigError."""
        return cls._parsed(*_core.mnist_parse(images, labels))


class Cifar10(_Images):
    """CIFAR-10.

    ``Cifar10(root, train=True)`` reads ``data_batch_1`` .. ``data_batch_5``
    (``test_batch`` when ``train=False``), as binary batches (``*.bin``) from
    ``root`` or ``root/cifar-10-batches-bin``, or as the python pickles from
    ``root`` or ``root/cifar-10-batches-py``. The pickles are decoded in Rust
    without running any code (only plain data and numpy uint8 arrays are
    accepted). ``data`` is [N, 3, 32, 32] in ``dtype`` (floating: / 255;
    ``torch.uint8``: raw), ``targets`` [N] int64, both on ``device``.
    """

    CLASS_NAMES = list(_core.CIFAR10_CLASSES)
    classes = CLASS_NAMES

    _reader = staticmethod(_core.cifar10_read)

    @classmethod
    def parse(cls, batches: Sequence[bytes]) -> Cifar10:
        """From the bytes of binary batch files (records of 1 label byte and
        3072 pixel bytes): float32 images in [0, 1]. Malformed bytes raise
        ConfigError."""
        return cls._parsed(*_core.cifar10_parse(list(batches)))


class Shakespeare(_Resident):
    """A character-level corpus in windows of ``seq_len``.

    ``path_or_text``: a ``str`` containing a newline is the text itself; any
    other ``str`` or ``os.PathLike`` is a UTF-8 file, or a folder holding
    ``input.txt`` (char-rnn's tiny Shakespeare), ``tinyshakespeare.txt`` or
    ``shakespeare.txt``. ``data`` holds non-overlapping windows [N, seq_len]
    int64 and ``targets`` the same windows shifted by one character; the
    vocabulary is the sorted set of characters. ``ds[i]`` is
    ``(data[i], targets[i])``.
    """

    def __init__(
        self,
        path_or_text: PathLike,
        seq_len: int,
        transform: Transform = None,
        target_transform: Transform = None,
        *,
        device: Any = None,
    ) -> None:
        if isinstance(path_or_text, str) and "\n" in path_or_text:
            text, files = path_or_text, []
        elif isinstance(path_or_text, (str, os.PathLike)):
            text, file = _core.text_read(path_or_text)
            files = [file]
        else:
            raise InputTypeError(
                f"Shakespeare: expected a path or a text (str), got {type(path_or_text).__name__}"
            )
        self._build(text, seq_len, transform, target_transform, device, files)

    def _build(
        self,
        text: str,
        seq_len: int,
        transform: Transform,
        target_transform: Transform,
        device: Any,
        files: Sequence[str],
    ) -> None:
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ConfigError(f"Shakespeare: seq_len must be an integer >= 1, got {seq_len!r}")
        core = _core.call("Shakespeare", _core.Shakespeare.parse, text, seq_len)
        dev = _device("Shakespeare", device)
        data, targets = core.data, core.targets
        if dev is not None:
            data, targets = data.to(dev), targets.to(dev)
        self._setup(data, targets, transform, target_transform, files)
        self.vocab: str = core.vocab
        self._index = {c: i for i, c in enumerate(self.vocab)}

    @classmethod
    def parse(cls, text: str, seq_len: int) -> Shakespeare:
        """From the text itself (one line or many)."""
        ds = cls.__new__(cls)
        ds._build(text, seq_len, None, None, None, ())
        return ds

    def _target(self, i: int) -> Any:
        return self.targets[i]

    @property
    def vocab_size(self) -> int:
        """The number of distinct characters."""
        return len(self.vocab)

    def char_to_idx(self, c: str) -> Optional[int]:
        """The index of a character, or None if it is not in the vocabulary."""
        return self._index.get(c)

    def idx_to_char(self, i: int) -> Optional[str]:
        """The character at index ``i``, or None if out of range."""
        return self.vocab[i] if 0 <= i < len(self.vocab) else None

    def decode(self, indices: Sequence[int]) -> str:
        """Indices back to text; an index outside the vocabulary is a ConfigError."""
        out = []
        for i in indices:
            i = int(i)
            if not 0 <= i < len(self.vocab):
                raise ConfigError(f"decode: index {i} is outside the vocabulary (size {len(self.vocab)})")
            out.append(self.vocab[i])
        return "".join(out)
