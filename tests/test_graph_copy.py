"""A graph built by FlowBuilder copies and pickles (its recipe is replayed over
copies of its modules), so torch's AveragedModel / SWA and timm's EMA wrap it."""

import copy
import pickle

import pytest
import torch
from torch.optim.swa_utils import SWALR, AveragedModel

import ferrotorch as ft


def _graph():
    torch.manual_seed(0)
    return (
        ft.FlowBuilder.from_(ft.nn.Linear(4, 8))
        .through(ft.nn.GELU())
        .through(ft.nn.BatchNorm(8))
        .also(ft.nn.Linear(8, 8))
        .tag("h")
        .gate(ft.SoftmaxRouter(8, 2), [ft.nn.Linear(8, 8), ft.nn.Linear(8, 8)])
        .loop_body(ft.nn.Tanh())
        .for_n(2)
        .split([ft.nn.Linear(8, 2), ft.nn.Linear(8, 2)])
        .merge(ft.MergeOp.MEAN)
        .build()
    )


X = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copy_is_the_same_graph_with_its_own_tensors(how):
    g = _graph()
    g(X)  # BatchNorm statistics moved
    state = torch.random.get_rng_state()
    c = copy.deepcopy(g) if how == "deepcopy" else pickle.loads(pickle.dumps(g))
    assert torch.equal(torch.random.get_rng_state(), state)  # a copy draws no random numbers
    assert type(c) is ft.Graph and c.node_ids() == g.node_ids() and c.structural_hash() == g.structural_hash()
    for (k, v), (k2, v2) in zip(g.state_dict().items(), c.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2) and v.data_ptr() != v2.data_ptr()
    g.eval(), c.eval()
    assert torch.equal(c(X), g(X))
    with torch.no_grad():
        c.parameters()[0].add_(1.0)
    assert not torch.equal(c(X), g(X))  # independent


def test_a_copy_of_a_torch_module_holding_a_graph():
    holder = torch.nn.Sequential(torch.nn.Linear(3, 4), _graph())
    c = copy.deepcopy(holder).eval()
    holder.eval()
    x = torch.randn(2, 3)
    assert torch.equal(c(x), holder(x))


def test_a_graph_without_a_recipe_refuses_with_a_clear_error():
    g = ft.FlowBuilder.from_(ft.nn.Linear(2, 2)).label("enc").build()
    outer = ft.FlowBuilder.from_(g).through(ft.nn.Linear(2, 2)).build()
    child = outer.subgraph("enc")
    with pytest.raises(ft.InputTypeError, match="not built by ferrotorch.FlowBuilder"):
        copy.deepcopy(child)


def test_averaged_model_and_swa_over_a_graph():
    g = _graph()
    avg = AveragedModel(g)
    opt = ft.optim.SGD(g.parameters(), 0.05)
    sched = SWALR(opt, swa_lr=0.01)
    snapshots = []
    for _ in range(3):
        opt.zero_grad()
        g(X).square().mean().backward()
        opt.step()
        sched.step()
        avg.update_parameters(g)
        snapshots.append([p.detach().clone() for p in g.parameters()])
    want = [torch.stack(ps).mean(0) for ps in zip(*snapshots)]
    for a, w in zip(avg.module.parameters(), want):
        torch.testing.assert_close(a, w, rtol=1e-6, atol=1e-7)
    avg.module.eval()
    assert avg(X).shape == (6, 2)


def test_timm_ema_over_a_graph():
    timm_utils = pytest.importorskip("timm.utils")
    g = _graph()
    ema = timm_utils.ModelEmaV3(g, decay=0.5)
    opt = ft.optim.Adam(g.parameters(), 0.05)
    expected = [p.detach().clone() for p in g.parameters()]
    for _ in range(3):
        opt.zero_grad()
        g(X).square().mean().backward()
        opt.step()
        ema.update(g)
        expected = [0.5 * e + 0.5 * p.detach() for e, p in zip(expected, g.parameters())]
    for a, e in zip(ema.module.parameters(), expected):
        torch.testing.assert_close(a, e, rtol=1e-6, atol=1e-7)
