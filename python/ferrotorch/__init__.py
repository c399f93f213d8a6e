"""ferrotorch: floDl-style model building and training for PyTorch users.

The training step (forward, loss, backward, clipping, optimizer) runs in Rust
on the same libtorch that ``import torch`` loads, so tensors cross with no
copy and there is one autograd engine.
"""

import torch  # must come first: the extension uses the libtorch torch loaded

_TORCH = torch.__version__.split("+")[0]

try:
    from . import _core
except ImportError as exc:  # a torch whose symbols differ from the build's
    raise ImportError(
        f"ferrotorch's extension could not be loaded with torch {torch.__version__}: {exc}. "
        "ferrotorch is built for torch==2.11.0; install that version."
    ) from exc

if _TORCH != _core.__torch_version__:
    raise ImportError(
        f"ferrotorch was built for torch {_core.__torch_version__} but torch {torch.__version__} "
        f"is installed; install torch=={_core.__torch_version__}."
    )

from . import (  # noqa: E402
    amp,
    callbacks,
    checkpoint,
    data,
    distributed,
    errors,
    losses,
    metrics,
    nn,
    optim,
    sched,
    schedule,
    styles,
)
from ._core import (  # noqa: E402
    MergeOp,
    Profile,
    Reduce,
    Trend,
    TrendGroup,
    clip_by_global_norm,
    clip_grad_norm,
    clip_grad_value,
    global_norm,
    manual_seed,
)
from .amp import (  # noqa: E402
    AutocastGuard,
    GradScaler,
    autocast,
    cast_parameters,
    is_autocast_enabled,
    no_grad,
)
from .builder import FlowBuilder  # noqa: E402
from .builtins import (  # noqa: E402
    ArgmaxSelector,
    FixedSelector,
    LearnedHalt,
    Reshape,
    SigmoidRouter,
    SoftmaxRouter,
    StateAdd,
    ThresholdHalt,
)
from .errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DeviceError,
    DTypeError,
    EarlyStop,
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
from .functional import value_and_grad, value_and_grad_aux  # noqa: E402
from .graph_module import Graph  # noqa: E402
from .history import History  # noqa: E402
from .monitor import Monitor, format_bytes, format_duration, format_number  # noqa: E402
from .progress import ProgressBar  # noqa: E402
from .recompute import grad_checkpoint, grad_checkpoint_sequential  # noqa: E402
from .train import Trainer  # noqa: E402

__version__ = _core.__version__

__all__ = [
    "MergeOp",
    "StateAdd",
    "Reshape",
    "SoftmaxRouter",
    "SigmoidRouter",
    "FixedSelector",
    "ArgmaxSelector",
    "ThresholdHalt",
    "LearnedHalt",
    "FlowBuilder",
    "Graph",
    "Reduce",
    "Trend",
    "TrendGroup",
    "Profile",
    "Trainer",
    "History",
    "Monitor",
    "ProgressBar",
    "format_bytes",
    "format_duration",
    "format_number",
    "EarlyStop",
    "clip_grad_norm",
    "clip_grad_value",
    "global_norm",
    "clip_by_global_norm",
    "GradScaler",
    "autocast",
    "AutocastGuard",
    "is_autocast_enabled",
    "cast_parameters",
    "no_grad",
    "amp",
    "checkpoint",
    "callbacks",
    "distributed",
    "styles",
    "manual_seed",
    "value_and_grad",
    "value_and_grad_aux",
    "grad_checkpoint",
    "grad_checkpoint_sequential",
    "data",
    "losses",
    "metrics",
    "nn",
    "optim",
    "sched",
    "schedule",
    "errors",
    "Error",
    "ConfigError",
    "ShapeError",
    "DTypeError",
    "InputTypeError",
    "GraphError",
    "TagError",
    "TorchError",
    "TrainingError",
    "CheckpointError",
    "FileError",
    "DeviceError",
    "OutOfRangeError",
    "InternalError",
]
