"""Type stubs for ferrotorch's Rust extension."""

import os
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    final,
)

import numpy as np
import torch
from typing_extensions import Self, disjoint_base

# Conventions (`make stubtest`, part of `make lint`, checks this file against the build):
# - pyo3 classes are built in `__new__`, so constructors are stubbed as `__new__`.
# - A class Python cannot subclass is `@final`.
# - Type aliases exist only here, so their names start with `_`.

_TensorLike = Union[torch.Tensor, np.ndarray]
_PathLike = Union[str, "os.PathLike[str]"]
_NamedTensors = Union[Mapping[str, torch.Tensor], Iterable[Tuple[str, torch.Tensor]]]

__torch_version__: str
__version__: str

def call(what: str, callable: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``callable(*args, **kwargs)`` with ferrotorch's errors for what pyo3 raises (see rust/python/boundary.rs)."""

def manual_seed(seed: int) -> None:
    """Seeds torch's generators (CPU and every CUDA device); seed in [0, 2**64)."""

# The exception hierarchy (created by the extension; public home: ferrotorch.errors).
class Error(Exception):
    """Base class of every ferrotorch error."""

class ConfigError(Error, ValueError):
    """A bad hyperparameter, option or name; names the argument, the value and the rule."""

class ShapeError(Error, ValueError):
    """Tensor shapes that do not fit; the message names both shapes."""

class DTypeError(Error, TypeError):
    """A tensor of the wrong dtype."""

class InputTypeError(Error, TypeError):
    """An argument of the wrong Python type; names the argument."""

class GraphError(Error, ValueError):
    """An invalid graph: build errors and bad wiring, naming the node or tag."""

class TagError(Error, KeyError):
    """An unknown tag, path, key or name."""

class OutOfRangeError(Error, IndexError):
    """An index past the end of a sequence."""

class TorchError(Error, RuntimeError):
    """A failure reported by libtorch itself."""

class CheckpointError(Error, ValueError):
    """A truncated, corrupt, foreign or unfitting file; names the file and the field."""

class FileError(Error, OSError):
    """An operating-system failure on a file; names the file."""

class TrainingError(Error, RuntimeError):
    """Training cannot go on: a non-finite loss or gradient, named by step and batch."""

class DeviceError(Error, ValueError):
    """A tensor on another device than the node or parameters it meets; names both."""

class InternalError(Error, RuntimeError):
    """A bug in ferrotorch itself (a Rust panic caught at the boundary)."""

class PanicException(BaseException):
    """pyo3's panic exception; ferrotorch's boundary turns it into InternalError."""

def _grad_checkpoint(
    fn_: Callable[..., Any],
    inputs: Sequence[torch.Tensor],
    params: Sequence[torch.Tensor],
    preserve_rng_state: bool,
) -> List[torch.Tensor]:
    """Internal: ``ferrotorch.grad_checkpoint`` after argument handling."""

def _grad_checkpoint_sequential(
    modules: Sequence[_ModuleLike], segments: int, x: _TensorLike, preserve_rng_state: bool
) -> torch.Tensor:
    """Internal: ``ferrotorch.grad_checkpoint_sequential`` after argument handling."""

def _panic_for_tests(msg: str) -> None:
    """Panics inside the extension (tests check it surfaces as InternalError);
    only in builds with the ``test-hooks`` feature."""

def _core_error_for_tests(variant: str, msg: str) -> None:
    """Raises what the core error ``variant`` becomes in Python (tests check the mapping)."""

@disjoint_base
class Module:
    """Base class of every ferrotorch module."""

    @property
    def name(self) -> str: ...
    @property
    def training(self) -> Optional[bool]:
        """The training mode of a module that has one (dropout, batch norm), else None."""
    def __call__(self, x: _TensorLike) -> torch.Tensor: ...
    def forward(self, x: _TensorLike) -> torch.Tensor: ...
    def parameters(self) -> List[torch.Tensor]: ...
    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> List[Tuple[str, torch.Tensor]]:
        """torch's keywords: ``prefix`` joins with '.'; a Graph with ``recurse=False`` lists none."""
    def buffers(self) -> List[torch.Tensor]: ...
    def named_buffers(self) -> List[Tuple[str, torch.Tensor]]: ...
    def double(self) -> "Module": ...
    def float(self) -> "Module": ...
    def to(self, *args: Any, device: Any = None, dtype: Any = None, non_blocking: bool = False) -> "Module":
        """torch's ``Module.to``: device, dtype, (device, dtype) or a tensor; in place."""
    def train(self, mode: bool = True) -> "Module": ...
    def eval(self) -> "Module": ...
    def end_step(self) -> None: ...

@final
class Linear(Module):
    def __new__(
        cls, in_features: int, out_features: int, bias: bool = True, device: Optional[str] = None
    ) -> Linear: ...
    @property
    def weight(self) -> torch.Tensor: ...
    @property
    def bias(self) -> Optional[torch.Tensor]: ...
    @property
    def in_features(self) -> int: ...
    @property
    def out_features(self) -> int: ...

@final
class LayerNorm(Module):
    def __new__(cls, size: int, eps: float = 1e-5, device: Optional[str] = None) -> LayerNorm: ...
    @property
    def weight(self) -> torch.Tensor: ...
    @property
    def bias(self) -> torch.Tensor: ...
    @property
    def eps(self) -> float: ...

@final
class GELU(Module):
    def __new__(cls, approximate: str = "none") -> GELU: ...

@final
class ReLU(Module):
    def __new__(cls) -> ReLU: ...

@final
class Identity(Module):
    def __new__(cls) -> Identity: ...

_Size = Union[int, Sequence[int]]

class _Unit(Module):
    def __new__(cls) -> Self: ...

@final
class Sigmoid(_Unit): ...

@final
class Tanh(_Unit): ...

@final
class SiLU(_Unit): ...

@final
class Mish(_Unit): ...

@final
class SELU(_Unit): ...

@final
class Hardswish(_Unit): ...

@final
class Hardsigmoid(_Unit): ...

@final
class LeakyReLU(Module):
    def __new__(cls, negative_slope: float = 0.01) -> LeakyReLU: ...

@final
class ELU(Module):
    def __new__(cls, alpha: float = 1.0) -> ELU: ...

@final
class Softplus(Module):
    def __new__(cls, beta: float = 1.0, threshold: float = 20.0) -> Softplus: ...

@final
class Softmax(Module):
    def __new__(cls, dim: int) -> Softmax: ...

@final
class LogSoftmax(Module):
    def __new__(cls, dim: int) -> LogSoftmax: ...

@final
class PReLU(Module):
    def __new__(cls, num_parameters: int = 1, init: float = 0.25, device: Optional[str] = None) -> PReLU: ...
    weight: torch.Tensor

class _Conv(Module):
    def __new__(
        cls,
        in_channels: int,
        out_channels: int,
        kernel_size: _Size,
        stride: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        dilation: Optional[_Size] = None,
        groups: int = 1,
        bias: bool = True,
        device: Optional[str] = None,
    ) -> Self: ...
    weight: torch.Tensor
    bias: Optional[torch.Tensor]

@final
class Conv1d(_Conv): ...

@final
class Conv2d(_Conv): ...

@final
class Conv3d(_Conv): ...

class _ConvTranspose(Module):
    def __new__(
        cls,
        in_channels: int,
        out_channels: int,
        kernel_size: _Size,
        stride: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        output_padding: Optional[_Size] = None,
        groups: int = 1,
        bias: bool = True,
        dilation: Optional[_Size] = None,
        device: Optional[str] = None,
    ) -> Self: ...
    weight: torch.Tensor
    bias: Optional[torch.Tensor]

@final
class ConvTranspose1d(_ConvTranspose): ...

@final
class ConvTranspose2d(_ConvTranspose): ...

@final
class ConvTranspose3d(_ConvTranspose): ...

@final
class RMSNorm(Module):
    def __new__(cls, size: int, eps: float = 1e-5, device: Optional[str] = None) -> RMSNorm: ...
    weight: torch.Tensor

class _BatchNorm(Module):
    def __new__(
        cls,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        device: Optional[str] = None,
    ) -> Self: ...
    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

@final
class BatchNorm(_BatchNorm): ...

@final
class BatchNorm2d(_BatchNorm): ...

@final
class GroupNorm(Module):
    def __new__(
        cls,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Optional[str] = None,
    ) -> GroupNorm: ...
    weight: Optional[torch.Tensor]
    bias: Optional[torch.Tensor]

@final
class InstanceNorm(Module):
    def __new__(
        cls,
        num_features: int,
        affine: bool = False,
        eps: float = 1e-5,
        device: Optional[str] = None,
    ) -> InstanceNorm: ...
    weight: Optional[torch.Tensor]
    bias: Optional[torch.Tensor]

class _Dropout(Module):
    def __new__(cls, p: float = 0.5) -> Self: ...

@final
class Dropout(_Dropout): ...

@final
class Dropout2d(_Dropout): ...

@final
class AlphaDropout(_Dropout): ...

@final
class Embedding(Module):
    def __new__(
        cls,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: Optional[int] = None,
        device: Optional[str] = None,
    ) -> Embedding: ...
    weight: torch.Tensor

@final
class EmbeddingBag(Module):
    def __new__(
        cls,
        num_embeddings: int,
        embedding_dim: int,
        mode: str = "mean",
        device: Optional[str] = None,
    ) -> EmbeddingBag: ...
    weight: torch.Tensor
    def forward_bag(self, indices: _TensorLike, offsets: _TensorLike) -> torch.Tensor: ...
    def __call__(  # type: ignore[override]
        self, input: _TensorLike, offsets: Optional[_TensorLike] = None
    ) -> torch.Tensor: ...

@final
class GRUCell(Module):
    def __new__(
        cls, input_size: int, hidden_size: int, bias: bool = True, device: Optional[str] = None
    ) -> GRUCell: ...
    def __call__(  # type: ignore[override]
        self, input: _TensorLike, hx: Optional[_TensorLike] = None
    ) -> torch.Tensor: ...
    def forward_step(self, input: _TensorLike, hx: Optional[_TensorLike] = None) -> torch.Tensor: ...
    @property
    def weight_ih(self) -> torch.Tensor: ...
    @property
    def weight_hh(self) -> torch.Tensor: ...
    @property
    def bias_ih(self) -> Optional[torch.Tensor]: ...
    @property
    def bias_hh(self) -> Optional[torch.Tensor]: ...

@final
class LSTMCell(Module):
    def __new__(
        cls, input_size: int, hidden_size: int, bias: bool = True, device: Optional[str] = None
    ) -> LSTMCell: ...
    def __call__(  # type: ignore[override]
        self, input: _TensorLike, hx: Optional[Tuple[_TensorLike, _TensorLike]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]: ...
    def forward_step(self, input: _TensorLike, state: Optional[_TensorLike] = None) -> torch.Tensor: ...
    @property
    def weight_ih(self) -> torch.Tensor: ...
    @property
    def weight_hh(self) -> torch.Tensor: ...
    @property
    def bias_ih(self) -> Optional[torch.Tensor]: ...
    @property
    def bias_hh(self) -> Optional[torch.Tensor]: ...

class _Rnn(Module):
    def __new__(
        cls,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        device: Optional[str] = None,
    ) -> Self: ...
    @property
    def batch_first(self) -> bool: ...

@final
class GRU(_Rnn):
    def forward_seq(
        self, input: _TensorLike, h0: Optional[_TensorLike] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]: ...

@final
class LSTM(_Rnn):
    def forward_seq(
        self, input: _TensorLike, hx: Optional[Tuple[_TensorLike, _TensorLike]] = None
    ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]: ...

@final
class Unroll(Module):
    def __new__(cls, cell: Union[GRUCell, LSTMCell, torch.nn.Module]) -> Unroll: ...

@final
class MultiheadAttention(Module):
    def __new__(
        cls, embed_dim: int, num_heads: int, bias: bool = True, device: Optional[str] = None
    ) -> MultiheadAttention: ...
    def forward_ext(
        self,
        query: _TensorLike,
        key: _TensorLike,
        value: _TensorLike,
        attn_mask: Optional[_TensorLike] = None,
        key_padding_mask: Optional[_TensorLike] = None,
    ) -> torch.Tensor: ...
    @property
    def embed_dim(self) -> int: ...
    @property
    def num_heads(self) -> int: ...

@final
class Bilinear(Module):
    def __new__(
        cls,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Optional[str] = None,
    ) -> Bilinear: ...
    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    def __call__(  # type: ignore[override]
        self, input1: _TensorLike, input2: Optional[_TensorLike] = None
    ) -> torch.Tensor: ...

class _MaxPool(Module):
    def __new__(
        cls,
        kernel_size: _Size,
        stride: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        dilation: Optional[_Size] = None,
        ceil_mode: bool = False,
    ) -> Self: ...

@final
class MaxPool1d(_MaxPool): ...

@final
class MaxPool2d(_MaxPool): ...

class _AvgPool(Module):
    def __new__(
        cls,
        kernel_size: _Size,
        stride: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> Self: ...

@final
class AvgPool1d(_AvgPool): ...

@final
class AvgPool2d(_AvgPool): ...

@final
class AdaptiveAvgPool2d(Module):
    def __new__(cls, output_size: _Size) -> AdaptiveAvgPool2d: ...

@final
class AdaptiveMaxPool2d(Module):
    def __new__(cls, output_size: _Size) -> AdaptiveMaxPool2d: ...

@final
class PixelShuffle(Module):
    def __new__(cls, upscale_factor: int) -> PixelShuffle: ...

@final
class PixelUnshuffle(Module):
    def __new__(cls, downscale_factor: int) -> PixelUnshuffle: ...

@final
class Upsample(Module):
    def __new__(
        cls,
        size: Optional[_Size] = None,
        scale_factor: Optional[Union[float, Sequence[float]]] = None,
        mode: str = "nearest",
        align_corners: Optional[bool] = None,
    ) -> Upsample: ...

@final
class Unfold(Module):
    def __new__(
        cls,
        kernel_size: _Size,
        dilation: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        stride: Optional[_Size] = None,
    ) -> Unfold: ...

@final
class Fold(Module):
    def __new__(
        cls,
        output_size: _Size,
        kernel_size: _Size,
        dilation: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        stride: Optional[_Size] = None,
    ) -> Fold: ...

@final
class Flatten(Module):
    def __new__(cls, start_dim: int = 1, end_dim: int = ...) -> Flatten: ...

@final
class Select(Module):
    def __new__(cls, dim: int, index: int) -> Select: ...

@final
class AddParameter(Module):
    def __new__(cls, *shape: Union[int, Sequence[int]], device: Optional[str] = None) -> AddParameter: ...
    @property
    def weight(self) -> torch.Tensor: ...

@final
class ZeroPad2d(Module):
    def __new__(cls, padding: _Size) -> ZeroPad2d: ...

@final
class ReflectionPad2d(Module):
    def __new__(cls, padding: _Size) -> ReflectionPad2d: ...

def init_kaiming_uniform(
    shape: _Size, fan_in: int, a: float = 0.0, device: Optional[str] = None
) -> torch.Tensor: ...
def init_kaiming_normal(
    shape: _Size, fan_in: int, a: float = 0.0, device: Optional[str] = None
) -> torch.Tensor: ...
def init_xavier_uniform(
    shape: _Size, fan_in: int, fan_out: int, gain: float = 1.0, device: Optional[str] = None
) -> torch.Tensor: ...
def init_xavier_normal(
    shape: _Size, fan_in: int, fan_out: int, gain: float = 1.0, device: Optional[str] = None
) -> torch.Tensor: ...
def init_orthogonal(shape: _Size, gain: float = 1.0, device: Optional[str] = None) -> torch.Tensor: ...
def init_trunc_normal(
    shape: _Size,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = ...,
    b: float = 2.0,
    device: Optional[str] = None,
) -> torch.Tensor: ...
def init_uniform(
    shape: _Size, low: float = 0.0, high: float = 1.0, device: Optional[str] = None
) -> torch.Tensor: ...
def init_normal(
    shape: _Size, mean: float = 0.0, std: float = 1.0, device: Optional[str] = None
) -> torch.Tensor: ...
def init_uniform_bias(shape: _Size, fan_in: int, device: Optional[str] = None) -> torch.Tensor: ...

_ModuleLike = Union[Module, torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]

@final
class MergeOp:
    """How ``.merge()`` combines streams."""

    ADD: MergeOp
    MEAN: MergeOp

@final
class StateAdd(Module):
    """x + Σrefs (identity without refs): the usual forward-ref target."""

    def __new__(cls) -> StateAdd: ...

@final
class Reshape(Module):
    def __new__(cls, shape: Sequence[int]) -> Reshape: ...

@final
class SoftmaxRouter(Module):
    def __new__(cls, dim: int, n: int) -> SoftmaxRouter: ...

@final
class SigmoidRouter(Module):
    def __new__(cls, dim: int, n: int) -> SigmoidRouter: ...

@final
class FixedSelector(Module):
    def __new__(cls, index: int) -> FixedSelector: ...

@final
class ArgmaxSelector(Module):
    def __new__(cls, dim: int, n: int) -> ArgmaxSelector: ...

@final
class ThresholdHalt(Module):
    def __new__(cls, threshold: float) -> ThresholdHalt: ...

@final
class LearnedHalt(Module):
    def __new__(cls, dim: int) -> LearnedHalt: ...

@final
class FlowBuilder:
    """floDl's fluent graph builder; errors surface at build() as GraphError."""

    def __new__(cls, module: Optional[_ModuleLike] = None) -> FlowBuilder: ...
    @staticmethod
    def from_(module: _ModuleLike) -> "FlowBuilder": ...
    @staticmethod
    def new() -> "FlowBuilder": ...
    def through(self, module: _ModuleLike) -> "FlowBuilder": ...
    def also(self, module: _ModuleLike) -> "FlowBuilder": ...
    def tag(self, name: str) -> "FlowBuilder": ...
    def checkpoint(self) -> "FlowBuilder":
        """Gradient checkpointing for the module just added (every branch after
        ``split``): activations recomputed in backward; hash and names unchanged."""
    def also_with(self, skip: _ModuleLike, main: _ModuleLike) -> "FlowBuilder":
        """skip(stream) + main(stream)."""
    def fork(self, module: _ModuleLike) -> "FlowBuilder":
        """A side branch; the stream is unchanged and the next ``.tag()`` names the branch."""
    def split(self, modules: Sequence[_ModuleLike]) -> "FlowBuilder":
        """One open stream per module, each fed the current stream."""
    def merge(self, op: MergeOp = ...) -> "FlowBuilder":
        """Joins open streams: MergeOp.ADD (sum, the default) or MergeOp.MEAN."""
    def tag_group(self, name: str) -> "FlowBuilder":
        """Tags every open stream ``name_0, name_1, ...``."""
    def input(self, *names: str) -> "FlowBuilder":
        """Auxiliary graph inputs: ``graph(x, aux1, ...)`` afterwards."""
    def using(self, *tags: str) -> "FlowBuilder":
        """Wires tags into the target as named inputs (backward or forward refs)."""
    def loop_body(self, body: _ModuleLike) -> "LoopBuilder":
        """Starts a loop over ``body``; finish with for_n, while_cond or until_cond."""
    def gate(self, router: _ModuleLike, experts: Sequence[_ModuleLike]) -> "FlowBuilder":
        """Soft routing over experts weighted by the router's output."""
    def switch(self, router: _ModuleLike, branches: Sequence[_ModuleLike]) -> "FlowBuilder":
        """Hard routing: only the branch the router selects runs."""
    def map(self, body: _ModuleLike) -> "MapBuilder":
        """Starts a map over ``body``: each, batched().each, over(tag) or slices(n)."""
    def label(self, name: str) -> "FlowBuilder":
        """Labels the graph (for trees and paths; not hashed)."""
    def internal(self, tag: str) -> "FlowBuilder":
        """Hides a tag from path resolution in parent graphs."""
    def build(self, verbose: bool = False) -> "Graph":
        """Validates the recorded graph and returns it (GraphError otherwise)."""

@final
class LoopBuilder:
    """``builder.loop_body(body)``: choose how the loop ends."""

    def for_n(self, n: int) -> FlowBuilder: ...
    def while_cond(self, cond: _ModuleLike, max_iter: int) -> FlowBuilder: ...
    def until_cond(self, cond: _ModuleLike, max_iter: int) -> FlowBuilder: ...

@final
class MapBuilder:
    """``builder.map(body)``: choose how the body is applied."""

    def batched(self) -> "MapBuilder": ...
    def each(self) -> FlowBuilder: ...
    def over(self, tag: str) -> FlowBuilder: ...
    def slices(self, n: int) -> FlowBuilder: ...

def _node_modules(graph: Graph) -> list[tuple[str, tuple[int, Any, list[Any]]]]:
    """[(name, (key, object, parts))] of the modules a graph's nodes run."""

def _module_key(ob: Any) -> int | None:
    """The key of a core module (a layer's core, a graph), or None."""

def _set_graph_type(cls: type) -> None:
    """Graphs from ``build()`` / ``subgraph()`` are made as ``cls(core_graph)``."""

@disjoint_base
class Graph(Module):
    def set_optimizer(self, optimizer: Optimizer) -> None: ...
    def set_scheduler(self, schedule: Optional[_ScheduleLike] = None) -> None: ...
    def set_process_group(self, name: Optional[str] = None) -> None: ...
    def set_lr_scale(self, factor: float) -> None: ...
    def step(self) -> None: ...
    def training_step(self) -> int: ...
    def structural_hash(self) -> str: ...
    def __call__(self, *inputs: _TensorLike) -> torch.Tensor: ...  # type: ignore[override]
    def forward(self, *inputs: _TensorLike) -> torch.Tensor: ...  # type: ignore[override]
    def forward_multi(self, inputs: Sequence[_TensorLike]) -> torch.Tensor: ...
    def __repr__(self) -> str:
        """The module tree as torch prints it: one ``(node_id): child`` line per node."""
    def named_buffers(self) -> List[Tuple[str, torch.Tensor]]: ...
    def tagged(self, tag: str) -> Optional[torch.Tensor]: ...
    def tag_names(self) -> List[str]: ...
    def node_ids(self) -> List[str]: ...
    @property
    def training(self) -> bool: ...
    @property
    def num_inputs(self) -> int: ...
    def step_count(self) -> int: ...
    def detach_state(self) -> None: ...
    def reset_state(self) -> None: ...
    def __len__(self) -> int: ...
    # torch.nn.Module support (ferrotorch.Graph, graph_module.py)
    def __new__(cls, core: "Graph") -> "Graph": ...
    def _forward_with(
        self, originals: Sequence[torch.Tensor], substitutes: Sequence[torch.Tensor], *inputs: _TensorLike
    ) -> torch.Tensor: ...
    # observation, trends, profiling, Graphviz
    def collect(self, tags: Union[str, Sequence[str]]) -> None: ...
    def collect_with(self, tags: Union[str, Sequence[str]], reduce: "Reduce") -> None: ...
    def record(self, tag: str, values: Union[float, Sequence[float]]) -> None: ...
    def record_scalar(self, tag: str, value: float) -> None: ...
    def collected(self, tag: str) -> List[float]: ...
    def flush(self, tags: Optional[Union[str, Sequence[str]]] = None) -> None: ...
    def flush_local(self, tags: Optional[Union[str, Sequence[str]]] = None) -> None: ...
    def flush_count(self) -> int: ...
    def trend(self, tag: str) -> "Trend": ...
    def trends(self, tags: Union[str, Sequence[str]]) -> "TrendGroup": ...
    def reset_trend(self, tags: Optional[Union[str, Sequence[str]]] = None) -> None: ...
    def latest_metrics(self) -> List[Tuple[str, float]]: ...
    def latest_metrics_local(self) -> List[Tuple[str, float]]: ...
    def record_at(self, path: str, value: float) -> None: ...
    def trend_at(self, path: str) -> "Trend": ...
    def collect_at(self, paths: Union[str, Sequence[str]]) -> None: ...
    def eta(self, total_epochs: int) -> float: ...
    def tag_group(self, name: str) -> Optional[List[str]]: ...
    def end_epoch(self) -> None: ...
    def epoch_count(self) -> int: ...
    def dot(self) -> str: ...
    def svg(self, path: Optional[Union[str, "os.PathLike[str]"]] = None) -> bytes: ...
    def enable_profiling(self) -> None: ...
    def disable_profiling(self) -> None: ...
    def profiling(self) -> bool: ...
    def profile(self) -> Optional["Profile"]: ...
    def timing(self, tag: str) -> float: ...
    def collect_timings(self, tags: Optional[Union[str, Sequence[str]]] = None) -> None: ...
    def flush_timings(self, tags: Optional[Union[str, Sequence[str]]] = None) -> None: ...
    def timing_trend(self, tag: str) -> "Trend": ...
    def timing_trends(self, tags: Union[str, Sequence[str]]) -> "TrendGroup": ...
    def reset_timing_trend(self, tags: Optional[Union[str, Sequence[str]]] = None) -> None: ...
    # parameters by name and path, freezing, subgraphs, checkpoints
    def state_dict(self) -> Dict[str, torch.Tensor]: ...
    def load_state_dict(
        self, state: Mapping[str, torch.Tensor], strict: bool = True
    ) -> Tuple[List[str], List[str]]: ...
    @property
    def label(self) -> Optional[str]: ...
    def end_sequence(self) -> None: ...
    def has_state(self) -> bool: ...
    def short_hash(self) -> str: ...
    def validate_path(self, path: str) -> str: ...
    def parameters_at(self, path: str) -> List[torch.Tensor]: ...
    def named_parameters_at(self, path: str) -> List[Tuple[str, torch.Tensor]]: ...
    def freeze(self, path: str) -> int: ...
    def thaw(self, path: str) -> int: ...
    def is_frozen(self, path: str) -> bool: ...
    def subgraph(self, path: str) -> "Graph": ...
    def tree_children(self) -> List[str]: ...
    def tree_summary(self) -> str: ...
    def save_checkpoint(self, path: _PathLike) -> None:
        """Saves parameters then buffers with the structural hash as floDl's .fdl
        (gzip when the path ends in .gz); atomic."""
    def load_checkpoint(self, path: _PathLike, strict_hash: bool = True) -> "LoadReport":
        """Loads a .fdl file by name after validating all of it; with strict_hash a
        file from another architecture raises CheckpointError."""
    def load_subgraph_checkpoint(self, path: str, file: _PathLike) -> "LoadReport":
        """Loads a file saved from the child graph at `path` into that child."""

@final
class Reduce:
    """How Graph.collect_with reduces a non-scalar tagged output."""

    MEAN: "Reduce"
    SUM: "Reduce"
    MAX: "Reduce"
    MIN: "Reduce"
    NORM: "Reduce"

@final
class Trend:
    """A metric's epoch history with floDl's queries."""

    def __new__(cls, values: Sequence[float]) -> Trend: ...
    def values(self) -> List[float]: ...
    def __len__(self) -> int: ...
    def is_empty(self) -> bool: ...
    def last(self, n: int) -> List[float]: ...
    def latest(self) -> float: ...
    def mean(self) -> float: ...
    def min(self) -> float: ...
    def max(self) -> float: ...
    def slope(self, window: int = 0) -> float: ...
    def improving(self, window: int = 0) -> bool: ...
    def stalled(self, window: int, tol: float) -> bool: ...
    def converged(self, window: int, tol: float) -> bool: ...

@final
class TrendGroup:
    """Several trends queried together; all_* are False when empty."""

    def __len__(self) -> int: ...
    def __getitem__(self, i: int, /) -> Trend: ...
    def is_empty(self) -> bool: ...
    def all_improving(self, window: int = 0) -> bool: ...
    def any_improving(self, window: int = 0) -> bool: ...
    def all_stalled(self, window: int, tol: float) -> bool: ...
    def any_stalled(self, window: int, tol: float) -> bool: ...
    def all_converged(self, window: int, tol: float) -> bool: ...
    def any_converged(self, window: int, tol: float) -> bool: ...
    def mean_slope(self, window: int = 0) -> float: ...
    def slopes(self, window: int = 0) -> List[float]: ...

@final
class Profile:
    """Times (seconds) of the last profiled forward."""

    @property
    def total(self) -> float: ...
    @property
    def nodes(self) -> List[Dict[str, Any]]: ...
    @property
    def levels(self) -> List[Dict[str, Any]]: ...
    def timing(self, tag: str) -> Optional[float]: ...

# ---- metrics -----------------------------------------------------------------

def accuracy(pred: _TensorLike, targets: _TensorLike) -> float: ...
def top_k_accuracy(logits: _TensorLike, targets: _TensorLike, k: int = 2) -> float: ...
def binary_accuracy(pred: _TensorLike, targets: _TensorLike, threshold: float = 0.5) -> float: ...
def precision(
    pred: _TensorLike, targets: _TensorLike, average: str = "macro", num_classes: Optional[int] = None
) -> float: ...
def recall(
    pred: _TensorLike, targets: _TensorLike, average: str = "macro", num_classes: Optional[int] = None
) -> float: ...
def f1(
    pred: _TensorLike, targets: _TensorLike, average: str = "macro", num_classes: Optional[int] = None
) -> float: ...
def confusion_matrix(
    pred: _TensorLike, targets: _TensorLike, num_classes: Optional[int] = None
) -> torch.Tensor: ...
def mae(pred: _TensorLike, targets: _TensorLike) -> float: ...
def rmse(pred: _TensorLike, targets: _TensorLike) -> float: ...
def r2(pred: _TensorLike, targets: _TensorLike) -> float: ...

@final
class Tracker:
    """Named running means; summary() reads "accuracy: 0.9150 loss: 0.4231"."""

    def __new__(cls) -> Tracker: ...
    def observe(self, name: str, value: Union[float, torch.Tensor, np.ndarray]) -> None: ...
    def mean(self, name: str) -> float: ...
    def count(self, name: str) -> int: ...
    def names(self) -> List[str]: ...
    def to_dict(self) -> Dict[str, float]: ...
    def summary(self) -> str: ...
    def reset(self) -> None: ...
    def __contains__(self, name: str, /) -> bool: ...

# ---- losses ------------------------------------------------------------------

_Reduction = str  # "mean" | "sum" | "none" (kl_div: also "batchmean", its default)
_LengthsLike = Union[_TensorLike, int, Sequence[int]]

def mse_loss(pred: _TensorLike, target: _TensorLike, reduction: _Reduction = "mean") -> torch.Tensor: ...
def l1_loss(pred: _TensorLike, target: _TensorLike, reduction: _Reduction = "mean") -> torch.Tensor: ...
def smooth_l1_loss(
    pred: _TensorLike, target: _TensorLike, beta: float = 1.0, reduction: _Reduction = "mean"
) -> torch.Tensor: ...
def huber_loss(
    pred: _TensorLike, target: _TensorLike, delta: float = 1.0, reduction: _Reduction = "mean"
) -> torch.Tensor: ...
def poisson_nll_loss(
    pred: _TensorLike,
    target: _TensorLike,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: _Reduction = "mean",
) -> torch.Tensor: ...
def cross_entropy_loss(
    logits: _TensorLike,
    target: _TensorLike,
    weight: Optional[_TensorLike] = None,
    ignore_index: int = ...,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor: ...
def cross_entropy_sparse(
    logits: _TensorLike,
    target: _TensorLike,
    weight: Optional[_TensorLike] = None,
    ignore_index: int = ...,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor: ...
def nll_loss(
    log_probs: _TensorLike,
    target: _TensorLike,
    weight: Optional[_TensorLike] = None,
    ignore_index: int = ...,
    reduction: _Reduction = "mean",
) -> torch.Tensor: ...
def bce_loss(
    pred: _TensorLike,
    target: _TensorLike,
    weight: Optional[_TensorLike] = None,
    reduction: _Reduction = "mean",
) -> torch.Tensor: ...
def bce_with_logits_loss(
    logits: _TensorLike,
    target: _TensorLike,
    weight: Optional[_TensorLike] = None,
    pos_weight: Optional[_TensorLike] = None,
    reduction: _Reduction = "mean",
) -> torch.Tensor: ...
def focal_loss(
    logits: _TensorLike,
    target: _TensorLike,
    alpha: float = 0.25,
    gamma: float = 2.0,
    ignore_index: int = ...,
    reduction: _Reduction = "mean",
) -> torch.Tensor: ...
def kl_div_loss(
    input: _TensorLike, target: _TensorLike, reduction: _Reduction = "batchmean", log_target: bool = False
) -> torch.Tensor: ...
def ctc_loss(
    log_probs: _TensorLike,
    targets: _TensorLike,
    input_lengths: _LengthsLike,
    target_lengths: _LengthsLike,
    blank: int = 0,
    reduction: _Reduction = "mean",
    zero_infinity: bool = False,
) -> torch.Tensor: ...
def triplet_margin_loss(
    anchor: _TensorLike,
    positive: _TensorLike,
    negative: _TensorLike,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: _Reduction = "mean",
) -> torch.Tensor: ...
def cosine_embedding_loss(
    input1: _TensorLike,
    input2: _TensorLike,
    target: _TensorLike,
    margin: float = 0.0,
    reduction: _Reduction = "mean",
) -> torch.Tensor: ...
def hinge_embedding_loss(
    input: _TensorLike, target: _TensorLike, margin: float = 1.0, reduction: _Reduction = "mean"
) -> torch.Tensor: ...
def margin_ranking_loss(
    input1: _TensorLike,
    input2: _TensorLike,
    target: _TensorLike,
    margin: float = 0.0,
    reduction: _Reduction = "mean",
) -> torch.Tensor: ...
def loss_names() -> List[str]: ...
def loss_table() -> List[Tuple[str, str, List[str], Dict[str, Any]]]:
    """Every built-in loss: (function, class, inputs, {option: default})."""

@disjoint_base
class Loss:
    """A built-in loss with its options; ``Loss(name)`` gives a (pred, target) loss by name."""

    def __new__(cls, name: str) -> Loss: ...
    def __call__(self, *inputs: Any) -> torch.Tensor: ...
    def compute(self, *inputs: Any) -> torch.Tensor: ...
    @property
    def name(self) -> str: ...
    @property
    def reduction(self) -> str: ...
    @property
    def inputs(self) -> List[str]: ...

@final
class MSELoss(Loss):
    def __new__(cls, reduction: _Reduction = "mean") -> MSELoss: ...

@final
class L1Loss(Loss):
    def __new__(cls, reduction: _Reduction = "mean") -> L1Loss: ...

@final
class SmoothL1Loss(Loss):
    def __new__(cls, beta: float = 1.0, reduction: _Reduction = "mean") -> SmoothL1Loss: ...

@final
class HuberLoss(Loss):
    def __new__(cls, delta: float = 1.0, reduction: _Reduction = "mean") -> HuberLoss: ...

@final
class PoissonNLLLoss(Loss):
    def __new__(
        cls, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: _Reduction = "mean"
    ) -> PoissonNLLLoss: ...

@final
class CrossEntropyLoss(Loss):
    def __new__(
        cls,
        weight: Optional[_TensorLike] = None,
        ignore_index: int = ...,
        reduction: _Reduction = "mean",
        label_smoothing: float = 0.0,
    ) -> CrossEntropyLoss: ...

@final
class CrossEntropySparseLoss(Loss):
    def __new__(
        cls,
        weight: Optional[_TensorLike] = None,
        ignore_index: int = ...,
        reduction: _Reduction = "mean",
        label_smoothing: float = 0.0,
    ) -> CrossEntropySparseLoss: ...

@final
class NLLLoss(Loss):
    def __new__(
        cls, weight: Optional[_TensorLike] = None, ignore_index: int = ..., reduction: _Reduction = "mean"
    ) -> NLLLoss: ...

@final
class BCELoss(Loss):
    def __new__(cls, weight: Optional[_TensorLike] = None, reduction: _Reduction = "mean") -> BCELoss: ...

@final
class BCEWithLogitsLoss(Loss):
    def __new__(
        cls,
        weight: Optional[_TensorLike] = None,
        pos_weight: Optional[_TensorLike] = None,
        reduction: _Reduction = "mean",
    ) -> BCEWithLogitsLoss: ...

@final
class FocalLoss(Loss):
    def __new__(
        cls, alpha: float = 0.25, gamma: float = 2.0, ignore_index: int = ..., reduction: _Reduction = "mean"
    ) -> FocalLoss: ...

@final
class KLDivLoss(Loss):
    def __new__(cls, reduction: _Reduction = "batchmean", log_target: bool = False) -> KLDivLoss: ...

@final
class CTCLoss(Loss):
    def __new__(
        cls, blank: int = 0, reduction: _Reduction = "mean", zero_infinity: bool = False
    ) -> CTCLoss: ...

@final
class TripletMarginLoss(Loss):
    def __new__(
        cls,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        reduction: _Reduction = "mean",
    ) -> TripletMarginLoss: ...

@final
class CosineEmbeddingLoss(Loss):
    def __new__(cls, margin: float = 0.0, reduction: _Reduction = "mean") -> CosineEmbeddingLoss: ...

@final
class HingeEmbeddingLoss(Loss):
    def __new__(cls, margin: float = 1.0, reduction: _Reduction = "mean") -> HingeEmbeddingLoss: ...

@final
class MarginRankingLoss(Loss):
    def __new__(cls, margin: float = 0.0, reduction: _Reduction = "mean") -> MarginRankingLoss: ...

def clip_grad_norm(
    params: Union[torch.Tensor, Iterable[torch.Tensor]],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> torch.Tensor:
    """Scales gradients in place so their joint norm is at most ``max_norm``
    (``torch.nn.utils.clip_grad_norm_``); returns the norm before clipping as a
    0-dim tensor, not synced. ``error_if_nonfinite=True`` reads the norm (one
    sync) and raises ConfigError (a ValueError) if it is inf/NaN."""

def clip_grad_value(params: Union[torch.Tensor, Iterable[torch.Tensor]], value: float) -> None:
    """Clamps every gradient into ``[-value, value]`` in place
    (``torch.nn.utils.clip_grad_value_``)."""

def global_norm(tensors: Union[torch.Tensor, Iterable[torch.Tensor]], norm_type: float = 2.0) -> torch.Tensor:
    """The joint ``norm_type``-norm of ``tensors`` as a 0-dim tensor."""

def clip_by_global_norm(
    max_norm: float, tensors: Union[torch.Tensor, Iterable[torch.Tensor]]
) -> List[torch.Tensor]:
    """Kaun's ``clip_by_global_norm``: new tensors ``t * max_norm / norm`` when
    the joint L2 norm exceeds ``max_norm``, else equal to ``t``; inputs untouched."""

_DTypeLike = Union[torch.dtype, str]

@disjoint_base
class GradScaler:
    """Dynamic loss scaling, equal to ``torch.amp.GradScaler`` step by step."""

    def __new__(
        cls,
        init_scale: float = 65536.0,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
        device: Optional[Union[str, torch.device]] = None,
    ) -> GradScaler: ...
    def scale(self, outputs: Any) -> Any:
        """``outputs * scale`` for a tensor or a (nested) list/tuple of tensors."""
    def unscale_(self, optimizer: Any) -> None:
        """Unscales the optimizer's gradients in place and records inf/NaN."""
    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """``step(optimizer)``: the step's result, or None when skipped;
        ``step(params, step_fn)``: floDl's form, returns whether it stepped."""
    def update(self, new_scale: Optional[Union[float, torch.Tensor]] = None) -> None: ...
    def get_scale(self) -> float: ...
    def is_enabled(self) -> bool: ...
    def get_growth_factor(self) -> float: ...
    def get_backoff_factor(self) -> float: ...
    def get_growth_interval(self) -> int: ...
    def last_step_skipped(self) -> bool:
        """Whether the last ``step`` skipped the optimizer (inf/NaN gradients); one host sync."""
    def last_found_inf(self) -> Optional[torch.Tensor]:
        """The last step's found-inf flag on device (nonzero: skipped), no sync; None before a step."""
    def _get_growth_tracker(self) -> int: ...
    def _get_scale_async(self) -> Optional[torch.Tensor]: ...
    def state_dict(self) -> Dict[str, Any]: ...
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None: ...

@final
class AutocastGuard:
    """An autocast region for ``with``: saves and restores this thread's
    autocast flag and dtype for the device type."""

    def __new__(
        cls, dtype: _DTypeLike, device_type: Optional[str] = None, enabled: bool = True
    ) -> AutocastGuard: ...
    def __enter__(self) -> AutocastGuard: ...
    def __exit__(self, *exc: Any) -> bool: ...
    @property
    def device_type(self) -> str: ...

def autocast(
    dtype: _DTypeLike,
    fn: Optional[Callable[[], Any]] = ...,
    device_type: Optional[str] = None,
    enabled: bool = True,
) -> Any:
    """A context manager (AutocastGuard), or ``fn()`` run under autocast."""

def is_autocast_enabled(device_type: Optional[str] = None) -> bool: ...
def cast_parameters(params: Union[torch.Tensor, Iterable[torch.Tensor]], dtype: _DTypeLike) -> None:
    """Casts parameters (and their gradients) to ``dtype`` in place, keeping identity."""

@final
class Optimizer:
    """The Rust optimizer core (each ``ferrotorch.optim`` optimizer holds one as ``_core``)."""

    def __new__(
        cls, algorithm: str, params: Any, defaults: Dict[str, Any], implementation: str = "auto"
    ) -> Any: ...
    def step(self) -> None: ...
    def zero_grad(self, set_to_none: bool = True) -> None: ...
    @property
    def lr(self) -> float: ...
    def set_lr(self, lr: float) -> None: ...
    def set_group_lr(self, index: int, lr: float) -> None: ...
    def scale_lr(self, factor: float) -> None: ...
    @property
    def implementation(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    def num_groups(self) -> int: ...
    def group_hyper(self, index: int) -> Dict[str, Any]: ...
    def set_group_hyper(self, index: int, key: str, value: Any) -> None: ...
    def group_params(self, index: int) -> List[torch.Tensor]: ...
    def add_param_group(self, group: Dict[str, Any]) -> None: ...
    def state_dict(self) -> Dict[str, Any]: ...
    def load_state_dict(self, sd: Dict[str, Any]) -> None: ...
    def param_state(self, index: int) -> Optional[Dict[str, torch.Tensor]]: ...

def call_with_substitutes(
    originals: List[torch.Tensor],
    substitutes: List[torch.Tensor],
    fn_: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Calls ``fn_(*args, **kwargs)`` with each ``originals[i]`` read as
    ``substitutes[i]`` by every ferrotorch module, on this thread only."""

def rebind(old: torch.Tensor, new: torch.Tensor) -> int:
    """Points every ferrotorch module, graph and optimizer holding ``old`` at
    ``new`` (same shape); returns how many handles followed."""

def optimizer_names() -> List[str]:
    """Every optimizer name, lower case (the core's registry)."""

def grad_scaler_defaults() -> Dict[str, Any]:
    """GradScaler's constructor defaults (the core's one table)."""

def amp_needs_scaler(dtype: Any, what: str = "amp") -> bool:
    """Whether training in ``dtype`` needs a GradScaler (float16); ConfigError unless float16 or bfloat16."""

def optimizer_defaults(name: str) -> Dict[str, Any]:
    """Every hyperparameter of optimizer ``name`` with its default, under torch's keys."""

@final
class Epoch:
    def __iter__(self) -> Iterator[Tuple[torch.Tensor, ...]]: ...
    def __next__(self) -> Tuple[torch.Tensor, ...]: ...
    def __len__(self) -> int: ...

@final
class DataLoader:
    def __new__(
        cls,
        data: Any,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 42,
        drop_last: bool = False,
        device: Optional[str] = None,
        names: Optional[List[str]] = None,
    ) -> DataLoader: ...
    def __len__(self) -> int: ...
    @property
    def num_batches(self) -> int: ...
    @property
    def num_samples(self) -> int: ...
    def shard(self, rank: int, world_size: int) -> DataLoader: ...
    @property
    def shard_of(self) -> Optional[Tuple[int, int]]: ...
    @property
    def device(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def names(self) -> List[str]: ...
    def field_index(self, name: str) -> int:
        """The position of the field called ``name`` (TagError if unknown)."""
    def epoch(self, epoch: int) -> Epoch: ...
    def __iter__(self) -> Epoch: ...

def permutation(n: int, seed: int) -> List[int]: ...

# Data sets (wrapped by ferrotorch.datasets); reads run with the GIL released.
def mnist_parse(images: bytes, labels: bytes) -> Tuple[torch.Tensor, torch.Tensor]: ...
def mnist_read(root: _PathLike, train: bool) -> Tuple[torch.Tensor, torch.Tensor, List[str]]: ...
def cifar10_parse(batches: List[bytes]) -> Tuple[torch.Tensor, torch.Tensor]: ...
def cifar10_read(root: _PathLike, train: bool) -> Tuple[torch.Tensor, torch.Tensor, List[str]]: ...
def text_read(path: _PathLike) -> Tuple[str, str]: ...

CIFAR10_CLASSES: List[str]

@final
class Shakespeare:
    @staticmethod
    def parse(text: str, seq_len: int) -> Shakespeare: ...
    @property
    def data(self) -> torch.Tensor: ...
    @property
    def targets(self) -> torch.Tensor: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def vocab(self) -> str: ...
    def __len__(self) -> int: ...

_Update = Tuple[int, float, bool]

def trainer_options() -> List[Tuple[str, Any, str]]:
    """``Trainer``'s options after (model, optimizer): (name, default, doc), in order."""

@final
class Engine:
    """The training engine (``rust/train/``): counters, data position, checks
    and the order of a step. ``ferrotorch.Trainer`` wraps it."""

    def __new__(
        cls,
        model: Module,
        optimizer: Optimizer,
        loss: Any,
        clip_grad_norm: Optional[float],
        clip_grad_value: Optional[float],
        schedule: Any,
        schedule_unit: str,
        grad_accumulation: int,
        scaler: Optional[GradScaler],
        amp_dtype: Any,
        amp_device: str,
        on_nonfinite: str,
        device: Optional[str],
        process_group: Optional[str],
        cuda_graph: str,
        loss_reads: str,
    ) -> Engine: ...
    def step(self, x: Any, y: Any) -> Tuple[float, Optional[_Update]]: ...
    def step_lazy(self, x: Any, y: Any, report: bool) -> Tuple[torch.Tensor, Optional[int]]: ...
    def take_updates(self) -> List[_Update]: ...
    @property
    def batched_reads(self) -> bool: ...
    def step_closure(self, compute: Callable[[], torch.Tensor]) -> Tuple[float, Optional[_Update]]: ...
    def step_loss(self, loss: torch.Tensor) -> Tuple[float, Optional[_Update]]: ...
    def step_batch(
        self, batch: Any, forward: Callable[[Any], Any], loss: Callable[[Any], torch.Tensor]
    ) -> Tuple[float, Optional[_Update]]: ...
    def step_batch_lazy(
        self,
        batch: Any,
        forward: Callable[[Any], Any],
        loss: Callable[[Any], torch.Tensor],
        report: bool = False,
    ) -> Tuple[torch.Tensor, Optional[int]]: ...
    def eval_call(self, f: Callable[[], Any], was_training: bool = True) -> Any: ...
    def compute_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...
    def run_loader(
        self,
        loader: DataLoader,
        max_batches: int,
        until_step: Optional[int] = None,
        every: List[int] = ...,
        forward: Optional[Callable[[Any], Any]] = None,
        loss: Optional[Callable[[Any], torch.Tensor]] = None,
        names: Optional[List[str]] = None,
    ) -> Tuple[List[_Update], int, bool]: ...
    def epoch_loss(self) -> float: ...
    def end_epoch(self) -> Tuple[Optional[_Update], Tuple[int, float, int]]: ...
    @property
    def state(self) -> Dict[str, Any]: ...
    def position(self) -> Tuple[int, int, int, int]: ...
    @property
    def pending_reads(self) -> int: ...
    @staticmethod
    def check_state(state: Dict[str, Any]) -> None: ...
    def set_state(self, state: Dict[str, Any]) -> None: ...
    def predict(self, x: Any, was_training: bool = True) -> torch.Tensor: ...
    def eval_batch(self, x: Any, y: Any, was_training: bool = True) -> Tuple[float, torch.Tensor]: ...
    def to_device(self, t: torch.Tensor) -> torch.Tensor: ...
    def cuda_graph_status(self) -> Dict[str, Any]: ...
    def invalidate_cuda_graphs(self) -> None: ...
    @property
    def builtin_loss(self) -> bool: ...

# --- schedules and schedulers (ferrotorch.sched, ferrotorch.schedule) ---------

_ScheduleLike = Union["Schedule", Callable[[int], float]]
_OptimizerLike = Any  # torch.optim.Optimizer (param_groups) or a ferrotorch Optimizer

@disjoint_base
class Schedule:
    """A learning rate as a function of the step: ``s(step)`` or ``s.lr(step)``."""

    def lr(self, step: int) -> float: ...
    def __call__(self, step: int) -> float: ...

@final
class StepDecay(Schedule):
    def __new__(cls, base: float, step_size: int, gamma: float) -> StepDecay: ...

@final
class CosineScheduler(Schedule):
    def __new__(cls, base: float, min_lr: float, total: int) -> CosineScheduler: ...

@final
class WarmupScheduler(Schedule):
    def __new__(cls, inner: _ScheduleLike, target_lr: float, warmup_steps: int) -> WarmupScheduler: ...

@final
class ExponentialSchedule(Schedule):
    def __new__(cls, base: float, gamma: float) -> ExponentialSchedule: ...

@final
class MultiStepSchedule(Schedule):
    def __new__(cls, base: float, milestones: Sequence[int], gamma: float) -> MultiStepSchedule: ...
    @property
    def milestones(self) -> List[int]: ...

@final
class OneCycleSchedule(Schedule):
    def __new__(cls, max_lr: float, total: int, warmup_frac: float = 0.3) -> OneCycleSchedule: ...
    @property
    def warmup_steps(self) -> int: ...

@final
class CyclicSchedule(Schedule):
    def __new__(
        cls, base: float, max_lr: float, step_size_up: int, step_size_down: Optional[int] = None
    ) -> CyclicSchedule: ...

@final
class PlateauScheduler:
    def __new__(cls, base: float, patience: int, factor: float, min_lr: float = 0.0) -> PlateauScheduler: ...
    def observe(self, metric: float) -> float: ...
    def lr(self) -> float: ...
    @property
    def best(self) -> float: ...
    @property
    def wait(self) -> int: ...

def kaun_constant(value: float) -> Schedule: ...
def kaun_cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule: ...
def kaun_warmup_linear(init_value: float, peak_value: float, warmup_steps: int) -> Schedule: ...
def kaun_warmup_cosine(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: Optional[int] = None,
    end_value: float = 0.0,
) -> Schedule: ...
def kaun_exponential_decay(init_value: float, decay_rate: float, decay_steps: int) -> Schedule: ...
def kaun_join(schedules: Sequence[_ScheduleLike], boundaries: Sequence[int]) -> Schedule: ...

@disjoint_base
class LRScheduler:
    """Base of the torch-style schedulers (equal to torch.optim.lr_scheduler)."""

    def step(self, epoch: Optional[float] = None) -> None: ...
    def get_last_lr(self) -> List[float]: ...
    @property
    def last_epoch(self) -> int: ...
    @property
    def base_lrs(self) -> List[float]: ...
    @property
    def optimizer(self) -> _OptimizerLike: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state_dict: dict) -> None: ...

@final
class StepLR(LRScheduler):
    def __new__(
        cls, optimizer: _OptimizerLike, step_size: int, gamma: float = 0.1, last_epoch: int = ...
    ) -> StepLR: ...

@final
class MultiStepLR(LRScheduler):
    def __new__(
        cls, optimizer: _OptimizerLike, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = ...
    ) -> MultiStepLR: ...

@final
class ExponentialLR(LRScheduler):
    def __new__(cls, optimizer: _OptimizerLike, gamma: float, last_epoch: int = ...) -> ExponentialLR: ...

@final
class LinearLR(LRScheduler):
    def __new__(
        cls,
        optimizer: _OptimizerLike,
        start_factor: float = ...,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = ...,
    ) -> LinearLR: ...

@final
class PolynomialLR(LRScheduler):
    def __new__(
        cls, optimizer: _OptimizerLike, total_iters: int = 5, power: float = 1.0, last_epoch: int = ...
    ) -> PolynomialLR: ...

@final
class CosineAnnealingLR(LRScheduler):
    def __new__(
        cls, optimizer: _OptimizerLike, T_max: int, eta_min: float = 0.0, last_epoch: int = ...
    ) -> CosineAnnealingLR: ...

@final
class CosineAnnealingWarmRestarts(LRScheduler):
    def __new__(
        cls, optimizer: _OptimizerLike, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = ...
    ) -> CosineAnnealingWarmRestarts: ...

@final
class LambdaLR(LRScheduler):
    def __new__(
        cls,
        optimizer: _OptimizerLike,
        lr_lambda: Union[_ScheduleLike, Sequence[_ScheduleLike]],
        last_epoch: int = ...,
    ) -> LambdaLR: ...

@final
class CyclicLR(LRScheduler):
    def __new__(
        cls,
        optimizer: _OptimizerLike,
        base_lr: Union[float, Sequence[float]],
        max_lr: Union[float, Sequence[float]],
        step_size_up: float = 2000.0,
        step_size_down: Optional[float] = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Optional[_ScheduleLike] = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: Union[float, Sequence[float], None] = None,
        max_momentum: Union[float, Sequence[float], None] = None,
        last_epoch: int = ...,
    ) -> CyclicLR: ...

@final
class OneCycleLR(LRScheduler):
    def __new__(
        cls,
        optimizer: _OptimizerLike,
        max_lr: Union[float, Sequence[float]],
        total_steps: Optional[int] = None,
        epochs: Optional[int] = None,
        steps_per_epoch: Optional[int] = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: Union[float, Sequence[float], None] = None,
        max_momentum: Union[float, Sequence[float], None] = None,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = ...,
    ) -> OneCycleLR: ...

@final
class SequentialLR(LRScheduler):
    def __new__(
        cls,
        optimizer: _OptimizerLike,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = ...,
    ) -> SequentialLR: ...

@final
class ReduceLROnPlateau:
    def __new__(
        cls,
        optimizer: _OptimizerLike,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: Union[float, Sequence[float], None] = None,
        eps: float = 1e-8,
    ) -> ReduceLROnPlateau: ...
    def step(self, metrics: Any, epoch: Optional[int] = None) -> None: ...
    def get_last_lr(self) -> List[float]: ...
    @property
    def last_epoch(self) -> int: ...
    @property
    def best(self) -> float: ...
    @property
    def num_bad_epochs(self) -> int: ...
    @property
    def cooldown_counter(self) -> int: ...
    @property
    def in_cooldown(self) -> bool: ...
    @property
    def optimizer(self) -> _OptimizerLike: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state_dict: dict) -> None: ...

# ---- checkpoints -------------------------------------------------------------

FDL_FORMAT_VERSION: int

@final
class LoadReport:
    """What a load matched; unpacks as (loaded, skipped, missing)."""

    def __new__(
        cls,
        loaded: Optional[List[str]] = None,
        skipped: Optional[List[str]] = None,
        missing: Optional[List[str]] = None,
    ) -> LoadReport: ...
    @property
    def loaded(self) -> List[str]: ...
    @property
    def skipped(self) -> List[str]: ...
    @property
    def missing(self) -> List[str]: ...
    def __iter__(self) -> Iterator[List[str]]: ...

@final
class MigrateReport:
    """What migrate_checkpoint did; str() lists it floDl-style."""

    @property
    def unchanged(self) -> List[str]: ...
    @property
    def remapped(self) -> List[Tuple[str, str]]: ...
    @property
    def dropped(self) -> List[str]: ...
    @property
    def missing(self) -> List[str]: ...
    def is_complete(self) -> bool: ...

def save_checkpoint(target: Union[Graph, _NamedTensors], path: _PathLike) -> None: ...
def load_checkpoint(
    path: _PathLike, target: Union[Graph, _NamedTensors], strict_hash: bool = False
) -> LoadReport: ...
def checkpoint_keys(path: _PathLike) -> List[str]: ...
def checkpoint_version(path: _PathLike) -> int: ...
def migrate_checkpoint(
    src: _PathLike, dst: _PathLike, target: Union[Graph, _NamedTensors]
) -> MigrateReport: ...
def save_safetensors(
    target: Union[Graph, _NamedTensors], path: _PathLike, metadata: Optional[Dict[str, str]] = None
) -> None: ...
def load_safetensors(
    path: _PathLike, target: Optional[Union[Graph, _NamedTensors]] = None
) -> Union[Dict[str, torch.Tensor], LoadReport]: ...
def safetensors_metadata(path: _PathLike) -> List[Tuple[str, str]]: ...
