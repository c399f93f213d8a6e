"""Every ferrotorch layer is a torch.nn.Module whose registered parameters
are the tensors the Rust layer computes with; a torch user swaps torch.nn
layers for ferrotorch ones and gets torch's results; subclasses are honoured."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

import ferrotorch as ft
from ferrotorch.nn.module import iter_layers

# (ferrotorch layer, torch layer, input shape): parameters copied in order.
CATALOGUE = {
    "Linear": (lambda: ft.nn.Linear(4, 3), lambda: torch.nn.Linear(4, 3), (5, 4)),
    "Linear_nobias": (
        lambda: ft.nn.Linear(4, 3, bias=False),
        lambda: torch.nn.Linear(4, 3, bias=False),
        (5, 4),
    ),
    "Conv1d": (
        lambda: ft.nn.Conv1d(2, 3, 3, padding=1),
        lambda: torch.nn.Conv1d(2, 3, 3, padding=1),
        (2, 2, 7),
    ),
    "Conv2d": (
        lambda: ft.nn.Conv2d(2, 3, 3, stride=2),
        lambda: torch.nn.Conv2d(2, 3, 3, stride=2),
        (2, 2, 7, 7),
    ),
    "ConvTranspose2d": (
        lambda: ft.nn.ConvTranspose2d(2, 3, 3),
        lambda: torch.nn.ConvTranspose2d(2, 3, 3),
        (2, 2, 5, 5),
    ),
    "LayerNorm": (lambda: ft.nn.LayerNorm(4), lambda: torch.nn.LayerNorm(4), (3, 4)),
    "BatchNorm2d": (lambda: ft.nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 2, 2)),
    "GroupNorm": (lambda: ft.nn.GroupNorm(2, 4), lambda: torch.nn.GroupNorm(2, 4), (3, 4, 5)),
    "Embedding": (lambda: ft.nn.Embedding(7, 3), lambda: torch.nn.Embedding(7, 3), None),
    "GELU": (lambda: ft.nn.GELU(), lambda: torch.nn.GELU(), (3, 4)),
    "ReLU": (lambda: ft.nn.ReLU(), lambda: torch.nn.ReLU(), (3, 4)),
    "Tanh": (lambda: ft.nn.Tanh(), lambda: torch.nn.Tanh(), (3, 4)),
    "SiLU": (lambda: ft.nn.SiLU(), lambda: torch.nn.SiLU(), (3, 4)),
    "Softmax": (lambda: ft.nn.Softmax(-1), lambda: torch.nn.Softmax(-1), (3, 4)),
    "MaxPool2d": (lambda: ft.nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (1, 2, 4, 4)),
    "AvgPool2d": (lambda: ft.nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (1, 2, 4, 4)),
    "Flatten": (lambda: ft.nn.Flatten(), lambda: torch.nn.Flatten(), (2, 3, 4)),
    "PReLU": (lambda: ft.nn.PReLU(), lambda: torch.nn.PReLU(), (3, 4)),
    "Conv3d": (lambda: ft.nn.Conv3d(2, 3, 2), lambda: torch.nn.Conv3d(2, 3, 2), (1, 2, 4, 4, 4)),
    "ConvTranspose1d": (
        lambda: ft.nn.ConvTranspose1d(2, 3, 3),
        lambda: torch.nn.ConvTranspose1d(2, 3, 3),
        (2, 2, 5),
    ),
    "ConvTranspose3d": (
        lambda: ft.nn.ConvTranspose3d(2, 3, 2),
        lambda: torch.nn.ConvTranspose3d(2, 3, 2),
        (1, 2, 3, 3, 3),
    ),
    # floDl's RMSNorm eps default is 1e-5 (torch's is finfo.eps): given explicitly they agree.
    "RMSNorm": (lambda: ft.nn.RMSNorm(4, eps=1e-6), lambda: torch.nn.RMSNorm(4, eps=1e-6), (3, 4)),
    "BatchNorm1d": (lambda: ft.nn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4), (5, 4)),
    "InstanceNorm": (
        lambda: ft.nn.InstanceNorm(3, True),
        lambda: torch.nn.InstanceNorm2d(3, affine=True),
        (2, 3, 4, 4),
    ),
    "GRUCell": (lambda: ft.nn.GRUCell(3, 4), lambda: torch.nn.GRUCell(3, 4), (2, 3)),
    "LSTMCell": (lambda: ft.nn.LSTMCell(3, 4), lambda: _First(torch.nn.LSTMCell(3, 4)), (2, 3)),
    "GRU": (lambda: ft.nn.GRU(3, 4, 2), lambda: _First(torch.nn.GRU(3, 4, 2)), (5, 2, 3)),
    "LSTM": (
        lambda: ft.nn.LSTM(3, 4, 2, batch_first=True),
        lambda: _First(torch.nn.LSTM(3, 4, 2, batch_first=True)),
        (2, 5, 3),
    ),
    "EmbeddingBag": (lambda: ft.nn.EmbeddingBag(7, 3), lambda: torch.nn.EmbeddingBag(7, 3), None),
    "LeakyReLU": (lambda: ft.nn.LeakyReLU(0.1), lambda: torch.nn.LeakyReLU(0.1), (3, 4)),
    "ELU": (lambda: ft.nn.ELU(0.5), lambda: torch.nn.ELU(0.5), (3, 4)),
    "Softplus": (lambda: ft.nn.Softplus(2.0, 10.0), lambda: torch.nn.Softplus(2.0, 10.0), (3, 4)),
    "Mish": (lambda: ft.nn.Mish(), lambda: torch.nn.Mish(), (3, 4)),
    "SELU": (lambda: ft.nn.SELU(), lambda: torch.nn.SELU(), (3, 4)),
    "Hardswish": (lambda: ft.nn.Hardswish(), lambda: torch.nn.Hardswish(), (3, 4)),
    "Hardsigmoid": (lambda: ft.nn.Hardsigmoid(), lambda: torch.nn.Hardsigmoid(), (3, 4)),
    "Sigmoid": (lambda: ft.nn.Sigmoid(), lambda: torch.nn.Sigmoid(), (3, 4)),
    "LogSoftmax": (lambda: ft.nn.LogSoftmax(-1), lambda: torch.nn.LogSoftmax(-1), (3, 4)),
    "MaxPool1d": (lambda: ft.nn.MaxPool1d(2), lambda: torch.nn.MaxPool1d(2), (2, 3, 6)),
    "AvgPool1d": (lambda: ft.nn.AvgPool1d(2), lambda: torch.nn.AvgPool1d(2), (2, 3, 6)),
    "AdaptiveAvgPool2d": (
        lambda: ft.nn.AdaptiveAvgPool2d((2, 2)),
        lambda: torch.nn.AdaptiveAvgPool2d((2, 2)),
        (1, 2, 5, 5),
    ),
    "AdaptiveMaxPool2d": (
        lambda: ft.nn.AdaptiveMaxPool2d((2, 2)),
        lambda: torch.nn.AdaptiveMaxPool2d((2, 2)),
        (1, 2, 5, 5),
    ),
    "PixelShuffle": (lambda: ft.nn.PixelShuffle(2), lambda: torch.nn.PixelShuffle(2), (1, 4, 3, 3)),
    "PixelUnshuffle": (lambda: ft.nn.PixelUnshuffle(2), lambda: torch.nn.PixelUnshuffle(2), (1, 1, 4, 4)),
    "ZeroPad2d": (lambda: ft.nn.ZeroPad2d(1), lambda: torch.nn.ZeroPad2d(1), (1, 1, 3, 3)),
    "ReflectionPad2d": (lambda: ft.nn.ReflectionPad2d(1), lambda: torch.nn.ReflectionPad2d(1), (1, 1, 3, 3)),
    "Upsample": (lambda: ft.nn.Upsample((6, 6)), lambda: torch.nn.Upsample((6, 6)), (1, 1, 3, 3)),
    "Unfold": (lambda: ft.nn.Unfold(2), lambda: torch.nn.Unfold(2), (1, 2, 4, 4)),
    "Dropout_eval": (lambda: ft.nn.Dropout(0.5).eval(), lambda: torch.nn.Dropout(0.5).eval(), (3, 4)),
    "Identity": (lambda: ft.nn.Identity(), lambda: torch.nn.Identity(), (3, 4)),
    "Dropout2d_eval": (
        lambda: ft.nn.Dropout2d(0.5).eval(),
        lambda: torch.nn.Dropout2d(0.5).eval(),
        (2, 3, 4, 4),
    ),
    "AlphaDropout_eval": (
        lambda: ft.nn.AlphaDropout(0.5).eval(),
        lambda: torch.nn.AlphaDropout(0.5).eval(),
        (3, 4),
    ),
    "Fold": (lambda: ft.nn.Fold((3, 3), 2), lambda: torch.nn.Fold((3, 3), 2), (1, 8, 4)),
    # As a one-input layer, Bilinear computes bilinear(x, x) (floDl's node form).
    "Bilinear": (lambda: ft.nn.Bilinear(3, 3, 2), lambda: _Same(torch.nn.Bilinear(3, 3, 2)), (4, 3)),
    # Self-attention: torch's mha(x, x, x)[0] (need_weights=True, its training path); same parameter layout.
    "MultiheadAttention": (
        lambda: ft.nn.MultiheadAttention(4, 2),
        lambda: _SelfAttention(torch.nn.MultiheadAttention(4, 2, batch_first=True)),
        (2, 5, 4),
    ),
    "Unroll_gru": (
        lambda: ft.nn.Unroll(ft.nn.GRUCell(3, 4)),
        lambda: _Unrolled(torch.nn.GRUCell(3, 4)),
        (2, 5, 3),
    ),
    "Unroll_lstm": (
        lambda: ft.nn.Unroll(ft.nn.LSTMCell(3, 4)),
        lambda: _Unrolled(torch.nn.LSTMCell(3, 4)),
        (2, 5, 3),
    ),
    "Select": (lambda: ft.nn.Select(1, -1), lambda: _Select(1, -1), (2, 5, 3)),
    "AddParameter": (lambda: ft.nn.AddParameter(1, 5, 3), lambda: _AddParameter(1, 5, 3), (2, 5, 3)),
}


class _SelfAttention(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x, x, x)[0]


class _Unrolled(torch.nn.Module):
    """The loop ferrotorch.nn.Unroll replaces: the cell's hidden state at every step, stacked."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x):
        b, h = x.shape[0], self.cell.hidden_size
        state = torch.zeros(b, h, dtype=x.dtype)
        if isinstance(self.cell, torch.nn.LSTMCell):
            state = (state, torch.zeros(b, h, dtype=x.dtype))
        outs = []
        for t in range(x.shape[1]):
            state = self.cell(x.select(1, t), state)
            outs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outs, 1)


class _Select(torch.nn.Module):
    def __init__(self, dim, index):
        super().__init__()
        self.dim, self.index = dim, index

    def forward(self, x):
        return x.select(self.dim, self.index)


class _AddParameter(torch.nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(*shape))  # copied into ours: non-zero

    def forward(self, x):
        return x + self.weight


class _Same(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x, x)


class _First(torch.nn.Module):
    """torch's recurrent layers return (output, state): the output, as the
    ferrotorch layer's is compared once it passes through Tanh below; the
    ferrotorch layers' own tuples are checked against torch's in test_nn_layers."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        out = self.m(x)
        return out[0] if isinstance(out, tuple) else out


def _input(shape, i=0):
    g = torch.Generator().manual_seed(i)
    if shape is None:
        return torch.randint(0, 7, (4, 3), generator=g)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _copy_from(ours, ref):
    with torch.no_grad():
        for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
            p.copy_(q)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_layer_swapped_into_a_torch_model_is_bit_equal(name):
    """torch.nn.Sequential(torch layer, Tanh) against Sequential(ferrotorch
    layer, Tanh): same outputs, gradients and (BatchNorm) running statistics."""
    mine_fn, ref_fn, shape = CATALOGUE[name]
    ref = torch.nn.Sequential(ref_fn(), torch.nn.Tanh()).double()
    ours = torch.nn.Sequential(_First(mine_fn()), torch.nn.Tanh()).double()
    assert isinstance(ours[0].m, torch.nn.Module) and isinstance(ours[0].m, ft.nn.Module)
    _copy_from(ours, ref)
    x = _input(shape)
    xa, xb = (x.clone().requires_grad_(x.is_floating_point()) for _ in range(2))
    a, b = ours(xa), ref(xb)
    assert torch.equal(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    if x.is_floating_point():
        assert torch.equal(xa.grad, xb.grad)
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)
    for s, t in zip(
        ours[0].buffers(), [v for k, v in ref[0].named_buffers() if "num_batches_tracked" not in k]
    ):
        assert torch.equal(s, t)


def test_the_catalogue_covers_every_layer():
    """Every layer is swapped in above."""
    covered = {n.split("_")[0] for n in CATALOGUE} | {"BatchNorm"}  # BatchNorm1d is BatchNorm
    names = {c.__name__ for c in iter_layers() if c.__module__ == "ferrotorch.nn"}
    assert names <= covered, sorted(names - covered)


def test_type_registration_and_one_copy():
    lin = ft.nn.Linear(4, 3)
    assert type(lin) is ft.nn.Linear
    assert all(issubclass(c, ft.nn.Module) and issubclass(c, torch.nn.Module) for c in iter_layers())
    assert dict(lin.named_parameters()).keys() == {"weight", "bias"}
    assert isinstance(lin.weight, torch.nn.Parameter)
    # The registered parameter is the Rust layer's tensor: an in-place change shows in the forward.
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.fill_(2.0)
    assert torch.equal(lin(torch.randn(2, 4)), torch.full((2, 3), 2.0))
    assert ft.nn.Linear(2, 3, bias=False).bias is None
    mha = ft.nn.MultiheadAttention(8, 2)
    assert list(dict(mha.named_parameters())) == [
        "in_proj_weight",
        "in_proj_bias",
        "out_proj.weight",
        "out_proj.bias",
    ]
    assert isinstance(mha.get_submodule("out_proj"), torch.nn.Module)


def test_containers_hooks_state_dict_and_to():
    seq = torch.nn.Sequential(ft.nn.Linear(4, 8), torch.nn.Tanh(), ft.nn.Linear(8, 2))
    lst = torch.nn.ModuleList([ft.nn.Linear(2, 2), ft.nn.ReLU()])
    md = torch.nn.ModuleDict({"a": ft.nn.Linear(2, 2)})
    assert len(list(lst.parameters())) == 2 and len(list(md.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    seen = []
    seq[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    seq(torch.randn(3, 4))
    assert seen == [torch.Size([3, 8])]
    twin = torch.nn.Sequential(ft.nn.Linear(4, 8), torch.nn.Tanh(), ft.nn.Linear(8, 2))
    twin.load_state_dict(seq.state_dict())
    x = torch.randn(3, 4)
    assert torch.equal(twin(x), seq(x))
    seq.to(torch.float64)
    assert seq[0].weight.dtype == torch.float64 and seq(x.double()).dtype == torch.float64
    bn = ft.nn.BatchNorm2d(3).double()
    assert bn.running_mean.dtype == torch.float64
    bn(torch.randn(4, 3, 2, 2, dtype=torch.float64))
    assert bn.running_mean.abs().sum() > 0  # the registered buffer is the one the Rust layer updates
    bn.eval()
    assert not bn.training


def test_functional_call_and_checkpoint():
    lin = ft.nn.Linear(4, 3)
    w, b = torch.randn(3, 4, requires_grad=True), torch.randn(3, requires_grad=True)
    x = torch.randn(2, 4)
    out = torch.func.functional_call(lin, {"weight": w, "bias": b}, (x,))
    assert torch.equal(out, F.linear(x, w, b))
    out.sum().backward()
    assert w.grad is not None and lin.weight.grad is None
    assert torch.equal(lin(x), F.linear(x, lin.weight, lin.bias))  # its own tensors again
    for reentrant in (True, False):
        xr = torch.randn(2, 4, requires_grad=True)
        lin.zero_grad()
        checkpoint(lin, xr, use_reentrant=reentrant).sum().backward()
        assert torch.equal(xr.grad, lin.weight.sum(0).expand(2, 4).detach())
        assert torch.equal(lin.weight.grad, xr.detach().sum(0).expand(3, 4))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_are_independent_and_equal(how):
    torch.manual_seed(0)
    m = torch.nn.Sequential(ft.nn.Linear(4, 3), ft.nn.BatchNorm(3), ft.nn.Tanh())
    m.add_module("gru", ft.nn.GRU(3, 2, 2))  # repeated raw names, one per layer
    m[1](torch.randn(5, 3))  # running statistics moved
    state = torch.random.get_rng_state()
    c = copy.deepcopy(m) if how == "deepcopy" else pickle.loads(pickle.dumps(m))
    assert torch.equal(torch.random.get_rng_state(), state)  # a copy draws nothing
    for (k, v), (k2, v2) in zip(m.state_dict().items(), c.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2) and v is not v2
    x = torch.randn(5, 4)
    m.eval(), c.eval()
    assert not c[1].training
    head = torch.nn.Sequential(*list(m)[:3]), torch.nn.Sequential(*list(c)[:3])
    assert torch.equal(head[0](x), head[1](x))
    seq = torch.randn(6, 2, 3)
    for a, b in zip(m.gru(seq), c.gru(seq)):
        assert torch.equal(a, b)
    with torch.no_grad():
        c[0].weight.add_(1.0)
    assert not torch.equal(c[0].weight, m[0].weight)


class Scaled(ft.nn.Linear):
    def __init__(self, i, o, scale):
        super().__init__(i, o)
        self.scale = scale

    def forward(self, x):
        return super().forward(x) * self.scale

    def hello(self):
        return "hello"


def test_subclass_is_honoured_alone_and_in_graphs():
    s = Scaled(2, 3, 2.0)
    assert type(s) is Scaled and s.hello() == "hello" and isinstance(s, ft.nn.Linear)
    x = torch.randn(4, 2)
    plain = F.linear(x, s.weight, s.bias)
    assert torch.equal(s(x), plain * 2.0)
    g = ft.FlowBuilder.from_(s).through(ft.nn.ReLU()).build()
    assert torch.equal(g(x), torch.relu(plain * 2.0))  # the subclass's forward ran as a node
    assert [n for n, _ in g.named_parameters()] == ["module_1/weight", "module_1/bias"]
    # An unchanged layer runs as its Rust module: floDl's node name.
    assert ft.FlowBuilder.from_(ft.nn.Linear(2, 3)).build().node_ids() == ["linear_1"]


def test_hooked_layer_in_a_graph_runs_its_hooks():
    lin = ft.nn.Linear(2, 3)
    calls = []
    lin.register_forward_hook(lambda m, i, o: calls.append(1))
    g = ft.FlowBuilder.from_(lin).build()
    g(torch.randn(1, 2))
    assert calls == [1]


def test_module_subclass_without_a_rust_layer_is_a_plain_torch_module():
    class Twice(ft.nn.Module):
        def forward(self, x):
            return 2 * x

    t = Twice()
    x = torch.randn(3)
    assert torch.equal(t(x), 2 * x) and list(t.parameters()) == []
    g = ft.FlowBuilder.from_(ft.nn.Identity()).through(t).build()
    assert torch.equal(g(x), 2 * x)
    with pytest.raises(ft.InputTypeError, match="takes no arguments"):
        Twice(3)


def test_torch_compile_of_a_model_holding_graphs_and_layers_is_clean_and_equal(caplog):
    """Graphs and layers are intended graph breaks under torch.compile: the
    torch code around them compiles, nothing warns or logs, and outputs and
    gradients equal eager's."""
    import logging
    import warnings

    torch.manual_seed(0)
    g = ft.FlowBuilder.from_(ft.nn.Linear(4, 8)).through(ft.nn.GELU()).through(ft.nn.Linear(8, 2)).build()

    class Holder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pre, self.g, self.post = torch.nn.Linear(3, 4), g, ft.nn.Linear(2, 2)

        def forward(self, x):
            return self.post(self.g(torch.relu(self.pre(x)))) * 2

    h = Holder()
    x = torch.randn(5, 3)
    torch._dynamo.reset()
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = torch.compile(h, backend="aot_eager")
        out = compiled(x)
        out.sum().backward()
        alone = torch.compile(g, backend="aot_eager")(torch.randn(2, 4))
    assert not caught, [str(w.message) for w in caught]
    assert not [r for r in caplog.records if r.name.startswith("torch")]
    grads = [p.grad.clone() for p in h.parameters()]
    h.zero_grad()
    ref = h(x)
    ref.sum().backward()
    assert torch.equal(out, ref) and alone.shape == (2, 2)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, h.parameters()))
