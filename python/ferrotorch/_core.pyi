"""Type stubs for ferrotorch's Rust extension."""

import os
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

TensorLike = Union[torch.Tensor, np.ndarray]
PathLike = Union[str, "os.PathLike[str]"]
NamedTensors = Union[Mapping[str, torch.Tensor], Iterable[Tuple[str, torch.Tensor]]]

__torch_version__: str
__version__: str

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

def _panic_for_tests(msg: str) -> None:
    """Panics inside the extension (tests check it surfaces as InternalError)."""

class Module:
    """Base class of every ferrotorch module."""

    @property
    def name(self) -> str: ...
    def __call__(self, x: TensorLike) -> torch.Tensor: ...
    def forward(self, x: TensorLike) -> torch.Tensor: ...
    def parameters(self) -> List[torch.Tensor]: ...
    def named_parameters(self) -> List[Tuple[str, torch.Tensor]]: ...
    def buffers(self) -> List[torch.Tensor]: ...
    def named_buffers(self) -> List[Tuple[str, torch.Tensor]]: ...
    def double(self) -> "Module": ...
    def float(self) -> "Module": ...
    def __getattr__(self, name: str) -> Optional[torch.Tensor]: ...
    def train(self, mode: bool = True) -> "Module": ...
    def eval(self) -> "Module": ...
    def end_step(self) -> None: ...

class Linear(Module):
    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Optional[str] = None
    ) -> None: ...
    @property
    def weight(self) -> torch.Tensor: ...
    @property
    def bias(self) -> Optional[torch.Tensor]: ...
    @property
    def in_features(self) -> int: ...
    @property
    def out_features(self) -> int: ...

class LayerNorm(Module):
    def __init__(self, size: int, eps: float = 1e-5, device: Optional[str] = None) -> None: ...
    @property
    def weight(self) -> torch.Tensor: ...
    @property
    def bias(self) -> torch.Tensor: ...
    @property
    def eps(self) -> float: ...

class GELU(Module):
    def __init__(self, approximate: str = "none") -> None: ...

class ReLU(Module):
    def __init__(self) -> None: ...

class Identity(Module):
    def __init__(self) -> None: ...

_Size = Union[int, Sequence[int]]

class _Unit(Module):
    def __init__(self) -> None: ...

class Sigmoid(_Unit): ...
class Tanh(_Unit): ...
class SiLU(_Unit): ...
class Mish(_Unit): ...
class SELU(_Unit): ...
class Hardswish(_Unit): ...
class Hardsigmoid(_Unit): ...

class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None: ...

class ELU(Module):
    def __init__(self, alpha: float = 1.0) -> None: ...

class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None: ...

class Softmax(Module):
    def __init__(self, dim: int) -> None: ...

class LogSoftmax(Module):
    def __init__(self, dim: int) -> None: ...

class PReLU(Module):
    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Optional[str] = None) -> None: ...
    weight: torch.Tensor

class _Conv(Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _Size,
        stride: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        dilation: Optional[_Size] = None,
        groups: int = 1,
        bias: bool = True,
        device: Optional[str] = None,
    ) -> None: ...
    weight: torch.Tensor
    bias: Optional[torch.Tensor]

class Conv1d(_Conv): ...
class Conv2d(_Conv): ...
class Conv3d(_Conv): ...

class _ConvTranspose(Module):
    def __init__(
        self,
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
    ) -> None: ...
    weight: torch.Tensor
    bias: Optional[torch.Tensor]

class ConvTranspose1d(_ConvTranspose): ...
class ConvTranspose2d(_ConvTranspose): ...
class ConvTranspose3d(_ConvTranspose): ...

class RMSNorm(Module):
    def __init__(self, size: int, eps: float = 1e-5, device: Optional[str] = None) -> None: ...
    weight: torch.Tensor

class _BatchNorm(Module):
    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        device: Optional[str] = None,
    ) -> None: ...
    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

class BatchNorm(_BatchNorm): ...
class BatchNorm2d(_BatchNorm): ...

class GroupNorm(Module):
    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Optional[str] = None,
    ) -> None: ...
    weight: Optional[torch.Tensor]
    bias: Optional[torch.Tensor]

class InstanceNorm(Module):
    def __init__(
        self,
        num_features: int,
        affine: bool = False,
        eps: float = 1e-5,
        device: Optional[str] = None,
    ) -> None: ...
    weight: Optional[torch.Tensor]
    bias: Optional[torch.Tensor]

class _Dropout(Module):
    def __init__(self, p: float = 0.5) -> None: ...

class Dropout(_Dropout): ...
class Dropout2d(_Dropout): ...
class AlphaDropout(_Dropout): ...

class Embedding(Module):
    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: Optional[int] = None,
        device: Optional[str] = None,
    ) -> None: ...
    weight: torch.Tensor

class EmbeddingBag(Module):
    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        mode: str = "mean",
        device: Optional[str] = None,
    ) -> None: ...
    weight: torch.Tensor
    def forward_bag(self, indices: TensorLike, offsets: TensorLike) -> torch.Tensor: ...
    def __call__(  # type: ignore[override]
        self, input: TensorLike, offsets: Optional[TensorLike] = None
    ) -> torch.Tensor: ...

class GRUCell(Module):
    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Optional[str] = None
    ) -> None: ...
    def __call__(  # type: ignore[override]
        self, input: TensorLike, hx: Optional[TensorLike] = None
    ) -> torch.Tensor: ...
    def forward_step(self, input: TensorLike, hx: Optional[TensorLike] = None) -> torch.Tensor: ...
    @property
    def weight_ih(self) -> torch.Tensor: ...
    @property
    def weight_hh(self) -> torch.Tensor: ...
    @property
    def bias_ih(self) -> Optional[torch.Tensor]: ...
    @property
    def bias_hh(self) -> Optional[torch.Tensor]: ...

class LSTMCell(Module):
    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Optional[str] = None
    ) -> None: ...
    def __call__(  # type: ignore[override]
        self, input: TensorLike, hx: Optional[Tuple[TensorLike, TensorLike]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]: ...
    def forward_step(self, input: TensorLike, state: Optional[TensorLike] = None) -> torch.Tensor: ...
    @property
    def weight_ih(self) -> torch.Tensor: ...
    @property
    def weight_hh(self) -> torch.Tensor: ...
    @property
    def bias_ih(self) -> Optional[torch.Tensor]: ...
    @property
    def bias_hh(self) -> Optional[torch.Tensor]: ...

class _Rnn(Module):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        device: Optional[str] = None,
    ) -> None: ...
    @property
    def batch_first(self) -> bool: ...

class GRU(_Rnn):
    def forward_seq(
        self, input: TensorLike, h0: Optional[TensorLike] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]: ...

class LSTM(_Rnn):
    def forward_seq(
        self, input: TensorLike, hx: Optional[Tuple[TensorLike, TensorLike]] = None
    ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]: ...

class MultiheadAttention(Module):
    def __init__(
        self, embed_dim: int, num_heads: int, bias: bool = True, device: Optional[str] = None
    ) -> None: ...
    def forward_ext(
        self,
        query: TensorLike,
        key: TensorLike,
        value: TensorLike,
        attn_mask: Optional[TensorLike] = None,
        key_padding_mask: Optional[TensorLike] = None,
    ) -> torch.Tensor: ...
    @property
    def embed_dim(self) -> int: ...
    @property
    def num_heads(self) -> int: ...

class Bilinear(Module):
    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Optional[str] = None,
    ) -> None: ...
    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    def __call__(  # type: ignore[override]
        self, input1: TensorLike, input2: Optional[TensorLike] = None
    ) -> torch.Tensor: ...

class _MaxPool(Module):
    def __init__(
        self,
        kernel_size: _Size,
        stride: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        dilation: Optional[_Size] = None,
        ceil_mode: bool = False,
    ) -> None: ...

class MaxPool1d(_MaxPool): ...
class MaxPool2d(_MaxPool): ...

class _AvgPool(Module):
    def __init__(
        self,
        kernel_size: _Size,
        stride: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None: ...

class AvgPool1d(_AvgPool): ...
class AvgPool2d(_AvgPool): ...

class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size: _Size) -> None: ...

class AdaptiveMaxPool2d(Module):
    def __init__(self, output_size: _Size) -> None: ...

class PixelShuffle(Module):
    def __init__(self, upscale_factor: int) -> None: ...

class PixelUnshuffle(Module):
    def __init__(self, downscale_factor: int) -> None: ...

class Upsample(Module):
    def __init__(
        self,
        size: Optional[_Size] = None,
        scale_factor: Optional[Union[float, Sequence[float]]] = None,
        mode: str = "nearest",
        align_corners: Optional[bool] = None,
    ) -> None: ...

class Unfold(Module):
    def __init__(
        self,
        kernel_size: _Size,
        dilation: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        stride: Optional[_Size] = None,
    ) -> None: ...

class Fold(Module):
    def __init__(
        self,
        output_size: _Size,
        kernel_size: _Size,
        dilation: Optional[_Size] = None,
        padding: Optional[_Size] = None,
        stride: Optional[_Size] = None,
    ) -> None: ...

class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None: ...

class ZeroPad2d(Module):
    def __init__(self, padding: _Size) -> None: ...

class ReflectionPad2d(Module):
    def __init__(self, padding: _Size) -> None: ...

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
    a: float = -2.0,
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

ModuleLike = Union[Module, torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]

class FlowBuilder:
    """floDl's fluent graph builder; errors surface at build() as GraphError."""

    def __init__(self, module: Optional[ModuleLike] = None) -> None: ...
    @staticmethod
    def from_(module: ModuleLike) -> "FlowBuilder": ...
    @staticmethod
    def new() -> "FlowBuilder": ...
    def through(self, module: ModuleLike) -> "FlowBuilder": ...
    def also(self, module: ModuleLike) -> "FlowBuilder": ...
    def tag(self, name: str) -> "FlowBuilder": ...
    def build(self) -> "Graph": ...

class Graph(Module):
    def __call__(self, *inputs: TensorLike) -> torch.Tensor: ...  # type: ignore[override]
    def forward(self, *inputs: TensorLike) -> torch.Tensor: ...  # type: ignore[override]
    def forward_multi(self, inputs: Sequence[TensorLike]) -> torch.Tensor: ...
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
    def __len__(self) -> int: ...
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

class Reduce:
    """How Graph.collect_with reduces a non-scalar tagged output."""

    MEAN: "Reduce"
    SUM: "Reduce"
    MAX: "Reduce"
    MIN: "Reduce"
    NORM: "Reduce"

class Trend:
    """A metric's epoch history with floDl's queries."""

    def __init__(self, values: Sequence[float]) -> None: ...
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

class TrendGroup:
    """Several trends queried together; all_* are False when empty."""

    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> Trend: ...
    def is_empty(self) -> bool: ...
    def all_improving(self, window: int = 0) -> bool: ...
    def any_improving(self, window: int = 0) -> bool: ...
    def all_stalled(self, window: int, tol: float) -> bool: ...
    def any_stalled(self, window: int, tol: float) -> bool: ...
    def all_converged(self, window: int, tol: float) -> bool: ...
    def any_converged(self, window: int, tol: float) -> bool: ...
    def mean_slope(self, window: int = 0) -> float: ...
    def slopes(self, window: int = 0) -> List[float]: ...

class Profile:
    """Times (seconds) of the last profiled forward."""

    @property
    def total(self) -> float: ...
    @property
    def nodes(self) -> List[Dict[str, Any]]: ...
    @property
    def levels(self) -> List[Dict[str, Any]]: ...
    def timing(self, tag: str) -> Optional[float]: ...
    def save_checkpoint(self, path: PathLike) -> None:
        """Saves parameters then buffers with the structural hash as floDl's .fdl
        (gzip when the path ends in .gz); atomic."""
    def load_checkpoint(self, path: PathLike, strict_hash: bool = True) -> "LoadReport":
        """Loads a .fdl file by name after validating all of it; with strict_hash a
        file from another architecture raises CheckpointError."""
    def load_subgraph_checkpoint(self, path: str, file: PathLike) -> "LoadReport":
        """Loads a file saved from the child graph at `path` into that child."""

# ---- metrics -----------------------------------------------------------------

def accuracy(pred: TensorLike, targets: TensorLike) -> float: ...
def top_k_accuracy(logits: TensorLike, targets: TensorLike, k: int = 2) -> float: ...
def binary_accuracy(pred: TensorLike, targets: TensorLike, threshold: float = 0.5) -> float: ...
def precision(
    pred: TensorLike, targets: TensorLike, average: str = "macro", num_classes: Optional[int] = None
) -> float: ...
def recall(
    pred: TensorLike, targets: TensorLike, average: str = "macro", num_classes: Optional[int] = None
) -> float: ...
def f1(
    pred: TensorLike, targets: TensorLike, average: str = "macro", num_classes: Optional[int] = None
) -> float: ...
def confusion_matrix(
    pred: TensorLike, targets: TensorLike, num_classes: Optional[int] = None
) -> torch.Tensor: ...
def mae(pred: TensorLike, targets: TensorLike) -> float: ...
def rmse(pred: TensorLike, targets: TensorLike) -> float: ...
def r2(pred: TensorLike, targets: TensorLike) -> float: ...

class Tracker:
    """Named running means; summary() reads "accuracy: 0.9150 loss: 0.4231"."""

    def __init__(self) -> None: ...
    def observe(self, name: str, value: Union[float, torch.Tensor, np.ndarray]) -> None: ...
    def mean(self, name: str) -> float: ...
    def count(self, name: str) -> int: ...
    def names(self) -> List[str]: ...
    def to_dict(self) -> Dict[str, float]: ...
    def summary(self) -> str: ...
    def reset(self) -> None: ...
    def __contains__(self, name: str) -> bool: ...

# ---- losses ------------------------------------------------------------------

Reduction = str  # "mean" | "sum" | "none" (kl_div: also "batchmean", its default)
LengthsLike = Union[TensorLike, int, Sequence[int]]

def mse_loss(pred: TensorLike, target: TensorLike, reduction: Reduction = "mean") -> torch.Tensor: ...
def l1_loss(pred: TensorLike, target: TensorLike, reduction: Reduction = "mean") -> torch.Tensor: ...
def smooth_l1_loss(
    pred: TensorLike, target: TensorLike, beta: float = 1.0, reduction: Reduction = "mean"
) -> torch.Tensor: ...
def huber_loss(
    pred: TensorLike, target: TensorLike, delta: float = 1.0, reduction: Reduction = "mean"
) -> torch.Tensor: ...
def poisson_nll_loss(
    pred: TensorLike,
    target: TensorLike,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: Reduction = "mean",
) -> torch.Tensor: ...
def cross_entropy_loss(
    logits: TensorLike,
    target: TensorLike,
    weight: Optional[TensorLike] = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor: ...
def cross_entropy_sparse(
    logits: TensorLike,
    target: TensorLike,
    weight: Optional[TensorLike] = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor: ...
def nll_loss(
    log_probs: TensorLike,
    target: TensorLike,
    weight: Optional[TensorLike] = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor: ...
def bce_loss(
    pred: TensorLike, target: TensorLike, weight: Optional[TensorLike] = None, reduction: Reduction = "mean"
) -> torch.Tensor: ...
def bce_with_logits_loss(
    logits: TensorLike,
    target: TensorLike,
    weight: Optional[TensorLike] = None,
    pos_weight: Optional[TensorLike] = None,
    reduction: Reduction = "mean",
) -> torch.Tensor: ...
def focal_loss(
    logits: TensorLike,
    target: TensorLike,
    alpha: float = 0.25,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> torch.Tensor: ...
def kl_div_loss(
    input: TensorLike, target: TensorLike, reduction: Reduction = "batchmean", log_target: bool = False
) -> torch.Tensor: ...
def ctc_loss(
    log_probs: TensorLike,
    targets: TensorLike,
    input_lengths: LengthsLike,
    target_lengths: LengthsLike,
    blank: int = 0,
    reduction: Reduction = "mean",
    zero_infinity: bool = False,
) -> torch.Tensor: ...
def triplet_margin_loss(
    anchor: TensorLike,
    positive: TensorLike,
    negative: TensorLike,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor: ...
def cosine_embedding_loss(
    input1: TensorLike,
    input2: TensorLike,
    target: TensorLike,
    margin: float = 0.0,
    reduction: Reduction = "mean",
) -> torch.Tensor: ...
def hinge_embedding_loss(
    input: TensorLike, target: TensorLike, margin: float = 1.0, reduction: Reduction = "mean"
) -> torch.Tensor: ...
def margin_ranking_loss(
    input1: TensorLike,
    input2: TensorLike,
    target: TensorLike,
    margin: float = 0.0,
    reduction: Reduction = "mean",
) -> torch.Tensor: ...
def loss_names() -> List[str]: ...

class Loss:
    """A built-in loss with its options; ``Loss(name)`` gives a (pred, target) loss by name."""

    def __init__(self, name: str) -> None: ...
    def __call__(self, *inputs: Any) -> torch.Tensor: ...
    def compute(self, *inputs: Any) -> torch.Tensor: ...
    @property
    def name(self) -> str: ...
    @property
    def reduction(self) -> str: ...
    @property
    def inputs(self) -> List[str]: ...

class MSELoss(Loss):
    def __init__(self, reduction: Reduction = "mean") -> None: ...

class L1Loss(Loss):
    def __init__(self, reduction: Reduction = "mean") -> None: ...

class SmoothL1Loss(Loss):
    def __init__(self, beta: float = 1.0, reduction: Reduction = "mean") -> None: ...

class HuberLoss(Loss):
    def __init__(self, delta: float = 1.0, reduction: Reduction = "mean") -> None: ...

class PoissonNLLLoss(Loss):
    def __init__(
        self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: Reduction = "mean"
    ) -> None: ...

class CrossEntropyLoss(Loss):
    def __init__(
        self,
        weight: Optional[TensorLike] = None,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
    ) -> None: ...

class CrossEntropySparseLoss(Loss):
    def __init__(
        self,
        weight: Optional[TensorLike] = None,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
    ) -> None: ...

class NLLLoss(Loss):
    def __init__(
        self, weight: Optional[TensorLike] = None, ignore_index: int = -100, reduction: Reduction = "mean"
    ) -> None: ...

class BCELoss(Loss):
    def __init__(self, weight: Optional[TensorLike] = None, reduction: Reduction = "mean") -> None: ...

class BCEWithLogitsLoss(Loss):
    def __init__(
        self,
        weight: Optional[TensorLike] = None,
        pos_weight: Optional[TensorLike] = None,
        reduction: Reduction = "mean",
    ) -> None: ...

class FocalLoss(Loss):
    def __init__(
        self, alpha: float = 0.25, gamma: float = 2.0, ignore_index: int = -100, reduction: Reduction = "mean"
    ) -> None: ...

class KLDivLoss(Loss):
    def __init__(self, reduction: Reduction = "batchmean", log_target: bool = False) -> None: ...

class CTCLoss(Loss):
    def __init__(
        self, blank: int = 0, reduction: Reduction = "mean", zero_infinity: bool = False
    ) -> None: ...

class TripletMarginLoss(Loss):
    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        reduction: Reduction = "mean",
    ) -> None: ...

class CosineEmbeddingLoss(Loss):
    def __init__(self, margin: float = 0.0, reduction: Reduction = "mean") -> None: ...

class HingeEmbeddingLoss(Loss):
    def __init__(self, margin: float = 1.0, reduction: Reduction = "mean") -> None: ...

class MarginRankingLoss(Loss):
    def __init__(self, margin: float = 0.0, reduction: Reduction = "mean") -> None: ...

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

DTypeLike = Union[torch.dtype, str]

class GradScaler:
    """Dynamic loss scaling, equal to ``torch.amp.GradScaler`` step by step."""

    def __init__(
        self,
        init_scale: float = 65536.0,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
        device: Optional[Union[str, torch.device]] = None,
    ) -> None: ...
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
    def _get_growth_tracker(self) -> int: ...
    def _get_scale_async(self) -> Optional[torch.Tensor]: ...
    def state_dict(self) -> Dict[str, Any]: ...
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None: ...

class AutocastGuard:
    """An autocast region for ``with``: saves and restores this thread's
    autocast flag and dtype for the device type."""

    def __init__(self, dtype: DTypeLike, device_type: Optional[str] = None, enabled: bool = True) -> None: ...
    def __enter__(self) -> AutocastGuard: ...
    def __exit__(self, *exc: Any) -> bool: ...
    @property
    def device_type(self) -> str: ...

def autocast(
    dtype: DTypeLike,
    fn: Optional[Callable[[], Any]] = None,
    device_type: Optional[str] = None,
    enabled: bool = True,
) -> Any:
    """A context manager (AutocastGuard), or ``fn()`` run under autocast."""

def is_autocast_enabled(device_type: Optional[str] = None) -> bool: ...
def cast_parameters(params: Union[torch.Tensor, Iterable[torch.Tensor]], dtype: DTypeLike) -> None:
    """Casts parameters (and their gradients) to ``dtype`` in place, keeping identity."""

class Optimizer:
    def step(self) -> None: ...
    def zero_grad(self) -> None: ...
    @property
    def lr(self) -> float: ...
    def set_lr(self, lr: float) -> None: ...

class Adam(Optimizer):
    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        implementation: str = "fused",
    ) -> None: ...
    def param_state(self, index: int) -> Optional[dict]: ...

class Epoch:
    def __iter__(self) -> Iterator[Tuple[torch.Tensor, ...]]: ...
    def __next__(self) -> Tuple[torch.Tensor, ...]: ...
    def __len__(self) -> int: ...

class DataLoader:
    def __init__(
        self,
        data: Any,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 42,
        drop_last: bool = False,
        device: Optional[str] = None,
        names: Optional[List[str]] = None,
    ) -> None: ...
    def __len__(self) -> int: ...
    @property
    def num_batches(self) -> int: ...
    @property
    def num_samples(self) -> int: ...
    @property
    def device(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def names(self) -> List[str]: ...
    def epoch(self, epoch: int) -> Epoch: ...
    def __iter__(self) -> Epoch: ...

Update = Tuple[int, float, bool]

class Engine:
    """The training engine (``rust/train/``): counters, data position, checks
    and the order of a step. ``ferrotorch.Trainer`` wraps it."""

    def __init__(
        self,
        model: Module,
        optimizer: Optimizer,
        loss: Any,
        clip_grad_norm: Optional[float] = None,
        clip_grad_value: Optional[float] = None,
        schedule: Any = None,
        schedule_unit: str = "step",
        grad_accumulation: int = 1,
        scaler: Optional[GradScaler] = None,
        amp_dtype: Any = None,
        amp_device: str = "cpu",
        on_nonfinite: str = "raise",
        device: Optional[str] = None,
    ) -> None: ...
    def step(self, x: Any, y: Any) -> Tuple[float, Optional[Update]]: ...
    def step_closure(self, compute: Callable[[], torch.Tensor]) -> Tuple[float, Optional[Update]]: ...
    def step_loss(self, loss: torch.Tensor) -> Tuple[float, Optional[Update]]: ...
    def run_loader(
        self, loader: DataLoader, max_batches: int, until_step: Optional[int] = None, every: List[int] = ...
    ) -> Tuple[List[Update], int, bool]: ...
    def finish_window(self) -> Optional[Update]: ...
    def end_epoch(self) -> Tuple[Optional[Update], Tuple[int, float, int]]: ...
    @property
    def state(self) -> Dict[str, Any]: ...
    @staticmethod
    def check_state(state: Dict[str, Any]) -> None: ...
    def set_state(self, state: Dict[str, Any]) -> None: ...
    def predict(self, x: Any, was_training: bool = True) -> torch.Tensor: ...
    def eval_batch(self, x: Any, y: Any, was_training: bool = True) -> Tuple[float, torch.Tensor]: ...
    def to_device(self, t: torch.Tensor) -> torch.Tensor: ...
    @property
    def builtin_loss(self) -> bool: ...

# --- schedules and schedulers (ferrotorch.sched, ferrotorch.schedule) ---------

ScheduleLike = Union["Schedule", Callable[[int], float]]
OptimizerLike = Any  # torch.optim.Optimizer (param_groups) or a ferrotorch Optimizer

class Schedule:
    """A learning rate as a function of the step: ``s(step)`` or ``s.lr(step)``."""

    def lr(self, step: int) -> float: ...
    def __call__(self, step: int) -> float: ...

class StepDecay(Schedule):
    def __init__(self, base: float, step_size: int, gamma: float) -> None: ...

class CosineScheduler(Schedule):
    def __init__(self, base: float, min_lr: float, total: int) -> None: ...

class WarmupScheduler(Schedule):
    def __init__(self, inner: ScheduleLike, target_lr: float, warmup_steps: int) -> None: ...

class ExponentialSchedule(Schedule):
    def __init__(self, base: float, gamma: float) -> None: ...

class MultiStepSchedule(Schedule):
    def __init__(self, base: float, milestones: Sequence[int], gamma: float) -> None: ...
    @property
    def milestones(self) -> List[int]: ...

class OneCycleSchedule(Schedule):
    def __init__(self, max_lr: float, total: int, warmup_frac: float = 0.3) -> None: ...
    @property
    def warmup_steps(self) -> int: ...

class CyclicSchedule(Schedule):
    def __init__(
        self, base: float, max_lr: float, step_size_up: int, step_size_down: Optional[int] = None
    ) -> None: ...

class PlateauScheduler:
    def __init__(self, base: float, patience: int, factor: float, min_lr: float = 0.0) -> None: ...
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
def kaun_join(schedules: Sequence[ScheduleLike], boundaries: Sequence[int]) -> Schedule: ...

class LRScheduler:
    """Base of the torch-style schedulers (equal to torch.optim.lr_scheduler)."""

    def step(self, epoch: Optional[float] = None) -> None: ...
    def get_last_lr(self) -> List[float]: ...
    @property
    def last_epoch(self) -> int: ...
    @property
    def base_lrs(self) -> List[float]: ...
    @property
    def optimizer(self) -> OptimizerLike: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state_dict: dict) -> None: ...

class StepLR(LRScheduler):
    def __init__(
        self, optimizer: OptimizerLike, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None: ...

class MultiStepLR(LRScheduler):
    def __init__(
        self, optimizer: OptimizerLike, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None: ...

class ExponentialLR(LRScheduler):
    def __init__(self, optimizer: OptimizerLike, gamma: float, last_epoch: int = -1) -> None: ...

class LinearLR(LRScheduler):
    def __init__(
        self,
        optimizer: OptimizerLike,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None: ...

class PolynomialLR(LRScheduler):
    def __init__(
        self, optimizer: OptimizerLike, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ) -> None: ...

class CosineAnnealingLR(LRScheduler):
    def __init__(
        self, optimizer: OptimizerLike, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None: ...

class CosineAnnealingWarmRestarts(LRScheduler):
    def __init__(
        self, optimizer: OptimizerLike, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None: ...

class LambdaLR(LRScheduler):
    def __init__(
        self,
        optimizer: OptimizerLike,
        lr_lambda: Union[ScheduleLike, Sequence[ScheduleLike]],
        last_epoch: int = -1,
    ) -> None: ...

class CyclicLR(LRScheduler):
    def __init__(
        self,
        optimizer: OptimizerLike,
        base_lr: Union[float, Sequence[float]],
        max_lr: Union[float, Sequence[float]],
        step_size_up: float = 2000,
        step_size_down: Optional[float] = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Optional[ScheduleLike] = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: Union[float, Sequence[float], None] = None,
        max_momentum: Union[float, Sequence[float], None] = None,
        last_epoch: int = -1,
    ) -> None: ...

class OneCycleLR(LRScheduler):
    def __init__(
        self,
        optimizer: OptimizerLike,
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
        last_epoch: int = -1,
    ) -> None: ...

class SequentialLR(LRScheduler):
    def __init__(
        self,
        optimizer: OptimizerLike,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None: ...

class ReduceLROnPlateau:
    def __init__(
        self,
        optimizer: OptimizerLike,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: Union[float, Sequence[float], None] = None,
        eps: float = 1e-8,
    ) -> None: ...
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
    def optimizer(self) -> OptimizerLike: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state_dict: dict) -> None: ...

# ---- checkpoints -------------------------------------------------------------

FDL_FORMAT_VERSION: int

class LoadReport:
    """What a load matched; unpacks as (loaded, skipped, missing)."""

    def __init__(
        self, loaded: List[str] = ..., skipped: List[str] = ..., missing: List[str] = ...
    ) -> None: ...
    @property
    def loaded(self) -> List[str]: ...
    @property
    def skipped(self) -> List[str]: ...
    @property
    def missing(self) -> List[str]: ...
    def __iter__(self) -> Iterator[List[str]]: ...

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

def save_checkpoint(target: Union[Graph, NamedTensors], path: PathLike) -> None: ...
def load_checkpoint(
    path: PathLike, target: Union[Graph, NamedTensors], strict_hash: bool = False
) -> LoadReport: ...
def checkpoint_keys(path: PathLike) -> List[str]: ...
def checkpoint_version(path: PathLike) -> int: ...
def migrate_checkpoint(src: PathLike, dst: PathLike, target: Union[Graph, NamedTensors]) -> MigrateReport: ...
def save_safetensors(
    target: Union[Graph, NamedTensors], path: PathLike, metadata: Optional[Dict[str, str]] = None
) -> None: ...
def load_safetensors(
    path: PathLike, target: Optional[Union[Graph, NamedTensors]] = None
) -> Union[Dict[str, torch.Tensor], LoadReport]: ...
def safetensors_metadata(path: PathLike) -> List[Tuple[str, str]]: ...
