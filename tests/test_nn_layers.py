"""The module catalogue against torch.nn on copied weights: outputs, input and
parameter gradients (float64 via ``module.double()``), train/eval behaviour,
error messages, floDl names and init, and one FlowBuilder convnet."""

import math

import pytest
import torch

import ferrotorch as ft
from ferrotorch import FlowBuilder, nn

D = torch.float64


def _copy(ours, ref_params):
    with torch.no_grad():
        for a, b in zip(ours, ref_params, strict=True):
            assert a.shape == b.shape, (a.shape, b.shape)
            b.copy_(a)


def _run(ours, ref, *xs, ours_call=None, ref_call=None):
    """Same inputs through both, backward one random projection; compare
    outputs and input grads. Returns (out_ours, out_ref)."""
    xa = [x.clone().requires_grad_(x.is_floating_point()) for x in xs]
    xb = [x.clone().requires_grad_(x.is_floating_point()) for x in xs]
    a = (ours_call or ours)(*xa)
    b = (ref_call or ref)(*xb)
    torch.testing.assert_close(a, b)
    proj = torch.randn_like(b)
    (a * proj).sum().backward()
    (b * proj).sum().backward()
    for ga, gb in zip(xa, xb):
        if ga.is_floating_point():
            torch.testing.assert_close(ga.grad, gb.grad)
    return a, b


def _check(ours, ref, *xs, ref_params=None, **kw):
    """float64 comparison with parameters copied ours -> ref in order."""
    ours.double()
    ref.double()
    ref_params = list(ref.parameters()) if ref_params is None else ref_params
    _copy(ours.parameters(), ref_params)
    _run(ours, ref, *xs, **kw)
    for p, q in zip(ours.parameters(), ref_params):
        torch.testing.assert_close(p.grad, q.grad)


def _perturb(m):
    """Non-trivial values for parameters initialised to constants."""
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p))


# ---------------------------------------------------------------- convolutions

CONVS = [
    (nn.Conv1d, torch.nn.Conv1d, (4, 6, 3), {}, (2, 4, 11)),
    (nn.Conv1d, torch.nn.Conv1d, (4, 6, 3), dict(stride=2, padding=1, dilation=2, groups=2), (2, 4, 13)),
    (nn.Conv2d, torch.nn.Conv2d, (3, 8, 3), dict(padding=1), (2, 3, 7, 6)),
    (
        nn.Conv2d,
        torch.nn.Conv2d,
        (4, 6, (3, 2)),
        dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=False),
        (2, 4, 9, 8),
    ),
    (nn.Conv3d, torch.nn.Conv3d, (2, 4, 3), dict(stride=2, padding=1), (1, 2, 5, 6, 5)),
    (
        nn.ConvTranspose1d,
        torch.nn.ConvTranspose1d,
        (4, 6, 3),
        dict(stride=2, padding=1, output_padding=1),
        (2, 4, 7),
    ),
    (
        nn.ConvTranspose2d,
        torch.nn.ConvTranspose2d,
        (4, 6, 4),
        dict(stride=2, padding=1, groups=2, dilation=1),
        (2, 4, 5, 5),
    ),
    (
        nn.ConvTranspose2d,
        torch.nn.ConvTranspose2d,
        (3, 2, (3, 2)),
        dict(stride=(2, 3), output_padding=(1, 2), dilation=(1, 1), bias=False),
        (1, 3, 4, 4),
    ),
    (nn.ConvTranspose2d, torch.nn.ConvTranspose2d, (2, 2, 3), dict(dilation=2, padding=2), (1, 2, 5, 5)),
    (nn.ConvTranspose3d, torch.nn.ConvTranspose3d, (2, 3, 2), dict(stride=2), (1, 2, 3, 4, 3)),
]


@pytest.mark.parametrize("cls,ref_cls,args,kw,shape", CONVS)
def test_conv_matches_torch(cls, ref_cls, args, kw, shape):
    ours, ref = cls(*args, **kw), ref_cls(*args, **kw)
    assert (ours.bias is None) == (kw.get("bias") is False)
    _check(ours, ref, torch.randn(shape, dtype=D))


def test_conv_float32():
    ours, ref = nn.Conv2d(3, 5, 3), torch.nn.Conv2d(3, 5, 3)
    _copy(ours.parameters(), ref.parameters())
    _run(ours, ref, torch.randn(2, 3, 6, 6))


def test_conv_errors():
    c = nn.Conv2d(3, 8, 3)
    with pytest.raises(ft.ShapeError, match=r"Conv2d\(3, 8.*4-D input.*\[3, 5, 5\]"):
        c(torch.randn(3, 5, 5))
    with pytest.raises(ft.ShapeError, match=r"expected 3 input channels.*\[1, 4, 5, 5\]"):
        c(torch.randn(1, 4, 5, 5))
    with pytest.raises(ft.DTypeError, match="float64 but the parameters are float32"):
        c(torch.randn(1, 3, 5, 5, dtype=D))
    with pytest.raises(ft.DTypeError, match="floating-point"):
        c(torch.ones(1, 3, 5, 5, dtype=torch.long))
    with pytest.raises(ft.ConfigError, match="divisible by groups"):
        nn.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(ft.ConfigError, match="output_padding"):
        nn.ConvTranspose2d(3, 8, 3, stride=2, output_padding=2)
    with pytest.raises(ft.ConfigError, match="kernel_size"):
        nn.Conv1d(3, 8, 0)
    with pytest.raises(ft.InputTypeError, match="kernel_size"):
        nn.Conv2d(3, 8, (3, 3, 3))
    with pytest.raises(ft.ShapeError, match="ConvTranspose1d.*3-D input"):
        nn.ConvTranspose1d(2, 2, 2)(torch.randn(2, 2))


@pytest.mark.parametrize(
    "ours_fn,ref_fn",
    [
        (lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3)),
        (lambda: nn.Conv1d(4, 6, 3), lambda: torch.nn.Conv1d(4, 6, 3)),
        (lambda: nn.Conv2d(3, 8, 3), lambda: torch.nn.Conv2d(3, 8, 3)),
        (lambda: nn.Conv2d(4, 6, 3, groups=2), lambda: torch.nn.Conv2d(4, 6, 3, groups=2)),
        (lambda: nn.Conv3d(2, 4, 2), lambda: torch.nn.Conv3d(2, 4, 2)),
        # floDl's transposed fan_in is in*k^d, torch's out/groups*k^d: equal when in == out/groups
        (lambda: nn.ConvTranspose2d(4, 4, 3), lambda: torch.nn.ConvTranspose2d(4, 4, 3)),
        (lambda: nn.Bilinear(3, 4, 2), lambda: torch.nn.Bilinear(3, 4, 2)),
        (lambda: nn.GRUCell(3, 4), lambda: torch.nn.GRUCell(3, 4)),
        (lambda: nn.LSTMCell(3, 4), lambda: torch.nn.LSTMCell(3, 4)),
        (lambda: nn.GRU(3, 4, 2), lambda: torch.nn.GRU(3, 4, 2)),
        (lambda: nn.LSTM(3, 4, 2), lambda: torch.nn.LSTM(3, 4, 2)),
        (lambda: nn.Embedding(7, 3), lambda: torch.nn.Embedding(7, 3)),
        (lambda: nn.Embedding(7, 3, padding_idx=2), lambda: torch.nn.Embedding(7, 3, padding_idx=2)),
        (lambda: nn.EmbeddingBag(7, 3), lambda: torch.nn.EmbeddingBag(7, 3)),
    ],
)
def test_seeded_init_equals_torch_construction(ours_fn, ref_fn):
    """ft.manual_seed(s) then construct matches torch.manual_seed(s) then
    construct draw for draw where floDl's formula and draw order coincide with
    torch.nn's. floDl is the oracle for the arithmetic: it computes
    rand*2b - b where torch's uniform_ computes differently, so uniform draws
    may sit up to 2 ulp of the bound from torch's (bit-equality with floDl is checked in
    test_flodl_fidelity.py); normal draws (Embedding) are bit-equal."""
    ft.manual_seed(123)
    ours = ours_fn()
    torch.manual_seed(123)
    ref = ref_fn()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype == torch.float32
        # rand*2b - b rounds once more than torch: an error of about ulp(b)
        atol = 2 * torch.finfo(torch.float32).eps * b.abs().max().item()
        torch.testing.assert_close(a, b, rtol=0, atol=atol)
    if isinstance(ours, (nn.Embedding, nn.EmbeddingBag)):
        for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
            assert torch.equal(a, b)


def test_conv_transpose_init_follows_flodl_fan_in():
    """Documented difference: floDl draws ConvTranspose weights with fan_in =
    in*k^d (torch: out/groups*k^d)."""
    m = nn.ConvTranspose2d(16, 2, 3)
    bound = 1 / math.sqrt(16 * 9)
    assert m.weight.abs().max() <= bound
    assert m.weight.abs().max() > 0.8 * bound
    assert m.bias.abs().max() <= bound


def test_mha_init_is_flodl_xavier():
    """floDl: each projection xavier_uniform(E, E) and zero biases (torch draws
    one [3E, E] in_proj matrix and a kaiming out_proj), in torch's packed layout."""
    m = nn.MultiheadAttention(32, 4)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    bound = math.sqrt(6 / 64)  # xavier of one [E, E] block (not of [3E, E])
    blocks = list(m.in_proj_weight.chunk(3)) + [m.out_proj.weight]
    for p in blocks:
        assert p.abs().max() <= bound and p.abs().max() > 0.9 * bound
    assert torch.all(m.in_proj_bias == 0) and torch.all(m.out_proj.bias == 0)


# ---------------------------------------------------------------- norms


@pytest.mark.parametrize(
    "cls,ref_cls,shape",
    [
        (nn.BatchNorm, torch.nn.BatchNorm1d, (6, 4)),
        (nn.BatchNorm, torch.nn.BatchNorm1d, (5, 4, 3)),
        (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 5, 2)),
    ],
)
def test_batchnorm_train_and_eval(cls, ref_cls, shape):
    ours, ref = cls(4), ref_cls(4)
    _perturb(ours)
    ours.double()
    ref.double()
    _copy(ours.parameters(), ref.parameters())
    assert [n for n, _ in ours.named_buffers()] == ["running_mean", "running_var"]
    for _ in range(3):  # running statistics follow torch over several steps
        _run(ours, ref, torch.randn(shape, dtype=D) * 2 + 1)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    ours.eval()
    ref.eval()
    before = ours.running_mean.clone()
    _run(ours, ref, torch.randn(shape, dtype=D))
    _run(ours, ref, torch.randn((1,) + shape[1:], dtype=D))  # batch 1 is fine in eval
    torch.testing.assert_close(ours.running_mean, before, rtol=0, atol=0)


def test_batchnorm_errors():
    with pytest.raises(ft.ShapeError, match=r"BatchNorm2d\(3\).*at least 2 samples"):
        nn.BatchNorm2d(3)(torch.randn(1, 3, 4, 4))
    with pytest.raises(ft.ShapeError, match="at least 2 samples"):
        nn.BatchNorm(3)(torch.randn(1, 3))
    with pytest.raises(ft.ShapeError, match=r"4-D input \[N, C, H, W\]"):
        nn.BatchNorm2d(3)(torch.randn(2, 3, 4))
    with pytest.raises(ft.ShapeError, match="2-D or 3-D"):
        nn.BatchNorm(3)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ft.ShapeError, match="expected 3 channels"):
        nn.BatchNorm(3)(torch.randn(4, 2))
    with pytest.raises(ft.ConfigError, match="momentum"):
        nn.BatchNorm(3, momentum=2.0)
    assert nn.BatchNorm(3).name == "batchnorm" and nn.BatchNorm2d(3).name == "batchnorm2d"
    assert nn.BatchNorm1d is nn.BatchNorm


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(2, 6, 5), (2, 6, 3, 4)])
def test_groupnorm(affine, shape):
    ours, ref = nn.GroupNorm(3, 6, affine=affine), torch.nn.GroupNorm(3, 6, affine=affine)
    _perturb(ours)
    _check(ours, ref, torch.randn(shape, dtype=D))
    with pytest.raises(ft.ConfigError, match="divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ft.ShapeError, match="expected 6 channels"):
        ours(torch.randn(2, 4, 3, dtype=D))


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize(
    "ref_cls,shape", [(torch.nn.InstanceNorm1d, (2, 3, 7)), (torch.nn.InstanceNorm2d, (2, 3, 4, 5))]
)
def test_instancenorm_uses_input_stats(affine, ref_cls, shape):
    ours, ref = nn.InstanceNorm(3, affine=affine), ref_cls(3, affine=affine)
    assert ours.buffers() == []
    assert (ours.weight is None) == (not affine)
    _perturb(ours)
    _check(ours, ref, torch.randn(shape, dtype=D))
    ours.eval()
    ref.eval()  # no running stats: eval still uses the input's statistics
    _run(ours, ref, torch.randn(shape, dtype=D))
    with pytest.raises(ft.ShapeError, match="InstanceNorm"):
        ours(torch.randn(2, 3, dtype=D))


def test_rmsnorm():
    ours, ref = nn.RMSNorm(6), torch.nn.RMSNorm(6, eps=1e-5)
    _perturb(ours)
    _check(ours, ref, torch.randn(3, 2, 6, dtype=D))
    assert ours.name == "rmsnorm" and [n for n, _ in ours.named_parameters()] == ["weight"]
    with pytest.raises(ft.ShapeError, match=r"RMSNorm\(6\).*\[..., 6\]"):
        ours(torch.randn(3, 5, dtype=D))


# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize(
    "cls,ref_cls,shape",
    [
        (nn.Dropout, torch.nn.Dropout, (8, 16)),
        (nn.Dropout2d, torch.nn.Dropout2d, (4, 6, 3, 3)),
        (nn.AlphaDropout, torch.nn.AlphaDropout, (8, 16)),
    ],
)
def test_dropout_seeded_mask_equals_torch(cls, ref_cls, shape):
    ours, ref = cls(0.3), ref_cls(0.3)
    x = torch.randn(shape, dtype=D)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ft.manual_seed(7)
    a = ours(xa)
    torch.manual_seed(7)
    b = ref(xb)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, x)  # something was dropped
    a.sum().backward()
    b.sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    ours.eval()
    assert torch.equal(ours(x), x)
    ours.train()
    assert torch.equal(cls(0.0)(x), x)


def test_dropout_errors():
    with pytest.raises(ft.ConfigError, match=r"p must be in \[0, 1\]"):
        nn.Dropout(1.5)
    with pytest.raises(ft.ShapeError, match="Dropout2d.*4-D"):
        nn.Dropout2d(0.5)(torch.randn(3, 4))
    assert [nn.Dropout().name, nn.Dropout2d().name, nn.AlphaDropout().name] == [
        "dropout",
        "dropout2d",
        "alpha_dropout",
    ]


# ---------------------------------------------------------------- embeddings


def test_embedding_padding_idx():
    ours, ref = nn.Embedding(10, 4, padding_idx=1), torch.nn.Embedding(10, 4, padding_idx=1)
    assert torch.all(ours.weight[1] == 0)
    ours.double()
    ref.double()
    _copy(ours.parameters(), ref.parameters())
    idx = torch.tensor([[1, 3, 1], [9, 0, 3]])
    a, b = ours(idx), ref(idx)
    torch.testing.assert_close(a, b)
    proj = torch.randn_like(a)
    (a * proj).sum().backward()
    (b * proj).sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    assert torch.all(ours.weight.grad[1] == 0)
    neg = nn.Embedding(5, 2, padding_idx=-1)  # negative: counted from the end, as torch
    assert torch.all(neg.weight[4] == 0) and torch.all(neg.weight[:4] != 0)


def test_embedding_errors():
    e = nn.Embedding(5, 2)
    with pytest.raises(ft.DTypeError, match="int64 or int32"):
        e(torch.tensor([0.0, 1.0]))
    with pytest.raises(ft.ConfigError, match=r"index 5 is out of range \[0, 5\)"):
        e(torch.tensor([0, 5]))
    with pytest.raises(ft.ConfigError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(mode):
    ours, ref = nn.EmbeddingBag(10, 3, mode=mode), torch.nn.EmbeddingBag(10, 3, mode=mode)
    ours.double()
    ref.double()
    _copy(ours.parameters(), ref.parameters())
    idx = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9])
    off = torch.tensor([0, 3, 4])
    a, b = ours.forward_bag(idx, off), ref(idx, off)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ours(idx, off), b)
    a.sum().backward()
    b.sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    bags = torch.tensor([[1, 2, 3], [4, 4, 0]])
    torch.testing.assert_close(ours(bags), ref(bags))
    with pytest.raises(ft.ShapeError, match="2-D input"):
        ours(idx)
    with pytest.raises(ft.ConfigError, match="offsets must start at 0"):
        ours.forward_bag(idx, torch.tensor([1, 3]))
    with pytest.raises(ft.ConfigError, match="mode"):
        nn.EmbeddingBag(3, 2, mode="min")


# ---------------------------------------------------------------- recurrent


@pytest.mark.parametrize("bias", [True, False])
def test_grucell(bias):
    ours, ref = nn.GRUCell(3, 5, bias=bias), torch.nn.GRUCell(3, 5, bias=bias)
    names = [n for n, _ in ours.named_parameters()]
    assert names == ["w_ih", "w_hh", "b_ih", "b_hh"][: 4 if bias else 2]
    x, h = torch.randn(4, 3, dtype=D), torch.randn(4, 5, dtype=D)
    _check(ours, ref, x, h)
    _run(ours, ref, x)  # no state: zeros
    torch.testing.assert_close(ours.forward(x), ref(x))  # Module forward = h
    assert ours.weight_ih.shape == (15, 3)


def test_lstmcell():
    ours, ref = nn.LSTMCell(3, 5), torch.nn.LSTMCell(3, 5)
    ours.double()
    ref.double()
    _copy(ours.parameters(), ref.parameters())
    x, h, c = (torch.randn(4, n, dtype=D) for n in (3, 5, 5))
    (h1, c1), (h2, c2) = ours(x, (h, c)), ref(x, (h, c))
    torch.testing.assert_close(h1, h2)
    torch.testing.assert_close(c1, c2)
    (h1.sum() + 2 * c1.sum()).backward()
    (h2.sum() + 2 * c2.sum()).backward()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    # forward is __call__ (torch's contract); as a graph node the cell returns h alone.
    torch.testing.assert_close(ours.forward(x), ref(x))
    node = ft.FlowBuilder.from_(ours).build()
    torch.testing.assert_close(node(x), ref(x)[0])
    packed = ours.forward_step(x, torch.cat([h, c], 1))  # floDl's packed state
    torch.testing.assert_close(packed, torch.cat(ref(x, (h, c)), 1))
    with pytest.raises(ft.ShapeError, match=r"packed state.*\[4, 10\]"):
        ours.forward_step(x, h)
    with pytest.raises(ft.ShapeError, match=r"LSTMCell\(3, 5\).*h of shape \[4, 5\]"):
        ours(x, (h[:2], c))
    with pytest.raises(ft.InputTypeError, match=r"tuple \(h, c\)"):
        ours(x, h)
    with pytest.raises(ft.ShapeError, match="expected 3 input features"):
        ours(torch.randn(4, 2, dtype=D))


def _fd_check(cell_fn):
    """floDl's acceptance check: d(sum h)/dx by central differences (eps 1e-3, tol 0.05)."""
    x = torch.tensor([[0.5, -0.3], [0.1, 0.8]], requires_grad=True)
    cell_fn(x).sum().backward()
    eps = 1e-3
    num = torch.zeros_like(x)
    with torch.no_grad():
        for i in range(2):
            for j in range(2):
                xp, xm = x.detach().clone(), x.detach().clone()
                xp[i, j] += eps
                xm[i, j] -= eps
                num[i, j] = (cell_fn(xp).sum() - cell_fn(xm).sum()) / (2 * eps)
    assert (x.grad - num).abs().max() < 0.05


def test_grucell_finite_difference():
    cell = nn.GRUCell(2, 2)
    _fd_check(lambda x: cell(x))


def test_lstmcell_finite_difference():
    cell = nn.LSTMCell(2, 2)
    _fd_check(lambda x: cell(x)[0])


@pytest.mark.parametrize("batch_first", [False, True])
def test_gru_layers(batch_first):
    ours = nn.GRU(3, 4, num_layers=2, batch_first=batch_first)
    ref = torch.nn.GRU(3, 4, num_layers=2, batch_first=batch_first)
    # floDl's raw names, a repeated name numbered per occurrence (as floDl names a node's parameters).
    names = [f"{n}_{i}" for i in range(2) for n in ("w_ih", "w_hh", "b_ih", "b_hh")]
    assert [n for n, _ in ours.named_parameters()] == names
    x = torch.randn((2, 5, 3) if batch_first else (5, 2, 3), dtype=D)
    h0 = torch.randn(2, 2, 4, dtype=D)
    _check(
        ours, ref, x, h0, ours_call=lambda x, h: ours.forward_seq(x, h)[0], ref_call=lambda x, h: ref(x, h)[0]
    )
    out, hn = ours.forward_seq(x, h0)
    out2, hn2 = ref(x, h0)
    torch.testing.assert_close(hn, hn2)
    # A direct call returns torch's (output, h_n); as a graph node the output alone (floDl).
    for a, b in zip(ours(x, h0), ref(x, h0)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(ft.FlowBuilder.from_(ours).build()(x), ref(x)[0])
    with pytest.raises(ft.ShapeError, match=r"initial state of shape \[2, 2, 4\]"):
        ours.forward_seq(x, h0[:1])
    with pytest.raises(ft.ShapeError, match="3-D input"):
        ours(x[0])


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_layers(batch_first):
    ours = nn.LSTM(3, 4, num_layers=2, batch_first=batch_first)
    ref = torch.nn.LSTM(3, 4, num_layers=2, batch_first=batch_first)
    x = torch.randn((2, 5, 3) if batch_first else (5, 2, 3), dtype=D)
    h0, c0 = torch.randn(2, 2, 4, dtype=D), torch.randn(2, 2, 4, dtype=D)
    _check(
        ours,
        ref,
        x,
        h0,
        c0,
        ours_call=lambda x, h, c: ours.forward_seq(x, (h, c))[0],
        ref_call=lambda x, h, c: ref(x, (h, c))[0],
    )
    _, (hn, cn) = ours.forward_seq(x, (h0, c0))
    _, (hn2, cn2) = ref(x, (h0, c0))
    torch.testing.assert_close(hn, hn2)
    torch.testing.assert_close(cn, cn2)
    out, (hz, cz) = ours.forward_seq(x)
    torch.testing.assert_close(out, ref(x)[0])
    assert ours.name == "lstm" and nn.GRU(2, 2).name == "gru"
    with pytest.raises(ft.ShapeError, match="expected 3 input features"):
        ours(torch.randn(5, 2, 2, dtype=D))


# ---------------------------------------------------------------- attention


def _mha_pair(e=8, h=2, bias=True):
    ours = nn.MultiheadAttention(e, h, bias=bias).double()
    ref = torch.nn.MultiheadAttention(e, h, bias=bias, batch_first=True).double()
    with torch.no_grad():
        if bias:  # non-zero biases make the test bite
            ours.in_proj_bias.copy_(torch.randn(3 * e, dtype=D))
            ours.out_proj.bias.copy_(torch.randn(e, dtype=D))
    ref.load_state_dict(ours.state_dict(), strict=True)  # the same layout as torch's
    return ours, ref


def _mha_grads(ours, ref):
    p, q = dict(ours.named_parameters()), dict(ref.named_parameters())
    assert p.keys() == q.keys()
    for n in p:
        torch.testing.assert_close(p[n].grad, q[n].grad)


@pytest.mark.parametrize("bias", [True, False])
def test_mha_self_attention(bias):
    ours, ref = _mha_pair(bias=bias)
    x = torch.randn(3, 5, 8, dtype=D)
    _run(ours, ref, x, ref_call=lambda x: ref(x, x, x, need_weights=False)[0])
    _mha_grads(ours, ref)
    assert ours.name == "multihead_attention"


def test_mha_cross_attention_with_masks():
    ours, ref = _mha_pair(12, 3)
    q, k, v = torch.randn(2, 4, 12, dtype=D), torch.randn(2, 6, 12, dtype=D), torch.randn(2, 6, 12, dtype=D)
    bool_mask = torch.rand(4, 6) > 0.7
    bool_mask[:, 0] = False  # no fully blocked rows
    kpm = torch.zeros(2, 6, dtype=torch.bool)
    kpm[0, 4:] = True
    float_mask = torch.randn(2 * 3, 4, 6, dtype=D)
    for am, kp in [(bool_mask, None), (None, kpm), (bool_mask, kpm), (float_mask, None)]:
        for p in list(ours.parameters()) + list(ref.parameters()):
            p.grad = None
        _run(
            ours,
            ref,
            q,
            k,
            v,
            ours_call=lambda q, k, v, am=am, kp=kp: ours.forward_ext(
                q, k, v, attn_mask=am, key_padding_mask=kp
            ),
            ref_call=lambda q, k, v, am=am, kp=kp: ref(
                q, k, v, attn_mask=am, key_padding_mask=kp, need_weights=False
            )[0],
        )
        _mha_grads(ours, ref)


def test_mha_errors():
    m = nn.MultiheadAttention(8, 2)
    with pytest.raises(ft.ConfigError, match="divisible by num_heads"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(ft.ShapeError, match=r"query of shape \[batch, seq, 8\]"):
        m(torch.randn(2, 3, 7))
    x = torch.randn(2, 3, 8)
    with pytest.raises(ft.ShapeError, match=r"attn_mask must be \[3, 3\]"):
        m.forward_ext(x, x, x, attn_mask=torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ft.ShapeError, match=r"key_padding_mask must be \[2, 3\]"):
        m.forward_ext(x, x, x, key_padding_mask=torch.zeros(3, 2, dtype=torch.bool))
    with pytest.raises(ft.ShapeError, match="key and value"):
        m.forward_ext(x, x, torch.randn(2, 4, 8))


# ---------------------------------------------------------------- bilinear


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear(bias):
    ours, ref = nn.Bilinear(3, 4, 2, bias=bias), torch.nn.Bilinear(3, 4, 2, bias=bias)
    _check(ours, ref, torch.randn(5, 3, dtype=D), torch.randn(5, 4, dtype=D))
    with pytest.raises(ft.ShapeError, match=r"Bilinear\(3, 4 -> 2\)"):
        ours(torch.randn(5, 3, dtype=D))  # one input: bilinear(x, x) needs in1 == in2
    sq = nn.Bilinear(3, 3, 2).double()
    x = torch.randn(4, 3, dtype=D)
    torch.testing.assert_close(sq.forward(x), sq(x, x))


# ---------------------------------------------------------------- pooling and shape

PARAMLESS = [
    (nn.MaxPool1d(3), torch.nn.MaxPool1d(3), (2, 3, 10)),
    (
        nn.MaxPool1d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
        torch.nn.MaxPool1d(3, 2, 1, 2, ceil_mode=True),
        (2, 3, 11),
    ),
    (nn.MaxPool2d(2), torch.nn.MaxPool2d(2), (2, 3, 6, 7)),
    (
        nn.MaxPool2d((3, 2), stride=(2, 1), padding=1, ceil_mode=True),
        torch.nn.MaxPool2d((3, 2), (2, 1), 1, ceil_mode=True),
        (1, 2, 7, 6),
    ),
    (nn.AvgPool1d(3, stride=2, padding=1), torch.nn.AvgPool1d(3, 2, 1), (2, 3, 9)),
    (nn.AvgPool2d(2), torch.nn.AvgPool2d(2), (2, 3, 6, 6)),
    (
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        (1, 2, 7, 8),
    ),
    (nn.AdaptiveAvgPool2d((2, 3)), torch.nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 7, 8)),
    (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1), (2, 3, 5, 5)),
    (nn.AdaptiveMaxPool2d((3, 2)), torch.nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5)),
    (nn.PixelShuffle(2), torch.nn.PixelShuffle(2), (2, 8, 3, 4)),
    (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2), (2, 2, 4, 6)),
    (nn.Upsample(size=(5, 7)), torch.nn.Upsample(size=(5, 7)), (1, 2, 3, 4)),
    (nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2), (1, 2, 3, 4)),
    (nn.Upsample(scale_factor=1.7), torch.nn.Upsample(scale_factor=1.7), (1, 2, 3, 4)),
    (
        nn.Upsample(scale_factor=2, mode="bilinear"),
        torch.nn.Upsample(scale_factor=2, mode="bilinear"),
        (1, 2, 3, 4),
    ),
    (
        nn.Upsample(size=(6, 5), mode="bilinear", align_corners=True),
        torch.nn.Upsample(size=(6, 5), mode="bilinear", align_corners=True),
        (1, 2, 3, 4),
    ),
    (
        nn.Upsample(scale_factor=(2, 3), mode="bicubic"),
        torch.nn.Upsample(scale_factor=(2, 3), mode="bicubic"),
        (1, 2, 3, 4),
    ),
    (
        nn.Upsample(size=7, mode="bicubic", align_corners=True),
        torch.nn.Upsample(size=7, mode="bicubic", align_corners=True),
        (1, 2, 3, 4),
    ),
    (nn.Unfold(2), torch.nn.Unfold(2), (2, 3, 4, 5)),
    (
        nn.Unfold((2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
        torch.nn.Unfold((2, 3), (1, 2), 1, (2, 1)),
        (2, 3, 6, 7),
    ),
    (nn.Fold((4, 5), 2), torch.nn.Fold((4, 5), 2), (2, 12, 12)),
    (
        nn.Fold((5, 6), (2, 3), stride=(1, 2), padding=1),
        torch.nn.Fold((5, 6), (2, 3), padding=1, stride=(1, 2)),
        (1, 12, 18),
    ),
    (nn.Flatten(), torch.nn.Flatten(), (2, 3, 4, 5)),
    (nn.Flatten(0, 2), torch.nn.Flatten(0, 2), (2, 3, 4, 5)),
    (nn.Flatten(-2, -1), torch.nn.Flatten(-2, -1), (2, 3, 4)),
    (nn.ZeroPad2d(2), torch.nn.ZeroPad2d(2), (1, 2, 3, 4)),
    (nn.ZeroPad2d((1, 0, 2, 3)), torch.nn.ZeroPad2d((1, 0, 2, 3)), (2, 3, 4)),
    (nn.ReflectionPad2d(2), torch.nn.ReflectionPad2d(2), (1, 2, 3, 4)),
    (nn.ReflectionPad2d((1, 0, 2, 1)), torch.nn.ReflectionPad2d((1, 0, 2, 1)), (2, 3, 4)),
]


@pytest.mark.parametrize(
    "ours,ref,shape", PARAMLESS, ids=lambda v: repr(v) if not isinstance(v, tuple) else str(v)
)
def test_parameter_free_layers(ours, ref, shape):
    _run(ours, ref, torch.randn(shape, dtype=D))


def test_shape_layer_errors():
    with pytest.raises(ft.ShapeError, match="reflection padding must be smaller"):
        nn.ReflectionPad2d(3)(torch.randn(1, 1, 3, 3))
    with pytest.raises(ft.ShapeError, match="channels must be divisible by 4"):
        nn.PixelShuffle(2)(torch.randn(1, 3, 2, 2))
    with pytest.raises(ft.ShapeError, match="divisible by 2"):
        nn.PixelUnshuffle(2)(torch.randn(1, 3, 3, 2))
    with pytest.raises(ft.ShapeError, match=r"Fold.*expected \[N, C·4, 12\]"):
        nn.Fold((4, 5), 2)(torch.randn(2, 12, 11))
    with pytest.raises(ft.ShapeError, match="Unfold.*4-D"):
        nn.Unfold(2)(torch.randn(3, 4, 5))
    with pytest.raises(ft.ShapeError, match="kernel does not fit"):
        nn.Unfold(5)(torch.randn(1, 1, 3, 3))
    with pytest.raises(ft.ShapeError, match="start_dim 1 / end_dim -1"):
        nn.Flatten()(torch.randn(3))
    with pytest.raises(ft.ConfigError, match="exactly one of"):
        nn.Upsample()
    with pytest.raises(ft.ConfigError, match="align_corners"):
        nn.Upsample(scale_factor=2, align_corners=True)
    with pytest.raises(ft.ConfigError, match="mode"):
        nn.Upsample(scale_factor=2, mode="trilinear")
    with pytest.raises(ft.ShapeError, match="MaxPool2d.*3-D or 4-D"):
        nn.MaxPool2d(2)(torch.randn(4, 4))
    with pytest.raises(ft.ConfigError, match="padding"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ft.ConfigError, match="output_size"):
        nn.AdaptiveAvgPool2d(0)


# ---------------------------------------------------------------- activations

ACTS = [
    (nn.ReLU(), torch.nn.ReLU(), "relu"),
    (nn.Sigmoid(), torch.nn.Sigmoid(), "sigmoid"),
    (nn.Tanh(), torch.nn.Tanh(), "tanh"),
    (nn.GELU(), torch.nn.GELU(), "gelu"),
    (nn.GELU("tanh"), torch.nn.GELU("tanh"), "gelu"),
    (nn.SiLU(), torch.nn.SiLU(), "silu"),
    (nn.Mish(), torch.nn.Mish(), "mish"),
    (nn.SELU(), torch.nn.SELU(), "selu"),
    (nn.Hardswish(), torch.nn.Hardswish(), "hardswish"),
    (nn.Hardsigmoid(), torch.nn.Hardsigmoid(), "hardsigmoid"),
    (nn.LeakyReLU(), torch.nn.LeakyReLU(), "leaky_relu"),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2), "leaky_relu"),
    (nn.ELU(), torch.nn.ELU(), "elu"),
    (nn.ELU(0.5), torch.nn.ELU(0.5), "elu"),
    (nn.Softplus(), torch.nn.Softplus(), "softplus"),
    (nn.Softplus(2.0, 1.0), torch.nn.Softplus(2.0, 1.0), "softplus"),
    (nn.Softmax(1), torch.nn.Softmax(1), "softmax"),
    (nn.Softmax(-1), torch.nn.Softmax(-1), "softmax"),
    (nn.LogSoftmax(0), torch.nn.LogSoftmax(0), "log_softmax"),
    (nn.Identity(), torch.nn.Identity(), "identity"),
]


@pytest.mark.parametrize("ours,ref,name", ACTS, ids=[a[2] + str(i) for i, a in enumerate(ACTS)])
def test_activations(ours, ref, name):
    assert ours.name == name
    _run(ours, ref, torch.randn(4, 5, 3, dtype=D) * 3)


def test_activation_errors():
    with pytest.raises(ft.ShapeError, match=r"Softmax\(dim=3\).*out of range"):
        nn.Softmax(3)(torch.randn(2, 2))
    with pytest.raises(ft.DTypeError, match="floating-point"):
        nn.Sigmoid()(torch.ones(3, dtype=torch.long))
    with pytest.raises(ft.ConfigError, match="beta"):
        nn.Softplus(0.0)


@pytest.mark.parametrize("n", [1, 3])
def test_prelu(n):
    ours, ref = nn.PReLU(n), torch.nn.PReLU(n)
    assert torch.all(ours.weight == 0.25) and ours.name == "prelu"
    _perturb(ours)
    _check(ours, ref, torch.randn(4, 3, 5, dtype=D))
    if n == 3:
        with pytest.raises(ft.ShapeError, match="expected 3 channels"):
            ours(torch.randn(4, 2, dtype=D))


def test_flodl_names():
    mods = {
        "conv1d": nn.Conv1d(1, 1, 1),
        "conv2d": nn.Conv2d(1, 1, 1),
        "conv3d": nn.Conv3d(1, 1, 1),
        "conv_t1d": nn.ConvTranspose1d(1, 1, 1),
        "conv_t2d": nn.ConvTranspose2d(1, 1, 1),
        "conv_transpose3d": nn.ConvTranspose3d(1, 1, 1),
        "groupnorm": nn.GroupNorm(1, 2),
        "instance_norm": nn.InstanceNorm(2),
        "embedding": nn.Embedding(2, 2),
        "embedding_bag": nn.EmbeddingBag(2, 2),
        "grucell": nn.GRUCell(1, 1),
        "lstmcell": nn.LSTMCell(1, 1),
        "bilinear": nn.Bilinear(1, 1, 1),
        "maxpool1d": nn.MaxPool1d(2),
        "maxpool2d": nn.MaxPool2d(2),
        "avgpool1d": nn.AvgPool1d(2),
        "avgpool2d": nn.AvgPool2d(2),
        "adaptive_avgpool2d": nn.AdaptiveAvgPool2d(1),
        "adaptive_maxpool2d": nn.AdaptiveMaxPool2d(1),
        "pixel_shuffle": nn.PixelShuffle(2),
        "pixel_unshuffle": nn.PixelUnshuffle(2),
        "upsample": nn.Upsample(scale_factor=2),
        "unfold": nn.Unfold(2),
        "fold": nn.Fold(4, 2),
        "flatten": nn.Flatten(),
        "zero_pad2d": nn.ZeroPad2d(1),
        "reflection_pad2d": nn.ReflectionPad2d(1),
    }
    for name, m in mods.items():
        assert m.name == name
        assert isinstance(m, nn.Module)
    for m in mods.values():
        for p in m.parameters():
            assert p.dtype == torch.float32 and p.requires_grad and p.is_leaf


# ---------------------------------------------------------------- init


def test_init_statistics():
    ft.manual_seed(0)
    n = 200_000
    w = nn.init.kaiming_uniform([n], fan_in=50, a=math.sqrt(5))
    assert w.dtype == torch.float32 and not w.requires_grad
    b = 1 / math.sqrt(50)
    assert w.abs().max() <= b and w.abs().max() > 0.999 * b
    assert abs(w.std().item() - b / math.sqrt(3)) < 2e-3
    w = nn.init.kaiming_normal([n], fan_in=50)
    assert abs(w.mean().item()) < 3e-3 and abs(w.std().item() - math.sqrt(2 / 50)) < 2e-3
    w = nn.init.xavier_uniform([n], 30, 70)
    b = math.sqrt(6 / 100)
    assert w.abs().max() <= b and abs(w.std().item() - b / math.sqrt(3)) < 2e-3
    w = nn.init.xavier_normal([n], 30, 70, gain=2.0)
    assert abs(w.std().item() - 2 * math.sqrt(2 / 100)) < 2e-3
    w = nn.init.uniform([n], -1.0, 3.0)
    assert w.min() >= -1 and w.max() <= 3 and abs(w.mean().item() - 1) < 0.02
    w = nn.init.normal([n], 2.0, 0.5)
    assert abs(w.mean().item() - 2) < 5e-3 and abs(w.std().item() - 0.5) < 5e-3
    w = nn.init.trunc_normal([n], mean=1.0, std=2.0, a=-1.0, b=1.5)
    assert w.min() >= -1.0 and w.max() <= 4.0
    # a true truncation: no pile-up at the bounds (floDl's clamp would put ~16% there)
    assert (w == -1.0).float().mean() < 1e-3

    # mean of N(0,1) truncated to [-1, 1.5], mapped by mean + std*z
    def phi(z):
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def cdf(z):
        return (1 + math.erf(z / math.sqrt(2))) / 2

    zmean = (phi(-1) - phi(1.5)) / (cdf(1.5) - cdf(-1))
    assert abs(w.mean().item() - (1 + 2 * zmean)) < 0.02
    b = nn.init.uniform_bias([n], 16)
    assert b.abs().max() <= 0.25 and b.abs().max() > 0.249


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (3, 2, 2)])
def test_orthogonal(shape):
    ft.manual_seed(3)
    w = nn.init.orthogonal(list(shape), gain=2.0)
    torch.manual_seed(3)
    ref = torch.nn.init.orthogonal_(torch.empty(shape), gain=2.0)
    torch.testing.assert_close(w, ref)
    flat = w.reshape(shape[0], -1).double() / 2
    small = min(flat.shape)
    gram = flat @ flat.T if flat.shape[0] == small else flat.T @ flat
    torch.testing.assert_close(gram, torch.eye(small, dtype=D), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "ours,ref",
    [
        (lambda: nn.init.kaiming_uniform([5, 7], 7), lambda t: torch.nn.init.kaiming_uniform_(t)),
        (lambda: nn.init.kaiming_normal([5, 7], 7, a=0.3), lambda t: torch.nn.init.kaiming_normal_(t, a=0.3)),
        (lambda: nn.init.xavier_uniform([5, 7], 7, 5), lambda t: torch.nn.init.xavier_uniform_(t)),
        (lambda: nn.init.xavier_normal([5, 7], 7, 5, 1.5), lambda t: torch.nn.init.xavier_normal_(t, 1.5)),
        (lambda: nn.init.uniform([5, 7], -2, 1), lambda t: torch.nn.init.uniform_(t, -2, 1)),
        (lambda: nn.init.normal([5, 7], 1, 3), lambda t: torch.nn.init.normal_(t, 1, 3)),
        (
            lambda: nn.init.trunc_normal([5, 7], 1.0, 2.0, -1.0, 0.5),
            lambda t: torch.nn.init.trunc_normal_(t, 1.0, 2.0, 1.0 - 2.0, 1.0 + 1.0),
        ),
    ],
)
def test_init_seeded_equals_torch_init(ours, ref):
    ft.manual_seed(11)
    a = ours()
    torch.manual_seed(11)
    b = ref(torch.empty(5, 7))
    # floDl's rand*(hi-lo)+lo (the oracle) rounds once more than torch's uniform_
    atol = 2 * torch.finfo(torch.float32).eps * b.abs().max().item()
    torch.testing.assert_close(a, b, rtol=0, atol=atol)


def test_init_errors():
    with pytest.raises(ft.ConfigError, match="fan_in must be positive"):
        nn.init.kaiming_uniform([2], 0)
    with pytest.raises(ft.ConfigError, match="a < b"):
        nn.init.trunc_normal([2], a=1.0, b=-1.0)
    with pytest.raises(ft.ConfigError, match="orthogonal"):
        nn.init.orthogonal([4])
    with pytest.raises(ft.ConfigError, match="low"):
        nn.init.uniform([2], 1.0, 0.0)


# ---------------------------------------------------------------- module base


def test_double_converts_in_place_and_attributes():
    m = nn.BatchNorm2d(3)
    w = m.weight
    m.double()
    assert w.dtype == D and m.running_var.dtype == D  # same handles
    m.float()
    assert m.weight.dtype == torch.float32
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = m.nope
    assert nn.InstanceNorm(2).bias is None


# ---------------------------------------------------------------- graph


class RefConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.seq = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 4, 3, stride=2, padding=1),
            torch.nn.GroupNorm(2, 4),
            torch.nn.SiLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(4, 5),
        )

    def forward(self, x):
        return self.seq(x)


def test_convnet_graph_matches_sequential():
    g = (
        FlowBuilder.from_(nn.Conv2d(3, 8, 3, padding=1))
        .through(nn.BatchNorm2d(8))
        .through(nn.ReLU())
        .through(nn.MaxPool2d(2))
        .through(nn.Conv2d(8, 4, 3, stride=2, padding=1))
        .through(nn.GroupNorm(2, 4))
        .through(nn.SiLU())
        .through(nn.AdaptiveAvgPool2d(1))
        .through(nn.Flatten())
        .through(nn.Linear(4, 5))
        .build()
    )
    names = [n for n, _ in g.named_parameters()]
    assert names[:4] == ["conv2d_1/weight", "conv2d_1/bias", "batchnorm2d_2/weight", "batchnorm2d_2/bias"]
    assert [n for n, _ in g.named_buffers()] == ["batchnorm2d_2/running_mean", "batchnorm2d_2/running_var"]
    ref = RefConvNet()
    _copy([p for _, p in g.named_parameters()], ref.parameters())
    x = torch.randn(4, 3, 12, 12)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = g(xa), ref(xb)
    torch.testing.assert_close(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    for (_, p), q in zip(g.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5)
    bn = dict(g.named_buffers())
    torch.testing.assert_close(bn["batchnorm2d_2/running_mean"], ref.seq[1].running_mean)
    torch.testing.assert_close(bn["batchnorm2d_2/running_var"], ref.seq[1].running_var)
