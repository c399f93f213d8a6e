"""A ferrotorch Graph is a real torch.nn.Module: registered in torch modules,
state dicts, .to/.train/.eval, torch optimizers, torch.func
(functional_call, grad, vmap) and torch.utils.checkpoint, each against an
identical pure-torch twin."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

import ferrotorch as ft
from ferrotorch import FlowBuilder, ThresholdHalt, _core
from ferrotorch.nn import GELU, BatchNorm, Dropout, Linear

# floDl name -> the twin's name
NAMES = {
    "linear_1/weight": "l1.weight",
    "linear_1/bias": "l1.bias",
    "batchnorm_2/weight": "bn.weight",
    "batchnorm_2/bias": "bn.bias",
    "linear_4/weight": "l2.weight",
    "linear_4/bias": "l2.bias",
    "linear_6/weight": "l3.weight",
    "linear_6/bias": "l3.bias",
    "batchnorm_2/running_mean": "bn.running_mean",
    "batchnorm_2/running_var": "bn.running_var",
}


def graph(seed=0):
    """Linear(4, 8) → BatchNorm → GELU → residual Linear(8, 8) → Linear(8, 3)."""
    ft.manual_seed(seed)
    return (
        FlowBuilder.from_(Linear(4, 8))
        .through(BatchNorm(8))
        .through(GELU())
        .also(Linear(8, 8))
        .through(Linear(8, 3))
        .build()
    )


class Twin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.bn = torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8)
        self.l2, self.l3 = torch.nn.Linear(8, 8), torch.nn.Linear(8, 3)

    def forward(self, x):
        h = F.gelu(self.bn(self.l1(x)))
        return self.l3(h + self.l2(h))


def twin_of(g):
    ref = Twin()
    ref.load_state_dict({NAMES[k]: v for k, v in g.state_dict().items()}, strict=False)
    return ref


def to_twin(d):
    return {NAMES[k]: v for k, v in d.items()}


class Holder(torch.nn.Module):
    """A torch model holding a network as an attribute, plus a torch head."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        torch.manual_seed(1)
        self.head = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.head(self.net(x))


def data(n=16, seed=2, out=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=gen), torch.randn(n, out, generator=gen)


# --- 1. every graph is a torch.nn.Module --------------------------------------


def test_every_built_graph_and_subgraph_is_a_torch_module():
    inner = FlowBuilder.from_(Linear(4, 4)).through(GELU()).label("enc").build()
    outer = FlowBuilder.from_(inner).through(Linear(4, 2)).build()
    for g in (graph(), inner, outer, outer.subgraph("enc")):
        assert isinstance(g, torch.nn.Module)
        assert isinstance(g, ft.Graph) and isinstance(g, _core.Graph)
    sub = outer.subgraph("enc")
    # the subgraph's registered parameters are the parent's tensors
    assert [p for p in sub._parameters.values()] == [
        p for n, p in outer.named_parameters() if n.startswith("graph_1/")
    ]
    assert all(a is b for a, b in zip(sub._parameters.values(), inner.parameters()))


def test_registered_parameters_are_the_tensors_rust_trains():
    g = graph()
    x, y = data()
    for (n, p), (m, q) in zip(g.named_parameters(), torch.nn.Module.named_parameters(g)):
        assert n == m and p is q and isinstance(q, torch.nn.Parameter) and q.is_leaf
    for (n, b), (m, c) in zip(_core.Graph.named_buffers(g), torch.nn.Module.named_buffers(g)):
        assert n == m and b is c
    # the Rust engine trains them: the Parameters a holder sees change
    before = [p.detach().clone() for p in Holder(g).net.parameters()]
    ft.Trainer(g, ft.optim.SGD(g.parameters(), 0.1), loss=lambda out, t: ((out[:, :1] - t) ** 2).mean()).step(
        x, y
    )
    after = list(torch.nn.Module.parameters(g))
    # all but linear_1/bias, whose gradient BatchNorm's centring cancels
    assert [torch.equal(a, b) for a, b in zip(before, after)] == [False, True] + [False] * 6
    assert after[0] is g.parameters()[0]


def test_core_graph_still_accepted_by_checkpoints(tmp_path):
    g = graph()
    path = tmp_path / "g.fdl"
    ft.checkpoint.save_checkpoint(g, path)  # written with its structural hash
    g2 = graph(seed=5)
    report = g2.load_checkpoint(path, strict_hash=True)
    assert report is not None
    assert all(torch.equal(a, b) for a, b in zip(g.parameters(), g2.parameters()))


# --- 2. as a submodule ----------------------------------------------------------


def test_holder_lists_the_graphs_parameters_and_buffers_with_flodl_names():
    g = graph()
    h = Holder(g)
    names = [n for n, _ in h.named_parameters()]
    assert names == ["net." + n for n, _ in g.named_parameters()] + ["head.weight", "head.bias"]
    assert [n for n, _ in h.named_buffers()] == ["net." + n for n, _ in g.named_buffers()]
    assert list(h.state_dict()) == names[:-2] + [n for n, _ in h.named_buffers()] + names[-2:]
    assert len(list(h.parameters())) == len(g.parameters()) + 2
    # the same objects the graph hands out
    assert all(a is b for a, b in zip(list(h.parameters())[:-2], g.parameters()))


def test_state_dict_round_trip_through_the_holder_with_buffers():
    x, _ = data()
    a, b = Holder(graph(0)), Holder(graph(7))
    a(x)  # training mode: running statistics move
    assert not torch.equal(a.net.named_buffers()[0][1], torch.zeros(8))
    b.load_state_dict(a.state_dict())
    for (n, t), (m, u) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert n == m and torch.equal(t, u)
    a.eval(), b.eval()
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)
    # the values went into the Rust graph's own tensors
    ref = twin_of(b.net).eval()
    torch.testing.assert_close(b.net(x), ref(x), rtol=1e-5, atol=1e-6)


def test_load_state_dict_assign_still_copies_into_the_core_tensors():
    a, b = Holder(graph(0)), Holder(graph(7))
    before = list(b.net.parameters())
    b.load_state_dict(a.state_dict(), assign=True)
    after = list(b.net.parameters())
    assert all(p is q for p, q in zip(before, after))
    assert all(torch.equal(p, q) for p, q in zip(after, a.net.parameters()))


def test_to_dtype_and_device_reach_the_rust_graph():
    x, _ = data()
    g = graph()
    ref = twin_of(g)
    h = Holder(g)
    p0 = g.parameters()[0]
    h.to(torch.float64)
    ref.double()
    assert g.parameters()[0] is p0 and p0.dtype == torch.float64
    assert all(t.dtype == torch.float64 for _, t in g.named_buffers())
    assert all(p.dtype == torch.float64 for p in h.parameters())
    torch.testing.assert_close(g(x.double()), ref(x.double()), rtol=1e-12, atol=1e-12)
    h.to("cpu", torch.float32)
    assert g.parameters()[0] is p0 and p0.dtype == torch.float32
    assert g(x).dtype == torch.float32
    g.half()  # torch's own Module.half, on the graph directly
    assert p0.dtype == torch.float16
    g.float()
    assert p0.dtype == torch.float32


def test_train_and_eval_propagate_to_the_rust_graph():
    x, _ = data()
    ft.manual_seed(0)
    g = FlowBuilder.from_(Linear(4, 64)).through(Dropout(0.5)).build()
    h = Holder(g)
    assert g.training and h.training
    h.eval()
    assert not g.training and not h.training
    ref = torch.nn.Sequential(torch.nn.Linear(4, 64))
    ref.load_state_dict({"0.weight": g.parameters()[0], "0.bias": g.parameters()[1]})
    torch.testing.assert_close(g(x), ref(x), rtol=0, atol=0)  # dropout off
    h.train()
    assert g.training
    assert not torch.equal(g(x), g(x))  # dropout on again
    # BatchNorm: batch statistics in training, running ones in eval
    gb = graph()
    rb = twin_of(gb)
    hb = Holder(gb)
    torch.testing.assert_close(gb(x), rb(x), rtol=1e-5, atol=1e-6)
    hb.eval(), rb.eval()
    torch.testing.assert_close(gb(x), rb(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ft.InputTypeError, match="bool"):
        gb.train("yes")


def test_torch_optimizer_on_the_holder_trains_the_graph_like_torch():
    x, y = data(32)
    g = graph()
    ours, ref = Holder(g), Holder(twin_of(g))
    opt_a = torch.optim.SGD(ours.parameters(), lr=0.05, momentum=0.9)
    opt_b = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(20):
        pair = []
        for model, opt in ((ours, opt_a), (ref, opt_b)):
            loss = F.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            pair.append(loss.item())
        losses.append(pair)
    a, b = zip(*losses)
    assert a[-1] < 0.9 * a[0]
    assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
    for n, p in g.named_parameters():
        torch.testing.assert_close(p, dict(ref.net.named_parameters())[NAMES[n]], rtol=1e-4, atol=1e-5)
    for n, t in g.named_buffers():
        torch.testing.assert_close(t, dict(ref.net.named_buffers())[NAMES[n]], rtol=1e-4, atol=1e-5)


def test_call_goes_through_torch_module_call_and_runs_hooks():
    x, _ = data()
    g = graph()
    seen = []
    handle = g.register_forward_hook(lambda m, args, out: seen.append((m, args[0], out)))
    out = g(x)
    assert len(seen) == 1 and seen[0][0] is g and seen[0][1] is x and seen[0][2] is out
    handle.remove()
    g(x)
    assert len(seen) == 1


def test_a_built_graph_copies_and_pickles_a_subgraph_is_a_clear_error():
    g = graph().eval()
    x = torch.randn(3, 4)
    for copy_it in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        assert torch.equal(copy_it(g).eval()(x), g(x))  # replayed from its FlowBuilder recipe
    child = (
        ft.FlowBuilder.from_(ft.FlowBuilder.from_(Linear(4, 4)).label("enc").build()).build().subgraph("enc")
    )
    for copy_it in (copy.deepcopy, pickle.dumps):
        with pytest.raises(ft.InputTypeError, match="cannot be pickled"):
            copy_it(child)


# --- 3. the graph's own keywords ------------------------------------------------


def test_named_parameters_and_buffers_take_torch_keywords():
    g = graph()
    assert [n for n, _ in g.named_parameters(prefix="m")] == ["m." + n for n, _ in g.named_parameters()]
    assert g.named_parameters(recurse=False) == [] and g.named_buffers(recurse=False) == []
    assert [n for n, _ in g.named_buffers(prefix="m")] == ["m." + n for n, _ in g.named_buffers()]
    assert len(g.named_buffers(remove_duplicate=False)) == 2
    assert repr(g).splitlines()[1] == "  (linear_1): Linear(4 -> 8)"
    assert "(net): Graph(" in repr(Holder(g))


# --- 4. torch.func ----------------------------------------------------------------


def scaled(g, k=1.5):
    return {n: t.detach() * k + 0.1 for n, t in list(g.named_parameters()) + list(g.named_buffers())}


def test_functional_call_uses_the_given_tensors_like_torch():
    x, _ = data()
    g = graph()
    ref = twin_of(g)
    before = g(x).detach()
    for mode in (True, False):
        g.train(mode), ref.train(mode)
        new = scaled(g)
        ours = torch.func.functional_call(g, new, (x,))
        want = torch.func.functional_call(ref, to_twin(scaled(g)), (x,))
        torch.testing.assert_close(ours, want, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(ours, g(x))
    g.train()
    # the graph's own tensors are back in force and untouched
    torch.testing.assert_close(g(x), before, rtol=0, atol=0)
    assert all(a is b for a, b in zip(g._parameters.values(), g.parameters()))
    # in training mode torch updates the given running statistics in place
    new, want = scaled(g), to_twin(scaled(g))
    torch.func.functional_call(g, new, (x,))
    torch.func.functional_call(ref.train(), want, (x,))
    torch.testing.assert_close(new["batchnorm_2/running_mean"], want["bn.running_mean"], rtol=1e-6, atol=1e-6)
    assert not torch.equal(new["batchnorm_2/running_mean"], scaled(g)["batchnorm_2/running_mean"])


def test_functional_call_on_a_holder_reaches_the_graph():
    x, _ = data()
    g = graph()
    h, r = Holder(g), Holder(twin_of(g))
    new = {"net." + n: t for n, t in scaled(g).items()}
    want = {"net." + NAMES[n[4:]]: t for n, t in new.items()}
    torch.testing.assert_close(
        torch.func.functional_call(h, new, (x,)),
        torch.func.functional_call(r, want, (x,)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_func_grad_gives_gradients_of_the_given_tensors():
    x, y = data(out=3)
    g = graph()
    ref = twin_of(g)
    params = {n: p.detach() for n, p in g.named_parameters()}

    def loss(model):
        return lambda ps, x, y: F.mse_loss(torch.func.functional_call(model, ps, (x,)), y)

    # torch's BatchNorm counts batches with a Python-level add_ on a
    # captured buffer, which torch.func refuses; ours has no counter.
    ref.bn.num_batches_tracked = None
    for mode in (False, True):  # eval first: training moves running statistics
        g.train(mode), ref.train(mode)
        ours = torch.func.grad(loss(g))(params, x, y)
        want = torch.func.grad(loss(ref))(to_twin(params), x, y)
        assert list(ours) == list(params)
        for n, t in ours.items():
            torch.testing.assert_close(t, want[NAMES[n]], rtol=1e-5, atol=1e-6)
        # and they equal what loss.backward() puts into the graph's .grad
        F.mse_loss(g(x), y).backward()
        for n, p in g.named_parameters():
            torch.testing.assert_close(ours[n], p.grad, rtol=1e-5, atol=1e-6)
            p.grad = None


def test_vmap_per_sample_gradients_match_torch():
    x, y = data(6, out=3)
    g = graph().eval()  # per-sample BatchNorm needs running statistics
    ref = twin_of(g).eval()
    params = {n: p.detach() for n, p in g.named_parameters()}

    def per_sample(model, ps):
        def loss(ps, xi, yi):
            return F.mse_loss(torch.func.functional_call(model, ps, (xi[None],)), yi[None])

        return torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(ps, x, y)

    ours, want = per_sample(g, params), per_sample(ref, to_twin(params))
    for n, t in ours.items():
        assert t.shape == (6, *params[n].shape)
        torch.testing.assert_close(t, want[NAMES[n]], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.func.vmap(g)(x[:, None]), ref(x)[:, None], rtol=1e-5, atol=1e-6)


def test_vmap_limits_raise_ferrotorch_errors_naming_the_node():
    x = torch.randn(5, 1, 4)
    drop = FlowBuilder.from_(Linear(4, 4)).through(Dropout(0.5)).build()
    with pytest.raises(ft.TorchError, match="dropout_2.*randomness"):
        torch.func.vmap(drop)(x)
    loop = FlowBuilder.from_(Linear(4, 4)).loop_body(Linear(4, 4)).while_cond(ThresholdHalt(100.0), 3).build()
    with pytest.raises(ft.TorchError, match=r"loop_2.*item\(\)"):
        torch.func.vmap(loop)(x)


def test_functional_call_reaches_a_torch_module_node():
    x, _ = data()
    torch.manual_seed(3)
    inner = torch.nn.Linear(8, 3)
    ft.manual_seed(0)
    g = FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(inner).build()
    ps = {n: p.detach() * 2 for n, p in g.named_parameters()}
    assert list(ps) == ["linear_1/weight", "linear_1/bias", "module_3/weight", "module_3/bias"]
    want = F.linear(
        F.gelu(F.linear(x, ps["linear_1/weight"], ps["linear_1/bias"])),
        ps["module_3/weight"],
        ps["module_3/bias"],
    )
    torch.testing.assert_close(torch.func.functional_call(g, ps, (x,)), want, rtol=1e-5, atol=1e-6)
    assert torch.equal(inner.weight, g.parameters()[2])  # its own tensor again afterwards


# --- 5. torch.utils.checkpoint ------------------------------------------------------


def grads_of(params):
    out = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    return out


@pytest.mark.parametrize("reentrant", [True, False])
def test_checkpoint_with_ferrotorch_modules_and_graphs(reentrant):
    x, _ = data()
    x = x.requires_grad_()  # the reentrant mode needs an input that requires grad
    lin = Linear(4, 3)
    g = graph().eval()  # recomputation must not move running statistics twice
    for fn, params in (
        (lin, lin.parameters()),
        (g, g.parameters()),
        (lambda t: lin(torch.tanh(t)), lin.parameters()),
    ):
        (fn(x) ** 2).sum().backward()
        plain, plain_x = grads_of(params), x.grad.clone()
        x.grad = None
        (checkpoint(fn, x, use_reentrant=reentrant) ** 2).sum().backward()
        for a, b in zip(grads_of(params), plain):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(x.grad, plain_x, rtol=0, atol=0)
        x.grad = None
    # and against the torch twin
    ref = twin_of(g).eval()
    (checkpoint(ref, x, use_reentrant=reentrant) ** 2).sum().backward()
    (checkpoint(g, x, use_reentrant=reentrant) ** 2).sum().backward()
    for n, p in g.named_parameters():
        torch.testing.assert_close(p.grad, dict(ref.named_parameters())[NAMES[n]].grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reentrant", [True, False])
def test_checkpoint_sequential(reentrant):
    x, _ = data()
    x = x.requires_grad_()
    ft.manual_seed(4)
    g1 = FlowBuilder.from_(Linear(4, 8)).through(GELU()).build()
    g2 = FlowBuilder.from_(Linear(8, 8)).through(GELU()).build()
    last = Linear(8, 2)
    cases = [
        ([g1, g2, last], g1.parameters() + g2.parameters() + last.parameters()),
        (torch.nn.Sequential(g1, g2), g1.parameters() + g2.parameters()),
    ]
    for fns, params in cases:
        run = fns if isinstance(fns, torch.nn.Sequential) else (lambda t, fns=fns: fns[2](fns[1](fns[0](t))))
        run(x).sum().backward()
        plain = grads_of(params)
        x.grad = None
        checkpoint_sequential(fns, 2, x, use_reentrant=reentrant).sum().backward()
        for a, b in zip(grads_of(params), plain):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        x.grad = None


def test_an_exception_from_a_torch_hook_inside_rust_keeps_its_type():
    class Stop(Exception):
        pass

    def pack(t):
        raise Stop("from the pack hook")

    lin = Linear(4, 3)
    x = torch.randn(2, 4)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with pytest.raises(Stop, match="from the pack hook"):
            lin(x)
        with pytest.raises(Stop, match="from the pack hook"):
            graph()(x)
    # the thread's error state is clean afterwards
    assert lin(x).shape == (2, 3)
