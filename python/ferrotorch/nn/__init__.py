"""Modules. Each is usable alone (``Conv2d(3, 8, 3)(x)``) or as a graph node.

Every layer equals its ``torch.nn`` counterpart on copied weights (outputs and
gradients); names, raw parameter names and initialisation follow floDl:
kaiming-uniform weights (a=√5) and U(±1/√fan_in) biases, drawn weight first
from torch's generator, so ``ferrotorch.manual_seed`` makes them reproducible.
Parameters are float32; ``module.double()`` converts parameters and buffers in
place to run a module in float64. Parameters and buffers are also reachable
as attributes by their raw names (``conv.weight``, ``bn.running_mean``).

Notes on floDl-specific forms:

- ``BatchNorm`` is torch's ``BatchNorm1d`` ([N, C] or [N, C, L]); training
  with a batch of one sample is a ``ShapeError``, as in floDl.
- ``GRUCell(x, h)`` and ``LSTMCell(x, (h, c))`` follow torch; as graph nodes
  they start from zeros and return h. ``LSTMCell.forward_step(x, state)`` is
  floDl's packed form, state = cat(h, c).
- ``GRU`` / ``LSTM`` as nodes return the output sequence only;
  ``forward_seq(x, h0)`` returns ``(output, h_n)`` / ``(output, (h_n, c_n))``.
  Their raw parameter names are floDl's ``w_ih, w_hh, b_ih, b_hh`` per layer.
- ``MultiheadAttention`` is batch first; ``m(x)`` is self-attention and
  ``m.forward_ext(q, k, v, attn_mask, key_padding_mask)`` the general form.
  Parameters are torch's (``in_proj_weight`` [3E, E], ``in_proj_bias``,
  ``out_proj.weight``, ``out_proj.bias``: state dicts load both ways) with
  floDl's init (xavier per [E, E] block); ``.fdl`` files and the structural
  hash name the blocks floDl's way (``q_proj.weight``, ..., ``out_proj.bias``).
- ``EmbeddingBag(x)`` takes 2-D bags; ``forward_bag(indices, offsets)`` 1-D.
- ``Bilinear(x1, x2)``; as a one-input node it computes bilinear(x, x).
- Sequence constructs (not in floDl, which writes these by hand): ``Unroll(cell)``
  runs a GRUCell/LSTMCell over [B, T, F] in one Rust node and returns [B, T, H];
  ``Select(dim, index)`` is ``x.select(dim, index)``; ``AddParameter(*shape)``
  adds a learned ``weight`` (zeros at first), e.g. a positional embedding.
"""

from . import init
from .layers import (
    ELU,
    GELU,
    GRU,
    LSTM,
    SELU,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AddParameter,
    AlphaDropout,
    AvgPool1d,
    AvgPool2d,
    BatchNorm,
    BatchNorm2d,
    Bilinear,
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    Dropout,
    Dropout2d,
    Embedding,
    EmbeddingBag,
    Flatten,
    Fold,
    GroupNorm,
    GRUCell,
    Hardsigmoid,
    Hardswish,
    Identity,
    InstanceNorm,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    LSTMCell,
    MaxPool1d,
    MaxPool2d,
    Mish,
    MultiheadAttention,
    PixelShuffle,
    PixelUnshuffle,
    PReLU,
    ReflectionPad2d,
    ReLU,
    RMSNorm,
    Select,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    Unfold,
    Unroll,
    Upsample,
    ZeroPad2d,
)
from .module import Module

#: torch's name for the 1-d batch norm.
BatchNorm1d = BatchNorm

__all__ = [
    "Module",
    "Linear",
    "Bilinear",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LayerNorm",
    "RMSNorm",
    "BatchNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "GroupNorm",
    "InstanceNorm",
    "Dropout",
    "Dropout2d",
    "AlphaDropout",
    "Embedding",
    "EmbeddingBag",
    "GRUCell",
    "LSTMCell",
    "GRU",
    "LSTM",
    "MultiheadAttention",
    "Unroll",
    "Select",
    "AddParameter",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "PixelShuffle",
    "PixelUnshuffle",
    "Upsample",
    "Unfold",
    "Fold",
    "Flatten",
    "ZeroPad2d",
    "ReflectionPad2d",
    "Identity",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "GELU",
    "SiLU",
    "Mish",
    "SELU",
    "Hardswish",
    "Hardsigmoid",
    "LeakyReLU",
    "ELU",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "PReLU",
    "init",
]
