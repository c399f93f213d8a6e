"""Model checkpoints: floDl's ``.fdl`` format and safetensors.

``.fdl`` files are byte-compatible with floDl: magic ``FDLC``, version 2
(1 and 2 are read), the graph's 32-byte structural hash (zeros for none),
then parameters and buffers as ``name, dims, dtype tag, raw little-endian
bytes``. A path ending in ``.gz`` is gzip-compressed.

Every write is atomic: the data goes to a temporary file in the same folder
(``.<name>.<pid>.<n>.tmp``), is fsynced, then renamed over the destination,
so an interruption leaves the previous file intact. A process killed with
SIGKILL mid-save may leave that temporary file behind; it is never read, and
the next save into the same folder (from any ferrotorch writer) removes the
temporary files whose writer process is gone, never a live writer's. Every load parses and validates the whole file (magic,
version, sizes, dtypes, shapes, hash) before the first parameter is written:
a truncated or corrupt file raises :class:`~ferrotorch.CheckpointError`
naming the file and what is wrong, and the model is unchanged. A missing or
unreadable file raises :class:`~ferrotorch.FileError` (an ``OSError``).

Matching is by exact name. A matched name whose shape differs is an error;
a dtype difference is cast to the model's dtype; values go to the model
tensor's device and are copied in place (optimizers keep working).

Named tensors can stand in for a graph anywhere: a dict ``{name: tensor}``,
an iterable of ``(name, tensor)`` pairs, or a ``torch.nn.Module`` (its
``state_dict(keep_vars=True)``).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union

import torch

from . import _core
from ._core import Graph, LoadReport, MigrateReport

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_keys",
    "checkpoint_version",
    "migrate_checkpoint",
    "save_safetensors",
    "load_safetensors",
    "safetensors_metadata",
    "LoadReport",
    "MigrateReport",
    "FORMAT_VERSION",
]

#: The ``.fdl`` version written (versions 1 and 2 are read).
FORMAT_VERSION: int = _core.FDL_FORMAT_VERSION

PathLike = Union[str, "os.PathLike[str]"]
Target = Union[Graph, Mapping[str, torch.Tensor], Iterable[Tuple[str, torch.Tensor]], torch.nn.Module]


def _target(obj: Any) -> Any:
    # A Graph is a torch.nn.Module too: keep it whole (its hash is written),
    # with any tensor that replaced one of its own adopted first.
    sync = getattr(obj, "_ft_sync", None) if isinstance(obj, Graph) else None
    if sync is not None:
        sync()
    if isinstance(obj, torch.nn.Module) and not isinstance(obj, Graph):
        return obj.state_dict(keep_vars=True)
    return obj


def save_checkpoint(target: Target, path: PathLike) -> None:
    """Saves ``target`` to ``path`` as ``.fdl`` (gzip when it ends in ``.gz``).

    A :class:`Graph` writes its parameters then buffers with floDl names and
    its structural hash; named tensors are written in their order with a
    zero hash. Only float16, bfloat16, float32, float64, int32 and int64
    tensors fit the format (others raise ``DTypeError``; use safetensors).
    """
    _core.save_checkpoint(_target(target), path)


def load_checkpoint(path: PathLike, target: Target, strict_hash: bool = False) -> LoadReport:
    """Loads a ``.fdl`` file by name into a graph or named tensors.

    floDl's partial load: entries are matched by exact name, the rest is
    reported in the returned :class:`LoadReport` (``loaded``, ``skipped``,
    ``missing``). The structural hash is checked only for a graph with
    ``strict_hash=True`` (as :meth:`Graph.load_checkpoint` does by default).
    """
    return _core.load_checkpoint(path, _target(target), strict_hash)


def checkpoint_keys(path: PathLike) -> list:
    """Entry names of a ``.fdl`` file in file order (the file is validated)."""
    return _core.checkpoint_keys(path)


def checkpoint_version(path: PathLike) -> int:
    """The version field of a ``.fdl`` file: 1 (floDl 0.1 naming) or 2."""
    return _core.checkpoint_version(path)


def migrate_checkpoint(src: PathLike, dst: PathLike, target: Target) -> MigrateReport:
    """Rewrites ``src`` into ``dst`` under ``target``'s current names.

    Model names (parameters then buffers) first keep an entry of the same
    name and shape (``unchanged``); each one still open then takes the first
    unused entry, in file order, with equal shape and dtype (``remapped``
    as ``(old, new)``). Entries left over are ``dropped``; names with no
    entry are ``missing``; ``is_complete()`` is true when both are empty.
    ``dst`` is version 2 with a zero hash, so it loads into the new graph.
    ``src == dst`` is safe.
    """
    return _core.migrate_checkpoint(src, dst, _target(target))


def save_safetensors(target: Target, path: PathLike, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Saves a graph's parameters and buffers (floDl names), or named
    tensors, as a safetensors file readable by the ``safetensors`` package.
    ``metadata`` is stored as the ``__metadata__`` string map. Atomic."""
    md = dict(metadata) if metadata is not None else None
    _core.save_safetensors(_target(target), path, md)


def load_safetensors(
    path: PathLike, target: Optional[Target] = None
) -> Union[Dict[str, torch.Tensor], LoadReport]:
    """Reads a safetensors file (from ferrotorch or the ``safetensors`` package).

    Without ``target``: ``{name: tensor}`` on the CPU in the file's dtypes.
    With a graph or named tensors: loads by exact name (shapes must match,
    dtypes are cast) after validating the whole file, and returns a
    :class:`LoadReport`.
    """
    if target is None:
        return _core.load_safetensors(path, None)
    return _core.load_safetensors(path, _target(target))


def safetensors_metadata(path: PathLike) -> Dict[str, str]:
    """The ``__metadata__`` map of a safetensors file (``{}`` when absent)."""
    return dict(_core.safetensors_metadata(path))
