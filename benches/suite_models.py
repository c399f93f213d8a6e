"""floDl's ten benchmark models (FLODL_FACTS section 9), each written as a
ferrotorch user would write it (``FlowBuilder`` over ``ferrotorch.nn``
layers, no Python callable nodes), with its torch twin (a plain
``torch.nn.Module``), a weight copy from the ferrotorch graph into the twin
(BatchNorm running statistics included) and its synthetic data.

Three sizes per model:

* ``full``: floDl's sizes (``suite.py --device cuda``);
* ``cpu``: scaled down so that one step takes a few milliseconds on one
  thread (``suite.py``'s default; the five dispatch-bound models keep the
  width 64 / batch 32 of ``vs_pytorch.py`` and of floDl's program in
  ``benches/flodl_models``, so its column compares the same work);
* ``tiny``: for the bit-equality tests (``tests/test_bench_models.py``).

``CPU_SIZES`` below is the table the bench header and the README print.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _vs_pytorch_cuda as cuda_side  # noqa: E402  (the five dispatch-bound models, any width)
import ferrotorch as ft  # noqa: E402
import vs_pytorch as vp  # noqa: E402  (copy_weights)
from ferrotorch import FlowBuilder, Reshape  # noqa: E402
from ferrotorch.nn import (  # noqa: E402
    GELU,
    LSTM,
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Embedding,
    Flatten,
    GRUCell,
    LayerNorm,
    Linear,
    MaxPool2d,
    ReLU,
    Tanh,
)

Batch = Tuple[torch.Tensor, torch.Tensor]

# Each model's size parameters at floDl's size, at the CPU size and tiny.
SIZES: Dict[str, Dict[str, Dict[str, int]]] = {
    "mlp": {
        "full": dict(d=1024, batch=256),
        "cpu": dict(d=64, batch=32),
        "tiny": dict(d=8, batch=4),
    },
    "convnet": {
        "full": dict(c=64, image=64, classes=100, batch=128),
        "cpu": dict(c=8, image=32, classes=100, batch=16),
        "tiny": dict(c=2, image=16, classes=5, batch=2),
    },
    "gru_seq": {
        "full": dict(f=256, h=512, t=50, batch=128),
        "cpu": dict(f=32, h=64, t=16, batch=32),
        "tiny": dict(f=4, h=6, t=5, batch=3),
    },
    "lstm_seq": {
        "full": dict(f=256, h=512, t=50, batch=128),
        "cpu": dict(f=32, h=64, t=16, batch=32),
        "tiny": dict(f=4, h=6, t=5, batch=3),
    },
    "conv_autoenc": {
        "full": dict(c=64, image=64, batch=64),
        "cpu": dict(c=8, image=32, batch=16),
        "tiny": dict(c=2, image=16, batch=2),
    },
    "transformer": {
        "full": dict(vocab=8192, d=512, heads=8, ff=2048, seq=128, layers=4, batch=32),
        "cpu": dict(vocab=512, d=64, heads=4, ff=256, seq=32, layers=4, batch=8),
        "tiny": dict(vocab=16, d=8, heads=2, ff=16, seq=6, layers=2, batch=2),
    },
    "residual_tower": {
        "full": dict(d=1024, batch=256),
        "cpu": dict(d=64, batch=32),
        "tiny": dict(d=8, batch=4),
    },
    "gated_routing": {
        "full": dict(d=512, batch=256),
        "cpu": dict(d=64, batch=32),
        "tiny": dict(d=8, batch=4),
    },
    "iterative_refine": {
        "full": dict(d=1024, batch=256),
        "cpu": dict(d=64, batch=32),
        "tiny": dict(d=8, batch=4),
    },
    "feedback_fixed": {
        "full": dict(d=512, batch=128),
        "cpu": dict(d=64, batch=32),
        "tiny": dict(d=8, batch=4),
    },
}
NAMES: List[str] = list(SIZES)


def size_text(name: str, size: str) -> str:
    """``d=64 batch=32``: one model's size parameters, for headers and tables."""
    return " ".join(f"{k}={v}" for k, v in SIZES[name][size].items())


# --------------------------------------------------------------------------- ferrotorch


def _conv_block(b: FlowBuilder, conv, channels: int) -> FlowBuilder:
    return b.through(conv).through(BatchNorm2d(channels)).through(ReLU())


def ft_convnet(c: int, image: int, classes: int, batch: int):
    """5 x [Conv3x3 pad 1, BatchNorm2d, ReLU], MaxPool2 after the first four,
    then adaptive average pool, flatten, Linear."""
    chans = [3, c, 2 * c, 4 * c, 8 * c, 8 * c]
    b = FlowBuilder.from_(Conv2d(3, c, 3, padding=1)).through(BatchNorm2d(c)).through(ReLU())
    b.through(MaxPool2d(2))
    for i in range(1, 5):
        _conv_block(b, Conv2d(chans[i], chans[i + 1], 3, padding=1), chans[i + 1])
        if i < 4:
            b.through(MaxPool2d(2))
    return b.through(AdaptiveAvgPool2d(1)).through(Flatten()).through(Linear(8 * c, classes)).build()


def ft_conv_autoenc(c: int, image: int, batch: int):
    """Encoder 4 x [Conv4x4 stride 2 pad 1, BN, ReLU]; decoder 3 x [ConvT4x4
    stride 2 pad 1, BN, ReLU], then ConvT to 3 channels and Tanh."""
    enc = [3, c, 2 * c, 4 * c, 8 * c]
    b = FlowBuilder.from_(Conv2d(3, c, 4, stride=2, padding=1)).through(BatchNorm2d(c)).through(ReLU())
    for i in range(1, 4):
        _conv_block(b, Conv2d(enc[i], enc[i + 1], 4, stride=2, padding=1), enc[i + 1])
    for i in range(4, 1, -1):
        _conv_block(b, ConvTranspose2d(enc[i], enc[i - 1], 4, stride=2, padding=1), enc[i - 1])
    return b.through(ConvTranspose2d(c, 3, 4, stride=2, padding=1)).through(Tanh()).build()


def ft_gru_seq(f: int, h: int, t: int, batch: int):
    """GRUCell unrolled over the time axis, the last hidden state, Linear."""
    return (
        FlowBuilder.from_(ft.nn.Unroll(GRUCell(f, h)))
        .through(ft.nn.Select(1, -1))
        .through(Linear(h, f))
        .build()
    )


def ft_lstm_seq(f: int, h: int, t: int, batch: int):
    """LSTM (2 layers, batch first), the last time step, Linear."""
    return (
        FlowBuilder.from_(LSTM(f, h, 2, batch_first=True))
        .through(ft.nn.Select(1, -1))
        .through(Linear(h, f))
        .build()
    )


def ft_transformer(vocab: int, d: int, heads: int, ff: int, seq: int, layers: int, batch: int):
    """Embedding + learned positions; post-LN layers [x + MHA(x), LN,
    x + FF(x), LN]; Linear to the vocabulary, flattened to [B*S, vocab]."""
    b = FlowBuilder.from_(Embedding(vocab, d)).through(ft.nn.AddParameter(1, seq, d))
    for _ in range(layers):
        ffn = FlowBuilder.from_(Linear(d, ff)).through(GELU()).through(Linear(ff, d)).build()
        b.also(ft.nn.MultiheadAttention(d, heads)).through(LayerNorm(d)).also(ffn).through(LayerNorm(d))
    return b.through(Linear(d, vocab)).through(Reshape([-1, vocab])).build()


def _dispatch_ft(name: str) -> Callable[..., object]:
    return lambda d, batch: cuda_side.ft_model(name, d)


def _dispatch_torch(name: str) -> Callable[..., nn.Module]:
    return lambda d, batch: cuda_side.torch_model(name, d)


# --------------------------------------------------------------------------- torch twins


def _t_conv_block(conv: nn.Module, channels: int) -> List[nn.Module]:
    return [conv, nn.BatchNorm2d(channels), nn.ReLU()]


def torch_convnet(c: int, image: int, classes: int, batch: int) -> nn.Module:
    chans = [3, c, 2 * c, 4 * c, 8 * c, 8 * c]
    layers: List[nn.Module] = []
    for i in range(5):
        layers += _t_conv_block(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1), chans[i + 1])
        if i < 4:
            layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * c, classes)]
    return nn.Sequential(*layers)


def torch_conv_autoenc(c: int, image: int, batch: int) -> nn.Module:
    enc = [3, c, 2 * c, 4 * c, 8 * c]
    layers: List[nn.Module] = []
    for i in range(4):
        layers += _t_conv_block(nn.Conv2d(enc[i], enc[i + 1], 4, stride=2, padding=1), enc[i + 1])
    for i in range(4, 1, -1):
        layers += _t_conv_block(nn.ConvTranspose2d(enc[i], enc[i - 1], 4, stride=2, padding=1), enc[i - 1])
    layers += [nn.ConvTranspose2d(c, 3, 4, stride=2, padding=1), nn.Tanh()]
    return nn.Sequential(*layers)


class TorchGruSeq(nn.Module):
    def __init__(self, f: int, h: int, t: int, batch: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(f, h)
        self.out = nn.Linear(h, f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], self.cell.hidden_size, dtype=x.dtype, device=x.device)
        for t in range(x.shape[1]):
            h = self.cell(x.select(1, t), h)
        return self.out(h)


class TorchLstmSeq(nn.Module):
    def __init__(self, f: int, h: int, t: int, batch: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(f, h, 2, batch_first=True)
        self.out = nn.Linear(h, f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(x)[0].select(1, -1))


class _PostLN(nn.Module):
    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))
        self.ln2 = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, x, x)[0])
        return self.ln2(x + self.ff(x))


class _Positions(nn.Module):
    """A learned [1, S, D] added to the input (a submodule, so that the
    parameter order is the graph's: the embedding's weight first)."""

    def __init__(self, seq: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, seq, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight


class TorchTransformer(nn.Module):
    def __init__(self, vocab: int, d: int, heads: int, ff: int, seq: int, layers: int, batch: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = _Positions(seq, d)
        self.layers = nn.ModuleList(_PostLN(d, heads, ff) for _ in range(layers))
        self.head = nn.Linear(d, vocab)
        self.vocab = vocab

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pos(self.emb(x))
        for layer in self.layers:
            h = layer(h)
        return self.head(h).reshape(-1, self.vocab)


# --------------------------------------------------------------------------- data


def _regression(shape_x: Callable[[Dict[str, int]], tuple], shape_y: Callable[[Dict[str, int]], tuple]):
    def data(s: Dict[str, int], gen: torch.Generator) -> Batch:
        return torch.randn(shape_x(s), generator=gen), torch.randn(shape_y(s), generator=gen)

    return data


def _autoenc_data(s: Dict[str, int], gen: torch.Generator) -> Batch:
    x = torch.randn(s["batch"], 3, s["image"], s["image"], generator=gen)
    return x, x  # the target is the input


def _tokens_data(s: Dict[str, int], gen: torch.Generator) -> Batch:
    x = torch.randint(0, s["vocab"], (s["batch"], s["seq"]), generator=gen)
    y = torch.randint(0, s["vocab"], (s["batch"] * s["seq"],), generator=gen)
    return x, y


_flat = _regression(lambda s: (s["batch"], s["d"]), lambda s: (s["batch"], s["d"]))
_seq = _regression(lambda s: (s["batch"], s["t"], s["f"]), lambda s: (s["batch"], s["f"]))
_images = _regression(lambda s: (s["batch"], 3, s["image"], s["image"]), lambda s: (s["batch"], s["classes"]))


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Spec:
    name: str
    build_ft: Callable[..., object]
    build_torch: Callable[..., nn.Module]
    data: Callable[[Dict[str, int], torch.Generator], Batch]
    loss: str  # the Trainer's loss name; torch_loss is its torch function
    lr: float

    @property
    def torch_loss(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return F.cross_entropy if self.loss == "cross_entropy" else F.mse_loss


def _spec(name: str, build_ft, build_torch, data, loss: str = "mse", lr: float = 1e-3) -> Spec:
    return Spec(name, build_ft, build_torch, data, loss, lr)


SPECS: Dict[str, Spec] = {
    s.name: s
    for s in [
        _spec("mlp", _dispatch_ft("mlp"), _dispatch_torch("mlp"), _flat),
        _spec("convnet", ft_convnet, torch_convnet, _images),
        _spec("gru_seq", ft_gru_seq, TorchGruSeq, _seq),
        _spec("lstm_seq", ft_lstm_seq, TorchLstmSeq, _seq),
        _spec("conv_autoenc", ft_conv_autoenc, torch_conv_autoenc, _autoenc_data),
        _spec("transformer", ft_transformer, TorchTransformer, _tokens_data, "cross_entropy", 1e-4),
    ]
    + [
        _spec(n, _dispatch_ft(n), _dispatch_torch(n), _flat)
        for n in ("residual_tower", "gated_routing", "iterative_refine", "feedback_fixed")
    ]
}
assert list(SPECS) == NAMES, "SPECS and SIZES name the same models, in the same order"

# Parameter counts at floDl's size, computed from the architectures
# (FLODL_FACTS section 9; its 'computed' figures where the docs differ).
FULL_PARAMS: Dict[str, int] = {
    "mlp": 16_802_816,
    "convnet": 3_965_028,
    "gru_seq": 1_314_048,
    "lstm_seq": 3_809_536,
    "conv_autoenc": 5_515_395,
    "transformer": 21_071_872,
    "residual_tower": 14_718_976,
    "gated_routing": 2_638_856,
    "iterative_refine": 3_152_896,
    "feedback_fixed": 790_016,
}


def build_ft(name: str, size: str, seed: int = 0):
    """A fresh ferrotorch graph (ferrotorch's seeded init)."""
    ft.manual_seed(seed)
    return SPECS[name].build_ft(**SIZES[name][size])


def build_torch(name: str, size: str) -> nn.Module:
    return SPECS[name].build_torch(**SIZES[name][size])


def copy_into(graph, model: nn.Module) -> nn.Module:
    """Copies the graph's parameters, then its BatchNorm running statistics,
    into the torch twin, in order (shapes checked); returns the twin."""
    vp.copy_weights(graph, model)
    src = list(graph.buffers())
    dst = [b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")]
    assert len(src) == len(dst), f"buffer count: ferrotorch {len(src)}, torch {len(dst)}"
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(src, dst)):
            assert a.shape == b.shape, f"buffer {i}: ferrotorch {tuple(a.shape)}, torch {tuple(b.shape)}"
            b.copy_(a)
    return model


def twin(name: str, size: str, graph) -> nn.Module:
    """The torch twin of ``graph`` holding its weights."""
    return copy_into(graph, build_torch(name, size))


def batches(name: str, size: str, n: int, seed: int = 0) -> List[Batch]:
    """``n`` fixed synthetic batches."""
    gen = torch.Generator().manual_seed(seed)
    return [SPECS[name].data(SIZES[name][size], gen) for _ in range(n)]


def param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())
