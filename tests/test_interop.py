"""Tensors cross the boundary zero-copy, both ways, with one autograd graph."""

import numpy as np
import pytest
import torch

import ferrotorch as ft
from ferrotorch.nn import Linear


def test_parameters_share_storage_with_module():
    lin = Linear(3, 2)
    w = lin.parameters()[0]
    assert w.data_ptr() == lin.weight.data_ptr()
    with torch.no_grad():
        w.fill_(0.5)  # change on the Python side...
    x = torch.ones(1, 3)
    out = lin(x)  # ...is what Rust computes with
    expected = 1.5 + lin.bias
    torch.testing.assert_close(out[0], expected.detach())


def test_rust_side_change_seen_in_python():
    lin = Linear(4, 4)
    w = lin.weight
    before = w.clone()
    opt = ft.optim.Adam([w, lin.bias], 0.1)
    lin(torch.randn(2, 4)).sum().backward()
    opt.step()  # in-place update in Rust
    assert not torch.equal(before, w)
    assert torch.equal(lin.weight, w)


def test_same_python_object_returned():
    lin = Linear(2, 2)
    w = lin.weight
    assert lin.weight is w  # the existing torch.Tensor object, not a new wrapper
    assert lin.parameters()[0] is w


def test_gradients_flow_across_boundary():
    lin = Linear(3, 1)
    x = torch.randn(4, 3, requires_grad=True)  # a Python leaf
    y = lin(x)  # forward in Rust
    assert y.grad_fn is not None
    (y * 2).sum().backward()  # backward from Python
    w = lin.weight
    torch.testing.assert_close(x.grad, 2 * w.detach().expand(4, 3))
    torch.testing.assert_close(w.grad, 2 * x.detach().sum(0, keepdim=True))


def test_output_is_zero_copy_of_input_for_identity():
    g = ft.FlowBuilder.from_(ft.nn.Identity()).build()
    x = torch.randn(3, 3)
    y = g(x)
    assert y.data_ptr() == x.data_ptr()


def test_numpy_input_accepted():
    lin = Linear(3, 2)
    a = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    out = lin(a)
    torch.testing.assert_close(out, lin(torch.from_numpy(a)))


def test_numpy_input_not_copied():
    g = ft.FlowBuilder.from_(ft.nn.Identity()).build()
    a = np.ones((2, 2), dtype=np.float32)
    y = g(a)
    a[0, 0] = 7.0
    assert y[0, 0].item() == 7.0


def test_torch_version_recorded():
    assert ft._core.__torch_version__ == torch.__version__.split("+")[0]


def test_manual_seed_reproducible():
    ft.manual_seed(7)
    a = Linear(5, 5).weight.detach().clone()
    ft.manual_seed(7)
    b = Linear(5, 5).weight.detach().clone()
    assert torch.equal(a, b)


def test_linear_init_matches_torch_under_same_seed():
    # floDl draws weight then bias from U(±1/sqrt(in)), as torch.nn.Linear does,
    # but as rand*2b - b (floDl's arithmetic, which ferrotorch follows bit for
    # bit): within 2 ulp of torch's uniform_, exactly equal to floDl's formula.
    ft.manual_seed(3)
    ours = Linear(7, 5)
    torch.manual_seed(3)
    ref = torch.nn.Linear(7, 5)
    torch.testing.assert_close(ours.weight, ref.weight, rtol=0, atol=1e-7)
    torch.testing.assert_close(ours.bias, ref.bias, rtol=0, atol=1e-7)
    torch.manual_seed(3)
    b = 3**0.5 * (2 / 6) ** 0.5 / 7**0.5
    w = torch.rand(5, 7) * (2 * b) + (-b)
    c = 1 / 7**0.5
    bias = torch.rand(5) * (2 * c) + (-c)
    assert torch.equal(ours.weight, w) and torch.equal(ours.bias, bias)


@pytest.mark.parametrize("bad", ["text", [1.0, 2.0], 3.0, None])
def test_non_tensor_rejected(bad):
    lin = Linear(2, 2)
    with pytest.raises(ft.InputTypeError) as e:
        lin(bad)
    assert "input" in str(e.value) and "torch.Tensor" in str(e.value)
    assert isinstance(e.value, TypeError) and isinstance(e.value, ft.Error)
