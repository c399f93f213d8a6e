"""Kaun's value_and_grad / value_and_grad_aux against torch.func.grad_and_value
and torch.autograd."""

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import FlowBuilder
from ferrotorch.nn import GELU, Linear


def _model():
    torch.manual_seed(0)
    return FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(Linear(8, 2)).build()


def test_value_and_grad_equals_torch_func():
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 4, dtype=torch.float64)

    def loss(x):
        return (F.linear(x, w, b) ** 2).mean()

    value, grads = ft.value_and_grad(loss, {"w": w, "b": b})(x)

    def pure(params, x):
        return (F.linear(x, params["w"], params["b"]) ** 2).mean()

    ref_g, ref_v = torch.func.grad_and_value(pure)({"w": w.detach(), "b": b.detach()}, x)
    torch.testing.assert_close(value, ref_v)
    assert set(grads) == {"w", "b"}
    torch.testing.assert_close(grads["w"], ref_g["w"])
    torch.testing.assert_close(grads["b"], ref_g["b"])
    assert w.grad is None and not value.requires_grad  # nothing accumulated


def test_value_and_grad_on_a_graph_and_its_structures():
    m = _model()
    x, y = torch.randn(6, 4), torch.randn(6, 2)
    value, grads = ft.value_and_grad(lambda: F.mse_loss(m(x), y), m)()
    assert list(grads) == [n for n, _ in m.named_parameters()]
    loss = F.mse_loss(m(x), y)
    loss.backward()
    torch.testing.assert_close(value, loss.detach())
    for (_, p), g in zip(m.named_parameters(), grads.values()):
        torch.testing.assert_close(g, p.grad)
    ps = m.parameters()
    _, as_list = ft.value_and_grad(lambda: F.mse_loss(m(x), y), ps)()
    assert isinstance(as_list, list) and len(as_list) == len(ps)
    _, one = ft.value_and_grad(lambda: F.mse_loss(m(x), y), ps[0])()
    torch.testing.assert_close(one, ps[0].grad)


def test_value_and_grad_aux_passes_aux_and_zero_fills_unused():
    a = torch.ones(2, requires_grad=True)
    unused = torch.ones(3, requires_grad=True)

    def fn(k):
        out = (a * k).sum()
        return out, {"k": k}

    (loss, aux), (ga, gu) = ft.value_and_grad_aux(fn, (a, unused))(3.0)
    assert loss.item() == 6.0 and aux == {"k": 3.0}
    torch.testing.assert_close(ga, torch.full((2,), 3.0))
    torch.testing.assert_close(gu, torch.zeros(3))

    def pure(a, k):
        return (a * k).sum(), {"k": torch.tensor(k)}

    ref_g, (ref_v, ref_aux) = torch.func.grad_and_value(pure, has_aux=True)(a.detach(), 3.0)
    torch.testing.assert_close(loss, ref_v)
    torch.testing.assert_close(ga, ref_g)
    assert aux["k"] == ref_aux["k"].item()


def test_value_and_grad_errors():
    a = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        ft.value_and_grad(lambda: a * 2, a)()
    with pytest.raises(ValueError, match="does not require grad"):
        ft.value_and_grad(lambda: (a * 2).sum(), torch.ones(2))()
    with pytest.raises(ValueError, match=r"\(loss, aux\)"):
        ft.value_and_grad_aux(lambda: (a * 2).sum(), a)()
