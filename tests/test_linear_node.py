"""Linear's single autograd node (rust/shim/linear.cpp) against torch.nn.Linear.

A 2-D plain CPU input with a bias records one node instead of torch's
AddmmBackward0 + TBackward0, making the same ATen calls: outputs and every
gradient must equal torch's bit for bit, it must save what torch saves, and
everything the node does not cover must still reach ATen.
"""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from ferrotorch.nn import Linear

NODE = "ferrotorch::LinearBackward"


def _pair(n_in=6, n_out=4, bias=True, dtype=torch.float32):
    ours = Linear(n_in, n_out, bias=bias)
    ref = torch.nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        ref.weight.copy_(ours.weight)
        if bias:
            ref.bias.copy_(ours.bias)
    if dtype != torch.float32:
        ours.to(dtype=dtype)
        ref.to(dtype)
    return ours, ref


def _params(m):
    return [m.weight] + ([m.bias] if m.bias is not None else [])


def _run(m, x, g, x_grad=True):
    for p in _params(m):
        p.grad = None
    xi = x.clone().requires_grad_(x_grad)
    y = m(xi)
    y.backward(g)
    return [y.detach(), xi.grad] + [p.grad for p in _params(m)]


def _assert_equal(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("x_grad", [True, False])
def test_values_and_gradients_equal_torch_bit_for_bit(dtype, x_grad):
    ours, ref = _pair(64, 16, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 64, generator=gen, dtype=dtype)
    g = torch.randn(32, 16, generator=gen, dtype=dtype)
    xi = x.clone().requires_grad_(x_grad)
    assert ours(xi).grad_fn.name() == NODE
    _assert_equal(_run(ours, x, g, x_grad), _run(ref, x, g, x_grad))
    assert ours.weight.grad.is_contiguous() and ours.weight.grad.shape == (16, 64)


def test_single_row_single_feature_input_equals_torch():
    # x of shape [1, 1] has column-major strides, where torch's backward
    # switches to weight.t().mm(grad.t()).t(); the node follows it.
    ours, ref = _pair(1, 7)
    gen = torch.Generator().manual_seed(3)
    x, g = torch.randn(1, 1, generator=gen), torch.randn(1, 7, generator=gen)
    assert ours(x.clone().requires_grad_()).grad_fn.name() == NODE
    _assert_equal(_run(ours, x, g), _run(ref, x, g))


def test_frozen_weight_or_bias():
    ours, ref = _pair()
    x, g = torch.randn(5, 6), torch.randn(5, 4)
    for frozen in ("weight", "bias"):
        for m in (ours, ref):
            for name, p in (("weight", m.weight), ("bias", m.bias)):
                p.requires_grad_(name != frozen)
        _assert_equal(_run(ours, x, g), _run(ref, x, g))
        assert getattr(ours, frozen).grad is None


def test_other_inputs_keep_atens_nodes_and_values():
    ours, ref = _pair()
    ours_nb, ref_nb = _pair(bias=False)
    x3 = torch.randn(2, 3, 6)
    xt = torch.randn(6, 5).t()  # 2-D, not contiguous
    assert ours(x3.requires_grad_()).grad_fn.name() != NODE
    assert ours(xt.requires_grad_()).grad_fn.name() != NODE
    assert ours_nb(torch.randn(5, 6, requires_grad=True)).grad_fn.name() == "MmBackward0"
    g3 = torch.randn(2, 3, 4)
    _assert_equal(_run(ours, x3.detach(), g3), _run(ref, x3.detach(), g3))
    g = torch.randn(5, 4)
    _assert_equal(_run(ours, xt.detach(), g), _run(ref, xt.detach(), g))
    _assert_equal(_run(ours_nb, xt.detach(), g), _run(ref_nb, xt.detach(), g))


def test_saves_what_torch_saves():
    def packs(m, x_grad):
        shapes = []

        def pack(t):
            shapes.append(tuple(t.shape))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            m(torch.randn(5, 6, requires_grad=x_grad))
        return shapes

    ours, ref = _pair()
    # torch saves x and weight.t() (4x6 seen as 6x4); the first layer of a
    # network (x without grad) saves only x. Same count, same sizes.
    for x_grad in (True, False):
        a, b = packs(ours, x_grad), packs(ref, x_grad)
        assert len(a) == len(b)
        assert sorted(s[0] * s[1] for s in a) == sorted(s[0] * s[1] for s in b)
    assert packs(ours, False) == [(5, 6)]


def test_double_backward_matches_torch():
    ours, ref = _pair()
    x = torch.randn(5, 6)

    def second(m):
        xi = x.clone().requires_grad_(True)
        y = torch.tanh(m(xi))
        (gx,) = torch.autograd.grad(y.sum(), xi, create_graph=True)
        gw = torch.autograd.grad((gx * gx).sum(), m.weight)[0]
        return gx.detach(), gw

    a, b = second(ours), second(ref)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_weight_modified_in_place_before_backward_is_refused():
    ours, _ = _pair()
    y = ours(torch.randn(5, 6, requires_grad=True))
    with torch.no_grad():
        ours.weight.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_backward_twice_without_retain_graph_is_refused():
    ours, _ = _pair()
    y = ours(torch.randn(5, 6, requires_grad=True)).sum()
    y.backward(retain_graph=True)
    y.backward()  # retained: fine
    z = ours(torch.randn(5, 6, requires_grad=True)).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


def test_no_grad_and_inference_mode():
    ours, ref = _pair()
    x = torch.randn(5, 6, requires_grad=True)
    with torch.no_grad():
        y = ours(x)
    assert y.grad_fn is None and torch.equal(y, ref(x).detach())
    with torch.inference_mode():
        z = ours(torch.randn(5, 6))
    assert z.is_inference()


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def test_transforms_modes_and_autocast_reach_aten():
    ours, ref = _pair()
    x = torch.randn(5, 6)
    with _Recorder() as rec:
        ours(x)
    assert "aten.addmm.default" in rec.ops
    gw = torch.func.grad(lambda w: F.linear(x, w, ref.bias.detach()).sum())(ref.weight.detach())
    gx = torch.func.grad(lambda t: ours(t).sum())(x)
    gx_ref = torch.func.grad(lambda t: ref(t).sum())(x)
    torch.testing.assert_close(gx, gx_ref, rtol=0, atol=0)
    assert gw.shape == (4, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = ours(x), ref(x)
    assert a.dtype == b.dtype == torch.bfloat16
    assert torch.equal(a, b)
