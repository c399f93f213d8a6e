"""Gradient checkpointing (ferrotorch.grad_checkpoint, grad_checkpoint_sequential,
FlowBuilder.checkpoint): values and gradients equal the plain run bit for bit
and torch.utils.checkpoint on identical weights; activations are not kept."""

import functools
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint as torch_checkpoint
from torch.utils.checkpoint import checkpoint_sequential as torch_checkpoint_sequential

import ferrotorch as ft
from ferrotorch import FlowBuilder, MergeOp
from ferrotorch.nn import GELU, Dropout, LayerNorm, Linear, ReLU


def _block():
    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), torch.nn.Linear(8, 8))


def _grads(params):
    return [None if p.grad is None else p.grad.clone() for p in params]


def _run(fn, x, params, proj):
    """Forward, backward of <out, proj>; returns (out, grad of x, grads of params)."""
    for p in params:
        p.grad = None
    if x.requires_grad:
        x.grad = None
    out = fn(x)
    (out * proj).sum().backward()
    return out.detach(), (None if x.grad is None else x.grad.clone()), _grads(params)


def _assert_same(a, b, exact=True):
    out_a, gx_a, gp_a = a
    out_b, gx_b, gp_b = b
    check = torch.equal if exact else (lambda u, v: torch.allclose(u, v, rtol=1e-5, atol=1e-6))
    assert check(out_a, out_b)
    assert (gx_a is None) == (gx_b is None)
    if gx_a is not None:
        assert check(gx_a, gx_b)
    assert len(gp_a) == len(gp_b)
    for u, v in zip(gp_a, gp_b):
        assert u is not None and v is not None
        assert check(u, v)


# --- grad_checkpoint on Python callables ---------------------------------------------


def test_torch_module_matches_plain_run_and_torch_checkpoint():
    block = _block()
    params = list(block.parameters())
    x = torch.randn(5, 8, requires_grad=True)
    proj = torch.randn(5, 8)
    ours = _run(lambda t: ft.grad_checkpoint(block, t), x, params, proj)
    plain = _run(block, x, params, proj)
    theirs = _run(lambda t: torch_checkpoint(block, t, use_reentrant=False), x, params, proj)
    _assert_same(ours, plain)
    _assert_same(ours, theirs)


def test_output_is_produced_by_the_checkpoint_function():
    x = torch.randn(3, 8, requires_grad=True)
    out = ft.grad_checkpoint(_block(), x)
    assert out.requires_grad and "CppFunction" in type(out.grad_fn).__name__


def test_activations_are_not_kept():
    # Counts the tensors autograd saves during the forward: checkpointed, only
    # the inputs of the checkpoint (x and the parameters) are saved.
    block = torch.nn.Sequential(
        *[torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU()) for _ in range(4)]
    )
    x = torch.randn(3, 8, requires_grad=True)

    def saved(fn):
        n = [0]

        def pack(t):
            n[0] += 1
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = fn(x)
        out.sum().backward()  # outside: the recompute saves its own, briefly
        return n[0]

    plain = saved(block)
    ours = saved(lambda t: ft.grad_checkpoint(block, t))
    assert ours == 1 + len(list(block.parameters()))
    assert plain > ours


def test_input_without_grad_still_gives_parameter_gradients():
    block = _block()
    params = list(block.parameters())
    x = torch.randn(4, 8)  # requires_grad=False: torch's non-reentrant mode supports this
    proj = torch.randn(4, 8)
    ours = _run(lambda t: ft.grad_checkpoint(block, t), x, params, proj)
    plain = _run(block, x, params, proj)
    _assert_same(ours, plain)


@pytest.mark.parametrize("style", ["bound_method", "closure", "partial", "params"])
def test_parameters_found_through_methods_closures_partials_and_params(style):
    lin = torch.nn.Linear(8, 8)
    w = torch.randn(8, 8, requires_grad=True)

    def body(x, scale=1.0):
        return F.gelu(lin(x)) @ w * scale

    if style == "bound_method":

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = lin
                self.w = torch.nn.Parameter(w.detach().clone())

            def go(self, x):
                return F.gelu(self.lin(x)) @ self.w

        m = M()
        fn, params = m.go, [m.lin.weight, m.lin.bias, m.w]
    elif style == "closure":
        fn, params = (lambda x: body(x)), [lin.weight, lin.bias, w]
    elif style == "partial":
        fn, params = functools.partial(body, scale=2.0), [lin.weight, lin.bias, w]
    else:

        def fn(x):
            return _GLOBAL_FN(x)

        params = [lin.weight, lin.bias, w]
        _GLOBALS["fn"] = body
    x = torch.randn(3, 8)
    proj = torch.randn(3, 8)
    extra = {"params": params} if style == "params" else {}
    ours = _run(lambda t: ft.grad_checkpoint(fn, t, **extra), x, params, proj)
    plain = _run(fn, x, params, proj)
    _assert_same(ours, plain)
    if style == "params":
        # Declared parameters go through the autograd engine: autograd.grad sees them.
        out = ft.grad_checkpoint(fn, x, params=params)
        g = torch.autograd.grad((out * proj).sum(), params)
        for a, b in zip(g, plain[2]):
            assert torch.equal(a, b)


_GLOBALS = {}


def _GLOBAL_FN(x):
    return _GLOBALS["fn"](x)


def test_backward_with_inputs_and_autograd_grad_take_the_returning_path():
    block = _block()
    params = list(block.parameters())
    x = torch.randn(4, 8, requires_grad=True)
    proj = torch.randn(4, 8)
    want = torch.autograd.grad((block(x) * proj).sum(), [x] + params)
    got = torch.autograd.grad((ft.grad_checkpoint(block, x) * proj).sum(), [x] + params)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    for p in params:
        assert p.grad is None  # autograd.grad accumulates nothing
    (ft.grad_checkpoint(block, x) * proj).sum().backward(inputs=params[:2])
    assert torch.equal(params[0].grad, want[1]) and torch.equal(params[1].grad, want[2])
    assert x.grad is None and params[2].grad is None


def test_undeclared_leaf_gets_its_gradient_accumulated():
    # A tensor read through a global is invisible to the parameter search: its
    # gradient is accumulated into .grad during backward, as torch's reentrant
    # checkpoint does.
    w = torch.randn(8, 8, requires_grad=True)
    _GLOBALS["w"] = w

    def fn(x):
        return torch.tanh(x @ _GLOBALS["w"])

    x = torch.randn(3, 8, requires_grad=True)
    proj = torch.randn(3, 8)
    ours = _run(lambda t: ft.grad_checkpoint(fn, t), x, [w], proj)
    plain = _run(fn, x, [w], proj)
    _assert_same(ours, plain)


def test_captured_non_leaf_is_an_error_in_backward():
    base = torch.randn(8, 8, requires_grad=True)
    _GLOBALS["h"] = base * 2  # computed outside fn, not a leaf, not an input

    def fn(x):
        return x @ _GLOBALS["h"]

    x = torch.randn(3, 8, requires_grad=True)
    out = ft.grad_checkpoint(fn, x)
    with pytest.raises(RuntimeError, match="computed outside it and is not one of its inputs"):
        out.sum().backward()


def test_multiple_inputs_and_outputs_and_non_tensor_arguments():
    lin = torch.nn.Linear(8, 8)

    def fn(a, k, b):
        h = lin(a) * k + b
        return h.relu(), (h * b).sum(dim=1)

    a = torch.randn(4, 8, requires_grad=True)
    b = torch.randn(4, 8, requires_grad=True)
    p1, p2 = torch.randn(4, 8), torch.randn(4)

    def run(f):
        for t in (a, b, lin.weight, lin.bias):
            t.grad = None
        y1, y2 = f(a, 3.0, b)
        ((y1 * p1).sum() + (y2 * p2).sum()).backward()
        return [y1.detach(), y2.detach()] + [t.grad.clone() for t in (a, b, lin.weight, lin.bias)]

    ours = run(lambda a_, k, b_: ft.grad_checkpoint(fn, a_, k, b_))
    plain = run(fn)
    theirs = run(lambda a_, k, b_: torch_checkpoint(fn, a_, k, b_, use_reentrant=False))
    for u, v, w in zip(ours, plain, theirs):
        assert torch.equal(u, v)
        torch.testing.assert_close(u, w)
    out = ft.grad_checkpoint(fn, a, 3.0, b)
    assert isinstance(out, tuple) and len(out) == 2


def test_nested_checkpoints():
    inner, outer = _block(), torch.nn.Linear(8, 8)
    params = list(inner.parameters()) + list(outer.parameters())

    def fn(x):
        return outer(ft.grad_checkpoint(inner, x)).tanh()

    x = torch.randn(4, 8, requires_grad=True)
    proj = torch.randn(4, 8)
    ours = _run(lambda t: ft.grad_checkpoint(fn, t), x, params, proj)
    plain = _run(lambda t: outer(inner(t)).tanh(), x, params, proj)
    _assert_same(ours, plain)


def test_double_backward_through_the_recompute():
    lin = torch.nn.Linear(8, 8)

    def fn(t):
        return torch.tanh(lin(t)) ** 2

    def second_order(f):
        x = torch.randn(3, 8, requires_grad=True)
        x.data.copy_(torch.arange(24.0).reshape(3, 8) / 24)
        for p in lin.parameters():
            p.grad = None
        (gx,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
        (gx**2).sum().backward()
        return [gx.detach(), x.grad.clone(), lin.weight.grad.clone(), lin.bias.grad.clone()]

    for a, b in zip(second_order(lambda t: ft.grad_checkpoint(fn, t)), second_order(fn)):
        torch.testing.assert_close(a, b)


def test_edge_cases_identity_no_tensor_inputs_integer_outputs():
    x = torch.randn(3, requires_grad=True)
    ft.grad_checkpoint(lambda t: t, x).sum().backward()
    assert torch.equal(x.grad, torch.ones(3))
    w = torch.randn(3, requires_grad=True)
    ft.grad_checkpoint(lambda: w * 2).sum().backward()
    assert torch.equal(w.grad, torch.full((3,), 2.0))
    x.grad = None
    y, i = ft.grad_checkpoint(lambda t: (t * 2, t.argmax()), x)
    assert not i.requires_grad and i.dtype == torch.int64
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 2.0))


def test_no_grad_runs_plainly():
    block = _block()
    x = torch.randn(2, 8, requires_grad=True)
    with torch.no_grad():
        out = ft.grad_checkpoint(block, x)
    assert out.grad_fn is None and not out.requires_grad
    assert torch.equal(out, block(x).detach())


def test_autocast_state_is_replayed_in_the_recompute():
    block = _block()
    params = list(block.parameters())
    x = torch.randn(4, 8, requires_grad=True)
    proj = torch.randn(4, 8)

    def under_autocast(f):
        def run(t):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return f(t).float()

        return run

    ours = _run(under_autocast(lambda t: ft.grad_checkpoint(block, t)), x, params, proj)
    plain = _run(under_autocast(block), x, params, proj)
    _assert_same(ours, plain)


# --- RNG ------------------------------------------------------------------------------


def _dropout_fn():
    lin = torch.nn.Linear(64, 64)
    return lin, (lambda x: F.dropout(F.gelu(lin(x)), p=0.5, training=True))


@pytest.mark.parametrize("seed", [0, 7])
def test_dropout_recomputes_the_same_mask_and_rng_ends_as_without_recompute(seed):
    lin, fn = _dropout_fn()
    params = list(lin.parameters())
    x = torch.randn(16, 64, requires_grad=True)
    proj = torch.randn(16, 64)
    torch.manual_seed(seed)
    ours = _run(lambda t: ft.grad_checkpoint(fn, t), x, params, proj)
    after_ours = torch.get_rng_state()
    torch.manual_seed(seed)
    plain = _run(fn, x, params, proj)
    after_plain = torch.get_rng_state()
    _assert_same(ours, plain)
    assert torch.equal(after_ours, after_plain)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_dropout_recomputes_the_same_mask_and_cuda_rng_ends_as_without_recompute():
    lin = torch.nn.Linear(64, 64).cuda()

    def fn(x):
        return F.dropout(F.gelu(lin(x)), p=0.5, training=True)

    params = list(lin.parameters())
    x = torch.randn(16, 64, device="cuda", requires_grad=True)
    proj = torch.randn(16, 64, device="cuda")
    torch.manual_seed(5)
    ours = _run(lambda t: ft.grad_checkpoint(fn, t), x, params, proj)
    after_ours = torch.cuda.get_rng_state()
    torch.manual_seed(5)
    plain = _run(fn, x, params, proj)
    _assert_same(ours, plain)
    assert torch.equal(after_ours, torch.cuda.get_rng_state())


def test_without_preserved_rng_the_recompute_draws_a_new_mask():
    # The counterpart showing the test above can fail.
    lin, fn = _dropout_fn()
    params = list(lin.parameters())
    x = torch.randn(16, 64, requires_grad=True)
    proj = torch.randn(16, 64)
    torch.manual_seed(3)
    ours = _run(lambda t: ft.grad_checkpoint(fn, t, preserve_rng_state=False), x, params, proj)
    torch.manual_seed(3)
    plain = _run(fn, x, params, proj)
    assert torch.equal(ours[0], plain[0])
    assert not torch.equal(ours[1], plain[1])


def test_ferrotorch_dropout_graph_recomputes_identically():
    def graph(mark):
        b = FlowBuilder.from_(Linear(32, 32)).through(GELU()).through(Dropout(0.5))
        if mark:
            b = b.checkpoint()
        return b.through(Linear(32, 4)).build()

    g, h = graph(False), graph(True)
    with torch.no_grad():
        for a, c in zip(h.parameters(), g.parameters()):
            a.copy_(c)
    x = torch.randn(8, 32, requires_grad=True)
    proj = torch.randn(8, 4)
    torch.manual_seed(11)
    ours = _run(h, x, h.parameters(), proj)
    state = torch.get_rng_state()
    torch.manual_seed(11)
    plain = _run(g, x, g.parameters(), proj)
    _assert_same(ours, plain)
    assert torch.equal(state, torch.get_rng_state())


# --- ferrotorch modules and graphs ----------------------------------------------------


def _graph():
    return (
        FlowBuilder.from_(Linear(8, 16)).through(GELU()).through(LayerNorm(16)).through(Linear(16, 8)).build()
    )


def _torch_twin(g):
    ref = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.LayerNorm(16), torch.nn.Linear(16, 8)
    )
    with torch.no_grad():
        for a, b in zip(g.parameters(), ref.parameters()):
            a.copy_(torch.randn_like(a))
            b.copy_(a)
    return ref


@pytest.mark.parametrize("requires_grad", [True, False])
def test_ferrotorch_graph_matches_torch_checkpoint(requires_grad):
    g = _graph()
    ref = _torch_twin(g)
    x = torch.randn(6, 8, requires_grad=requires_grad)
    proj = torch.randn(6, 8)
    ours = _run(lambda t: ft.grad_checkpoint(g, t), x, g.parameters(), proj)
    plain = _run(g, x, g.parameters(), proj)
    theirs = _run(lambda t: torch_checkpoint(ref, t, use_reentrant=False), x, list(ref.parameters()), proj)
    _assert_same(ours, plain)
    _assert_same(ours, theirs, exact=False)


def test_ferrotorch_module_forward_error_keeps_its_kind():
    with pytest.raises(ft.ShapeError):
        ft.grad_checkpoint(Linear(8, 4), torch.randn(2, 5, requires_grad=True))


# --- grad_checkpoint_sequential -------------------------------------------------------


def _ft_chain(n):
    mods = []
    for i in range(n):
        mods.append(Linear(8, 8))
        if i % 2 == 0:
            mods.append(GELU())
    return mods


def _torch_chain(mods):
    out = []
    for m in mods:
        if isinstance(m, Linear):
            t = torch.nn.Linear(8, 8)
            with torch.no_grad():
                m.weight.copy_(torch.randn_like(m.weight) * 0.3)
                t.weight.copy_(m.weight)
                t.bias.copy_(m.bias)
            out.append(t)
        else:
            out.append(torch.nn.GELU())
    return torch.nn.Sequential(*out)


def _params(mods):
    return [p for m in mods for p in m.parameters()]


@pytest.mark.parametrize("segments", [1, 2, 3, 4, 7])
def test_sequential_matches_torch_checkpoint_sequential(segments):
    mods = _ft_chain(5)  # 7 modules: segments 3 and 4 leave a remainder
    ref = _torch_chain(mods)
    x = torch.randn(4, 8, requires_grad=True)
    proj = torch.randn(4, 8)
    ours = _run(lambda t: ft.grad_checkpoint_sequential(mods, segments, t), x, _params(mods), proj)

    def plain_fn(t):
        for m in mods:
            t = m(t)
        return t

    plain = _run(plain_fn, x, _params(mods), proj)
    theirs = _run(
        lambda t: torch_checkpoint_sequential(ref, segments, t, use_reentrant=False),
        x,
        list(ref.parameters()),
        proj,
    )
    _assert_same(ours, plain)
    _assert_same(ours, theirs, exact=False)


def test_sequential_over_torch_sequential_and_input_without_grad():
    ref = torch.nn.Sequential(*[torch.nn.Linear(8, 8) for _ in range(4)])
    x = torch.randn(4, 8)
    proj = torch.randn(4, 8)
    params = list(ref.parameters())
    ours = _run(lambda t: ft.grad_checkpoint_sequential(ref, 2, t), x, params, proj)
    theirs = _run(lambda t: torch_checkpoint_sequential(ref, 2, t, use_reentrant=False), x, params, proj)
    _assert_same(ours, theirs)


def test_sequential_keeps_only_segment_boundaries():
    mods = [Linear(8, 8) for _ in range(8)]
    x = torch.randn(3, 8, requires_grad=True)
    n = [0]

    def pack(t):
        n[0] += 1
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = ft.grad_checkpoint_sequential(mods, 4, x)
    out.sum().backward()
    # 3 checkpointed chunks of 2 Linears: input + 4 params each; the last
    # chunk runs plainly: each Linear saves its input and weight.
    assert n[0] == 3 * (1 + 4) + 2 * 2


# --- FlowBuilder.checkpoint() ---------------------------------------------------------


def _marked(mark):
    def cp(b):
        return b.checkpoint() if mark else b

    b = FlowBuilder.from_(Linear(8, 16)).through(GELU())
    b = cp(b.also(FlowBuilder.from_(Linear(16, 16)).through(GELU()).through(LayerNorm(16)).build())).tag("h")
    b = cp(b.split([Linear(16, 16), Linear(16, 16)])).merge(MergeOp.ADD)
    b = cp(b.through(torch.nn.Linear(16, 16)))  # a Python node: the recompute takes the GIL
    return b.through(Linear(16, 4)).build()


def test_checkpoint_mark_keeps_hash_names_and_files(tmp_path):
    g, h = _marked(False), _marked(True)
    assert g.structural_hash() == h.structural_hash()
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in h.named_parameters()]
    assert g.node_ids() == h.node_ids()
    with torch.no_grad():
        for a, b in zip(h.parameters(), g.parameters()):
            a.copy_(b)
    ft.checkpoint.save_checkpoint(g, tmp_path / "g.fdl")
    ft.checkpoint.save_checkpoint(h, tmp_path / "h.fdl")
    assert (tmp_path / "g.fdl").read_bytes() == (tmp_path / "h.fdl").read_bytes()


def test_checkpoint_mark_gives_the_same_values_and_gradients():
    g, h = _marked(False), _marked(True)
    with torch.no_grad():
        for a, b in zip(h.parameters(), g.parameters()):
            a.copy_(b)
    x = torch.randn(5, 8, requires_grad=True)
    proj = torch.randn(5, 4)
    _assert_same(_run(h, x, h.parameters(), proj), _run(g, x, g.parameters(), proj))


def test_checkpoint_mark_keeps_activations_out():
    def count(g, x):
        n = [0]

        def pack(t):
            n[0] += 1
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = g(x)
        out.sum().backward()
        return n[0]

    inner = FlowBuilder.from_(Linear(8, 8)).through(GELU()).through(Linear(8, 8)).through(GELU()).build()
    plain = FlowBuilder.from_(Identity_()).through(inner).build()
    inner2 = FlowBuilder.from_(Linear(8, 8)).through(GELU()).through(Linear(8, 8)).through(GELU()).build()
    marked = FlowBuilder.from_(Identity_()).through(inner2).checkpoint().build()
    x = torch.randn(2, 8, requires_grad=True)
    assert count(marked, x) == 1 + 4  # the node's input and its 4 parameters
    assert count(plain, x) > count(marked, x)


def Identity_():
    from ferrotorch.nn import Identity

    return Identity()


def test_checkpoint_mark_with_refs():
    def graph(mark):
        b = FlowBuilder.from_(Linear(8, 8)).tag("a").through(GELU()).through(ft.StateAdd())
        if mark:
            b = b.checkpoint()
        return b.using("a").through(Linear(8, 2)).build()

    g, h = graph(False), graph(True)
    with torch.no_grad():
        for a, b in zip(h.parameters(), g.parameters()):
            a.copy_(b)
    x = torch.randn(3, 8, requires_grad=True)
    proj = torch.randn(3, 2)
    _assert_same(_run(h, x, h.parameters(), proj), _run(g, x, g.parameters(), proj))


def test_graph_forward_releases_outputs_after_their_last_reader():
    # What makes a checkpointed node's savings real: the executor itself does
    # not hold every node's output until the forward ends.
    seen = {}

    def a(x):
        y = x * 2
        seen["a"] = weakref.ref(y)
        return y

    def c(x):
        seen["alive at c"] = seen["a"]() is not None
        return x

    with torch.no_grad():
        FlowBuilder.from_(a).through(ReLU()).through(c).build()(torch.randn(3))
        assert seen["alive at c"] is False
        FlowBuilder.from_(a).tag("t").through(ReLU()).through(c).build()(torch.randn(3))
        assert seen["alive at c"] is True  # a tagged output is kept for graph.tagged()


def test_checkpoint_mark_errors_name_the_node():
    with pytest.raises(ft.GraphError, match="checkpoint: node 'merge_4' has no module"):
        FlowBuilder.from_(Linear(2, 2)).split([Linear(2, 2), Linear(2, 2)]).merge(
            MergeOp.ADD
        ).checkpoint().build()
    stateful = (
        FlowBuilder.from_(Linear(2, 2)).through(ft.StateAdd()).using("m").through(Linear(2, 2)).tag("m")
    )
    with pytest.raises(ft.GraphError, match="forward refs"):
        FlowBuilder.from_(Linear(2, 2)).through(stateful.build()).checkpoint().build()


# --- errors ---------------------------------------------------------------------------


def test_bad_arguments_are_ferrotorch_errors_naming_the_argument():
    x = torch.randn(2, 8, requires_grad=True)
    with pytest.raises(ft.InputTypeError, match="fn must be callable"):
        ft.grad_checkpoint(3, x)
    with pytest.raises(ft.ConfigError, match="segments must be at least 1, got 0"):
        ft.grad_checkpoint_sequential([Linear(8, 8)], 0, x)
    with pytest.raises(ft.ConfigError, match=r"segments \(3\) must not exceed the number of modules \(2\)"):
        ft.grad_checkpoint_sequential([Linear(8, 8), GELU()], 3, x)
    with pytest.raises(ft.InputTypeError, match="segments must be an int"):
        ft.grad_checkpoint_sequential([Linear(8, 8)], "2", x)
    with pytest.raises(ft.InputTypeError, match="modules must be"):
        ft.grad_checkpoint_sequential(Linear(8, 8), 1, x)
    with pytest.raises(ft.InputTypeError, match="modules\\[1\\]"):
        ft.grad_checkpoint_sequential([Linear(8, 8), 5], 1, x)
    with pytest.raises(ft.InputTypeError, match="fn must return a tensor"):
        ft.grad_checkpoint(lambda t: "no", x)
    with pytest.raises(ft.InputTypeError, match="params\\[0\\]"):
        ft.grad_checkpoint(lambda t: t * 2, x, params=[1.0])


def test_forward_exception_propagates_unchanged():
    def fn(x):
        raise KeyError("in forward")

    with pytest.raises(KeyError, match="in forward"):
        ft.grad_checkpoint(fn, torch.randn(2, requires_grad=True))


def test_exception_during_recompute_is_an_error_not_a_crash():
    calls = [0]

    def fn(x):
        calls[0] += 1
        if calls[0] > 1:
            raise ValueError("boom in recompute")
        return x * 2

    x = torch.randn(3, requires_grad=True)
    out = ft.grad_checkpoint(fn, x)
    with pytest.raises(
        RuntimeError, match="grad_checkpoint: fn raised while being recomputed in backward.*boom"
    ):
        out.sum().backward()
    # The process and the extension are fine afterwards.
    y = ft.grad_checkpoint(lambda t: t * 3, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 3.0))
