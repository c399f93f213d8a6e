"""ferrotorch's exception hierarchy.

Every error ferrotorch raises derives from :class:`Error`, and also from the
builtin that fits, so ``except ValueError`` keeps working.
"""


class Error(Exception):
    """Base class of every ferrotorch error."""


class ConfigError(Error, ValueError):
    """A bad hyperparameter, option or name (negative lr, unknown loss...)."""


class ShapeError(Error, ValueError):
    """Tensor shapes that do not fit; the message names both shapes."""


class DTypeError(Error, TypeError):
    """A tensor of the wrong dtype."""


class InputTypeError(Error, TypeError):
    """An argument of the wrong Python type (e.g. a list where a tensor is needed)."""


class GraphError(Error, ValueError):
    """An invalid graph: build errors and bad wiring, naming the node or tag."""


class TagError(Error, KeyError):
    """An unknown tag, path or name."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class TorchError(Error, RuntimeError):
    """A failure reported by libtorch itself."""


class CheckpointError(Error, ValueError):
    """A checkpoint file that is truncated, corrupt, of another architecture,
    or whose entries do not fit the model; names the file and what is wrong.
    The model is left unchanged."""


class FileError(Error, OSError):
    """An operating-system failure on a file (missing, no permission, disk
    full); names the file."""


class DeviceError(Error, ValueError):
    """A tensor on another device than the node or parameters it meets; the
    message names the node, the input's device and the parameters' device."""


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
    "TorchError",
    "CheckpointError",
    "FileError",
    "DeviceError",
    "EarlyStop",
]


class TrainingError(Error, RuntimeError):
    """Training cannot go on: a non-finite loss (naming the step), a bad state file."""


__all__ += ["TrainingError"]
