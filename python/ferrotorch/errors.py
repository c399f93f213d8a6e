"""ferrotorch's exception hierarchy.

The classes are created by the Rust extension (``ferrotorch._core``), which
raises them directly; this module is their public home. Every error derives
from :class:`Error` and from the builtin that fits, so ``except ValueError``
keeps working:

========================  ================  ===================================
class                     builtin           raised for
========================  ================  ===================================
``ConfigError``           ``ValueError``    a bad hyperparameter, option, name
``ShapeError``            ``ValueError``    shapes that do not fit
``DTypeError``            ``TypeError``     a tensor of the wrong dtype
``InputTypeError``        ``TypeError``     an argument of the wrong Python type
``GraphError``            ``ValueError``    an invalid graph or wiring
``TagError``              ``KeyError``      an unknown tag, path, key or name
``OutOfRangeError``       ``IndexError``    an index past the end
``TorchError``            ``RuntimeError``  a failure inside libtorch
``CheckpointError``       ``ValueError``    a corrupt or unfitting file
``FileError``             ``OSError``       an OS failure on a file
``TrainingError``         ``RuntimeError``  a non-finite loss or gradient
``DeviceError``           ``ValueError``    tensors on different devices
``InternalError``         ``RuntimeError``  a ferrotorch bug (panic, own state)
========================  ================  ===================================

Every message names the argument, node, tag, path or file concerned.
"""

from ._core import (
    CheckpointError,
    ConfigError,
    DeviceError,
    DTypeError,
    Error,
    FileError,
    GraphError,
    InputTypeError,
    InternalError,
    OutOfRangeError,
    ShapeError,
    TagError,
    TorchError,
    TrainingError,
)


class EarlyStop(Exception):
    """Raise inside a ``report`` callback to end ``Trainer.fit`` cleanly."""


__all__ = [
    "Error",
    "ConfigError",
    "ShapeError",
    "DTypeError",
    "InputTypeError",
    "GraphError",
    "TagError",
    "OutOfRangeError",
    "TorchError",
    "CheckpointError",
    "FileError",
    "TrainingError",
    "DeviceError",
    "InternalError",
    "EarlyStop",
]
