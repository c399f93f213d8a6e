"""MultiheadAttention against torch.nn.MultiheadAttention(batch_first=True), bit
for bit: torch's parameter layout (state dicts both ways) and the ATen calls
of its training path (``need_weights=True``, the default), forward and
backward, alone, in a graph and over 20 Trainer steps. floDl's files keep
floDl's q/k/v/out names (tests/test_flodl_fidelity.py)."""

import pytest
import torch

import ferrotorch as ft
from ferrotorch import FlowBuilder

B, S, E, HEADS = 3, 7, 24, 4  # head dim 6


def _x(*shape, seed=0, **kw):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), **kw)


def _pair(bias=True, e=E, h=HEADS):
    ours = ft.nn.MultiheadAttention(e, h, bias=bias)
    if bias:  # non-zero biases make the comparison bite
        with torch.no_grad():
            ours.in_proj_bias.copy_(_x(3 * e, seed=11))
            ours.out_proj.bias.copy_(_x(e, seed=12))
    ref = torch.nn.MultiheadAttention(e, h, bias=bias, batch_first=True)
    ref.load_state_dict(ours.state_dict(), strict=True)
    return ours, ref


def _grads_equal(ours, ref):
    a, b = dict(ours.named_parameters()), dict(ref.named_parameters())
    assert a.keys() == b.keys()
    for n in a:
        assert torch.equal(a[n].grad, b[n].grad), n


@pytest.mark.parametrize("bias", [True, False])
def test_self_attention_equals_torch_default_call(bias):
    ours, ref = _pair(bias)
    xa = _x(B, S, E).requires_grad_()
    xb = xa.detach().clone().requires_grad_()
    a, (b, _) = ours(xa), ref(xb, xb, xb)
    assert a.shape == (B, S, E)
    assert torch.equal(a, b)
    g = _x(B, S, E, seed=1)
    a.backward(g)
    b.backward(g)
    assert torch.equal(xa.grad, xb.grad)
    _grads_equal(ours, ref)


def test_float64_equals_torch_scale_included():
    """In float64 torch's scale sqrt(1/6) differs from 1/sqrt(6) in the last bit."""
    ours, ref = _pair()
    ours.double()
    ref.double()
    x = _x(B, S, E, dtype=torch.float64)
    assert torch.equal(ours(x), ref(x, x, x)[0])


def test_state_dict_layout_loads_both_ways():
    ours = ft.nn.MultiheadAttention(E, HEADS)
    ref = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert ours.state_dict()[k].shape == v.shape, k
    ours.load_state_dict(ref.state_dict(), strict=True)  # torch -> ours
    x = _x(B, S, E)
    assert torch.equal(ours(x), ref(x, x, x)[0])
    back = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    back.load_state_dict(ours.state_dict(), strict=True)  # ours -> torch
    assert torch.equal(back(x, x, x)[0], ours(x))
    no_bias = ft.nn.MultiheadAttention(E, HEADS, bias=False)
    assert list(no_bias.state_dict()) == list(
        torch.nn.MultiheadAttention(E, HEADS, bias=False, batch_first=True).state_dict()
    )


def test_init_is_flodls_xavier_per_block():
    ours = ft.nn.MultiheadAttention(E, HEADS)
    bound = (6.0 / (2 * E)) ** 0.5  # one [E, E] block's bound, not torch's [3E, E] one
    for w in (*ours.in_proj_weight.chunk(3), ours.out_proj.weight):
        assert 0.9 * bound < w.abs().max() <= bound
    assert torch.all(ours.in_proj_bias == 0) and torch.all(ours.out_proj.bias == 0)


def _masks():
    am = torch.rand(5, S, generator=torch.Generator().manual_seed(3)) > 0.7
    am[:, 0] = False  # no fully blocked row
    kpm = torch.zeros(B, S, dtype=torch.bool)
    kpm[0, 4:] = True
    return [
        (None, None),
        (am, None),
        (None, kpm),
        (am, kpm),
        (_x(B * HEADS, 5, S, seed=4), None),
        (_x(5, S, seed=5), torch.zeros(B, S).masked_fill(kpm, float("-inf"))),
    ]


@pytest.mark.parametrize("shared_kv", [True, False], ids=["key-is-value", "three-tensors"])
@pytest.mark.parametrize("case", range(6))
def test_cross_attention_with_masks_equals_torch(shared_kv, case):
    am, kpm = _masks()[case]
    ours, ref = _pair()
    q, k = _x(B, 5, E, seed=6), _x(B, S, E, seed=7)
    v = k if shared_kv else _x(B, S, E, seed=8)
    qa, ka, va = (t.clone().requires_grad_() for t in (q, k, v))
    va = ka if shared_kv else va
    qb, kb, vb = (t.clone().requires_grad_() for t in (q, k, v))
    vb = kb if shared_kv else vb
    a = ours.forward_ext(qa, ka, va, attn_mask=am, key_padding_mask=kpm)
    b = ref(qb, kb, vb, attn_mask=am, key_padding_mask=kpm)[0]
    assert torch.equal(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    for s, t in ((qa, qb), (ka, kb), (va, vb)):
        assert torch.equal(s.grad, t.grad)
    _grads_equal(ours, ref)


def test_need_weights_false_is_torch_sdpa_path_equal_up_to_rounding():
    """torch's need_weights=False runs scaled_dot_product_attention, whose kernel
    rounds differently; the module matches the default call (above) exactly."""
    ours, ref = _pair()
    x = _x(B, S, E)
    torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0])


def test_errors_are_ferrotorch_errors_naming_the_argument():
    m = ft.nn.MultiheadAttention(8, 2)
    with pytest.raises(ft.ConfigError, match=r"embed_dim \(8\) must be divisible by num_heads \(3\)"):
        ft.nn.MultiheadAttention(8, 3)
    with pytest.raises(ft.ShapeError, match=r"query of shape \[batch, seq, 8\], got \[2, 3, 7\]"):
        m(torch.randn(2, 3, 7))
    x = torch.randn(2, 3, 8)
    with pytest.raises(ft.ShapeError, match=r"attn_mask must be \[3, 3\] or \[4, 3, 3\]"):
        m.forward_ext(x, x, x, attn_mask=torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ft.DTypeError, match="key_padding_mask must be bool or floating point"):
        m.forward_ext(x, x, x, key_padding_mask=torch.zeros(2, 3, dtype=torch.int64))


# ---------------------------------------------------------------- in graphs, trained


class _Block(torch.nn.Module):
    """Linear, a learned position, post-LN attention residual, Linear: the
    transformer benchmark's pieces, in torch."""

    def __init__(self, inp, pos, mha, ln, out):
        super().__init__()
        self.inp, self.mha, self.ln, self.out = inp, mha, ln, out
        self.pos = torch.nn.Parameter(pos.detach().clone())

    def forward(self, x):
        h = self.inp(x) + self.pos
        h = self.ln(h + self.mha(h, h, h)[0])
        return self.out(h)

    def graph_order(self):
        return [
            *self.inp.parameters(),
            self.pos,
            *self.mha.parameters(),
            *self.ln.parameters(),
            *self.out.parameters(),
        ]


def _torch_linear(lin):
    ref = torch.nn.Linear(lin.in_features, lin.out_features)
    ref.load_state_dict(lin.state_dict())
    return ref


def _block_pair():
    inp, pos, ln, out = (
        ft.nn.Linear(5, E),
        ft.nn.AddParameter(1, S, E),
        ft.nn.LayerNorm(E),
        ft.nn.Linear(E, 3),
    )
    mha, ref_mha = _pair()
    with torch.no_grad():
        pos.weight.copy_(_x(1, S, E, seed=9))
    g = FlowBuilder.from_(inp).through(pos).also(mha).through(ln).through(out).build()
    ref_ln = torch.nn.LayerNorm(E)
    ref_ln.load_state_dict(ln.state_dict())
    return g, _Block(_torch_linear(inp), pos.weight, ref_mha, ref_ln, _torch_linear(out))


def test_in_a_graph_equals_the_torch_block():
    g, ref = _block_pair()
    assert [n for n, _ in g.named_parameters()][3:7] == [
        "multihead_attention_3/in_proj_weight",
        "multihead_attention_3/in_proj_bias",
        "multihead_attention_3/out_proj.weight",
        "multihead_attention_3/out_proj.bias",
    ]
    xa = _x(B, S, 5).requires_grad_()
    xb = xa.detach().clone().requires_grad_()
    a, b = g(xa), ref(xb)
    assert torch.equal(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    assert torch.equal(xa.grad, xb.grad)
    for p, q in zip(g.parameters(), ref.graph_order(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_twenty_trainer_steps_equal_torch_adam():
    g, ref = _block_pair()
    tr = ft.Trainer(g, ft.optim.Adam(g.parameters(), 1e-3), loss="mse")
    opt = torch.optim.Adam(ref.graph_order(), 1e-3, fused=True)
    for step in range(20):
        x, y = _x(B, S, 5, seed=100 + step), _x(B, S, 3, seed=200 + step)
        ours = tr.step(x, y)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ref(x), y)
        loss.backward()
        opt.step()
        assert float(ours) == loss.item(), step
    for p, q in zip(g.parameters(), ref.graph_order(), strict=True):
        assert torch.equal(p, q)
