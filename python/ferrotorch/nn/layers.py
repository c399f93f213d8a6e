"""The ferrotorch layers: each a :class:`~ferrotorch.nn.Module` (a
``torch.nn.Module``) over its Rust module, with the Rust class's constructor
signature and docstring (one source: ``rust/python/nn/``)."""

from typing import Any, Tuple

from .. import _core
from .module import Module


class ELU(Module):
    _core_cls = _core.ELU


class GELU(Module):
    _core_cls = _core.GELU


class GRU(Module):
    _core_cls = _core.GRU
    _ft_call = "forward_seq"


class LSTM(Module):
    _core_cls = _core.LSTM
    _ft_call = "forward_seq"


class SELU(Module):
    _core_cls = _core.SELU


class AddParameter(Module):
    _core_cls = _core.AddParameter


class AdaptiveAvgPool2d(Module):
    _core_cls = _core.AdaptiveAvgPool2d


class AdaptiveMaxPool2d(Module):
    _core_cls = _core.AdaptiveMaxPool2d


class AlphaDropout(Module):
    _core_cls = _core.AlphaDropout


class AvgPool1d(Module):
    _core_cls = _core.AvgPool1d


class AvgPool2d(Module):
    _core_cls = _core.AvgPool2d


class BatchNorm(Module):
    _core_cls = _core.BatchNorm


class BatchNorm2d(Module):
    _core_cls = _core.BatchNorm2d


class Bilinear(Module):
    _core_cls = _core.Bilinear
    _bias_slot = True


class Conv1d(Module):
    _core_cls = _core.Conv1d
    _bias_slot = True


class Conv2d(Module):
    _core_cls = _core.Conv2d
    _bias_slot = True


class Conv3d(Module):
    _core_cls = _core.Conv3d
    _bias_slot = True


class ConvTranspose1d(Module):
    _core_cls = _core.ConvTranspose1d
    _bias_slot = True


class ConvTranspose2d(Module):
    _core_cls = _core.ConvTranspose2d
    _bias_slot = True


class ConvTranspose3d(Module):
    _core_cls = _core.ConvTranspose3d
    _bias_slot = True


class Dropout(Module):
    _core_cls = _core.Dropout


class Dropout2d(Module):
    _core_cls = _core.Dropout2d


class Embedding(Module):
    _core_cls = _core.Embedding


class EmbeddingBag(Module):
    _core_cls = _core.EmbeddingBag


class Flatten(Module):
    _core_cls = _core.Flatten


class Fold(Module):
    _core_cls = _core.Fold


class GroupNorm(Module):
    _core_cls = _core.GroupNorm


class GRUCell(Module):
    _core_cls = _core.GRUCell


class Hardsigmoid(Module):
    _core_cls = _core.Hardsigmoid


class Hardswish(Module):
    _core_cls = _core.Hardswish


class Identity(Module):
    _core_cls = _core.Identity


class InstanceNorm(Module):
    _core_cls = _core.InstanceNorm


class LayerNorm(Module):
    _core_cls = _core.LayerNorm


class LeakyReLU(Module):
    _core_cls = _core.LeakyReLU


class Linear(Module):
    _core_cls = _core.Linear
    _bias_slot = True


class LogSoftmax(Module):
    _core_cls = _core.LogSoftmax


class LSTMCell(Module):
    _core_cls = _core.LSTMCell


class MaxPool1d(Module):
    _core_cls = _core.MaxPool1d


class MaxPool2d(Module):
    _core_cls = _core.MaxPool2d


class Mish(Module):
    _core_cls = _core.Mish


class MultiheadAttention(Module):
    _core_cls = _core.MultiheadAttention


class PixelShuffle(Module):
    _core_cls = _core.PixelShuffle


class PixelUnshuffle(Module):
    _core_cls = _core.PixelUnshuffle


class PReLU(Module):
    _core_cls = _core.PReLU


class ReflectionPad2d(Module):
    _core_cls = _core.ReflectionPad2d


class ReLU(Module):
    _core_cls = _core.ReLU


class RMSNorm(Module):
    _core_cls = _core.RMSNorm


class Select(Module):
    _core_cls = _core.Select


class Sigmoid(Module):
    _core_cls = _core.Sigmoid


class SiLU(Module):
    _core_cls = _core.SiLU


class Softmax(Module):
    _core_cls = _core.Softmax


class Softplus(Module):
    _core_cls = _core.Softplus


class Tanh(Module):
    _core_cls = _core.Tanh


class Unroll(Module):
    """Unroll(cell): runs ``cell`` (a :class:`GRUCell` or :class:`LSTMCell`)
    over the time axis of a batch-first input [B, T, F] from zero state, in
    one Rust node, and returns every step's hidden state stacked, [B, T, H].
    The cell is this module's child ``cell`` (its parameters are
    ``cell.w_ih``, ...), shared with the object given, not copied."""

    _core_cls = _core.Unroll

    def _ft_attach(self, core: Any, spec: Tuple[tuple, dict]) -> None:
        super()._ft_attach(core, spec)
        cell = spec[0][0] if spec[0] else spec[1].get("cell")
        if isinstance(cell, Module):
            # The given cell itself is the child (its registries hold the very
            # tensors the Rust cell uses), instead of a plain holder module.
            self._modules["cell"] = cell
            for s in self._ft_slots:
                if s.path == ("cell",):
                    s.holder = cell


class Unfold(Module):
    _core_cls = _core.Unfold


class Upsample(Module):
    _core_cls = _core.Upsample


class ZeroPad2d(Module):
    _core_cls = _core.ZeroPad2d
