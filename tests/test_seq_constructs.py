"""Unroll, Select and AddParameter: the constructs floDl's gru_seq, lstm_seq
and transformer benchmarks need, each against the torch code it replaces,
bit for bit (values, gradients, 20 Adam steps through the Trainer)."""

import copy
import pickle

import pytest
import torch

import ferrotorch as ft
from ferrotorch import FlowBuilder

B, T, F, H, OUT = 4, 6, 5, 7, 3


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _torch_cell(cell):
    """A torch cell holding a copy of a ferrotorch cell's weights."""
    kind = torch.nn.GRUCell if isinstance(cell, ft.nn.GRUCell) else torch.nn.LSTMCell
    ref = kind(F, H)
    with torch.no_grad():
        for mine, theirs in zip(cell.parameters(), ref.parameters(), strict=True):
            theirs.copy_(mine)
    return ref


def _loop(cell, x):
    """The torch loop Unroll replaces."""
    h = torch.zeros(x.shape[0], cell.hidden_size)
    state = (h, torch.zeros_like(h)) if isinstance(cell, torch.nn.LSTMCell) else h
    outs = []
    for t in range(x.shape[1]):
        state = cell(x.select(1, t), state)
        outs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outs, 1)


CELLS = {"gru": lambda: ft.nn.GRUCell(F, H), "lstm": lambda: ft.nn.LSTMCell(F, H)}


# ---------------------------------------------------------------- Unroll


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_unroll_equals_the_torch_loop_values_and_gradients(kind):
    cell = CELLS[kind]()
    u = ft.nn.Unroll(cell)
    ref = _torch_cell(cell)
    xa = _x(B, T, F).requires_grad_()
    xb = xa.detach().clone().requires_grad_()
    a, b = u(xa), _loop(ref, xb)
    assert a.shape == (B, T, H)
    assert torch.equal(a, b)
    g = _x(B, T, H, seed=1)
    a.backward(g)
    b.backward(g)
    assert torch.equal(xa.grad, xb.grad)
    for p, q in zip(u.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_unroll_holds_the_given_cell_as_its_child(kind):
    cell = CELLS[kind]()
    u = ft.nn.Unroll(cell)
    assert u.cell is cell
    assert [n for n, _ in u.named_parameters()] == ["cell.w_ih", "cell.w_hh", "cell.b_ih", "cell.b_hh"]
    assert list(u.state_dict()) == ["cell.w_ih", "cell.w_hh", "cell.b_ih", "cell.b_hh"]
    assert u.name == "unroll"
    x = _x(B, T, F)
    before = u(x)
    with torch.no_grad():  # one copy: the cell's tensor is the one the Rust loop reads
        cell.w_hh.mul_(0.5)
    assert not torch.equal(u(x), before)
    # A new Parameter set on the cell is adopted by the Rust side too.
    cell.w_ih = torch.nn.Parameter(torch.zeros_like(cell.w_ih))
    assert torch.equal(u(x), _loop(_torch_cell(cell), x))


def test_unroll_copies_and_pickles_with_its_cell():
    u = ft.nn.Unroll(ft.nn.LSTMCell(F, H))
    x = _x(B, T, F)
    for v in (copy.deepcopy(u), pickle.loads(pickle.dumps(u))):
        assert v.cell is not u.cell and isinstance(v.cell, ft.nn.LSTMCell)
        assert torch.equal(v(x), u(x))
        with torch.no_grad():
            v.cell.b_ih.add_(1.0)  # the copy's registered tensor drives the copy's Rust loop
        assert not torch.equal(v(x), u(x))
    w = ft.nn.Unroll(ft.nn.LSTMCell(F, H))
    w.load_state_dict(u.state_dict(), strict=True)
    assert torch.equal(w(x), u(x))


def test_unroll_errors_name_the_argument():
    u = ft.nn.Unroll(ft.nn.GRUCell(F, H))
    with pytest.raises(
        ft.InputTypeError, match="Unroll: cell must be a ferrotorch GRUCell or LSTMCell, got Linear"
    ):
        ft.nn.Unroll(ft.nn.Linear(2, 2))
    with pytest.raises(ft.InputTypeError, match="got GRUCell"):
        ft.nn.Unroll(torch.nn.GRUCell(2, 2))
    with pytest.raises(ft.ShapeError, match=r"Unroll\(GRUCell\(5, 7\)\): expected a 3-D input"):
        u(_x(B, F))
    with pytest.raises(ft.ShapeError, match=r"expected input of shape \[batch, seq, 5\], got \[4, 6, 4\]"):
        u(_x(B, T, 4))
    with pytest.raises(ft.ShapeError, match="the sequence is empty"):
        u(torch.zeros(B, 0, F))

    class Custom(ft.nn.GRUCell):
        def forward(self, x, h=None):
            return super().forward(x, h)

    with pytest.raises(ft.ConfigError, match="Unroll: cell Custom runs Python"):
        ft.nn.Unroll(Custom(F, H))
    assert issubclass(ft.InputTypeError, ft.Error) and issubclass(ft.ShapeError, ft.Error)


# ---------------------------------------------------------------- Select


def test_select_is_tensor_select():
    x = _x(2, 3, 4).requires_grad_()
    for dim, index in [(1, 2), (1, -1), (-1, 0), (0, -2)]:
        y = ft.nn.Select(dim, index)(x)
        assert torch.equal(y, x.select(dim, index))
    g = torch.autograd.grad(ft.nn.Select(1, -1)(x).sum(), x)[0]
    assert torch.equal(g, torch.autograd.grad(x.select(1, -1).sum(), x)[0])
    assert ft.nn.Select(1, 0).name == "select" and list(ft.nn.Select(1, 0).parameters()) == []


def test_select_errors_name_dim_index_and_shape():
    x = _x(2, 3, 4)
    with pytest.raises(ft.ShapeError, match=r"Select\(dim=3, index=0\): dim 3 is out of range.*\[2, 3, 4\]"):
        ft.nn.Select(3, 0)(x)
    with pytest.raises(ft.ShapeError, match=r"dim -4 is out of range"):
        ft.nn.Select(-4, 0)(x)
    with pytest.raises(
        ft.OutOfRangeError, match=r"index 3 is out of range for dimension 1 of size 3.*\[2, 3, 4\]"
    ):
        ft.nn.Select(1, 3)(x)
    with pytest.raises(ft.OutOfRangeError, match=r"index -4"):
        ft.nn.Select(1, -4)(x)
    assert issubclass(ft.OutOfRangeError, ft.Error) and issubclass(ft.OutOfRangeError, IndexError)


# ---------------------------------------------------------------- AddParameter


def test_add_parameter_shape_forms_init_and_one_copy():
    a, b = ft.nn.AddParameter(1, 3, 4), ft.nn.AddParameter((1, 3, 4))
    assert a.weight.shape == b.weight.shape == (1, 3, 4)
    assert isinstance(a.weight, torch.nn.Parameter) and torch.all(a.weight == 0)  # zeros at first
    assert list(a.state_dict()) == ["weight"] and a.name == "add_parameter"
    x = _x(2, 3, 4)
    with torch.no_grad():
        a.weight.copy_(_x(1, 3, 4, seed=3))
    assert torch.equal(a(x), x + a.weight)
    a.weight = torch.nn.Parameter(torch.ones(1, 3, 4))  # adopted by the Rust layer
    assert torch.equal(a(x), x + 1)
    xg = x.clone().requires_grad_()
    a(xg).square().sum().backward()
    ref_w = torch.ones(1, 3, 4, requires_grad=True)
    (x + ref_w).square().sum().backward()
    assert torch.equal(a.weight.grad, ref_w.grad)
    assert ft.nn.AddParameter(4)(x).shape == x.shape  # broadcasting over leading dims


def test_add_parameter_errors():
    with pytest.raises(
        ft.ConfigError, match=r"AddParameter: shape must be one or more positive sizes, got \[0, 2\]"
    ):
        ft.nn.AddParameter(0, 2)
    with pytest.raises(ft.InputTypeError, match="AddParameter: shape must be ints"):
        ft.nn.AddParameter("a")
    with pytest.raises(
        ft.ShapeError, match=r"the weight \[1, 3, 4\] does not broadcast to the input's shape \[2, 5, 4\]"
    ):
        ft.nn.AddParameter(1, 3, 4)(_x(2, 5, 4))


# ---------------------------------------------------------------- in graphs, trained


class _SeqTwin(torch.nn.Module):
    """floDl's gru_seq / lstm_seq head in torch: unrolled cell, last step, Linear."""

    def __init__(self, cell, head):
        super().__init__()
        self.cell, self.head = cell, head

    def forward(self, x):
        return self.head(_loop(self.cell, x)[:, -1])


class _PosTwin(torch.nn.Module):
    """Linear, a learned positional tensor, Linear (the transformer's embedding + pos)."""

    def __init__(self, a, pos, b):
        super().__init__()
        self.a, self.pos, self.b = a, torch.nn.Parameter(pos.detach().clone()), b

    def forward(self, x):
        return self.b(self.a(x) + self.pos)

    def graph_order(self):
        return [*self.a.parameters(), self.pos, *self.b.parameters()]


def _ordered(ref):
    """The twin's parameters in the graph's (node) order."""
    return ref.graph_order() if hasattr(ref, "graph_order") else list(ref.parameters())


def _copy_linear(lin):
    ref = torch.nn.Linear(lin.in_features, lin.out_features)
    with torch.no_grad():
        ref.weight.copy_(lin.weight)
        ref.bias.copy_(lin.bias)
    return ref


def _seq_pair(kind):
    cell, head = CELLS[kind](), ft.nn.Linear(H, OUT)
    g = FlowBuilder.from_(ft.nn.Unroll(cell)).through(ft.nn.Select(1, -1)).through(head).build()
    return g, _SeqTwin(_torch_cell(cell), _copy_linear(head))


def _pos_pair():
    a, pos, b = ft.nn.Linear(F, H), ft.nn.AddParameter(1, T, H), ft.nn.Linear(H, OUT)
    with torch.no_grad():
        pos.weight.copy_(_x(1, T, H, seed=7))
    g = FlowBuilder.from_(a).through(pos).through(b).build()
    return g, _PosTwin(_copy_linear(a), pos.weight, _copy_linear(b))


PAIRS = {"gru": lambda: _seq_pair("gru"), "lstm": lambda: _seq_pair("lstm"), "pos": _pos_pair}


def test_graph_parameter_names():
    g, _ = _seq_pair("gru")
    assert [n for n, _ in g.named_parameters()] == [
        "unroll_1/cell.w_ih",
        "unroll_1/cell.w_hh",
        "unroll_1/cell.b_ih",
        "unroll_1/cell.b_hh",
        "linear_3/weight",
        "linear_3/bias",
    ]
    g, _ = _pos_pair()
    assert [n for n, _ in g.named_parameters()][2] == "add_parameter_2/weight"


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_in_a_graph_equals_the_torch_twin(name):
    g, ref = PAIRS[name]()
    xa = _x(B, T, F).requires_grad_()
    xb = xa.detach().clone().requires_grad_()
    a, b = g(xa), ref(xb)
    assert a.shape == ((B, OUT) if name != "pos" else (B, T, OUT))
    assert torch.equal(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    assert torch.equal(xa.grad, xb.grad)
    for p, q in zip(g.parameters(), _ordered(ref), strict=True):
        assert torch.equal(p.grad, q.grad)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_twenty_trainer_steps_equal_torch_adam(name):
    g, ref = PAIRS[name]()
    tr = ft.Trainer(g, ft.optim.Adam(g.parameters(), 1e-3), loss="mse")
    opt = torch.optim.Adam(ref.parameters(), 1e-3, fused=True)
    for step in range(20):
        x = _x(B, T, F, seed=100 + step)
        y = _x(*((B, OUT) if name != "pos" else (B, T, OUT)), seed=200 + step)
        ours = tr.step(x, y)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ref(x), y)
        loss.backward()
        opt.step()
        assert float(ours) == loss.item(), step
    for p, q in zip(g.parameters(), _ordered(ref), strict=True):
        assert torch.equal(p, q)
