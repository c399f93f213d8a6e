"""A built graph's module tree: each node's module is a child of the graph
under its floDl name, while the graph's state stays one flat table by floDl
name (issue 25, item 3)."""

import copy

import pytest
import torch
from torch.nn.utils import parametrize

import ferrotorch as ft
from ferrotorch import FlowBuilder
from ferrotorch.nn import GELU, Dropout, LayerNorm, Linear


class Doubled(Linear):
    """A subclass with its own forward: a Python node."""

    def forward(self, x):
        return 2 * super().forward(x)


def _net():
    torch.manual_seed(0)
    parts = {
        "first": Linear(3, 4),
        "inner_lin": Linear(4, 4),
        "inner_gelu": GELU(),
        "drop": Dropout(0.5),
        "torch_lin": torch.nn.Linear(4, 4),
        "doubled": Doubled(4, 4),
        "out": Linear(4, 2),
    }
    inner = FlowBuilder.from_(parts["inner_lin"]).through(parts["inner_gelu"]).build()
    g = (
        FlowBuilder.from_(parts["first"])
        .also(inner)
        .through(parts["drop"])
        .through(parts["torch_lin"])
        .through(lambda t: t + 1)  # a function node: not a module
        .through(parts["doubled"])
        .through(parts["out"])
        .tag("head")
        .build()
    )
    return g, inner, parts


X = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))


def test_named_modules_are_the_nodes_modules_under_flodl_names():
    g, inner, p = _net()
    prefixes = {n.split("/")[0] for n, _ in g.named_parameters()}
    tree = dict(g.named_modules())
    assert list(tree) == [
        "",
        "linear_1",
        "graph_2",
        "graph_2.linear_1",
        "graph_2.gelu_2",
        "dropout_4",
        "module_5",
        "module_7",
        "head",
    ]
    assert tree[""] is g and tree["graph_2"] is inner
    assert tree["linear_1"] is p["first"] and tree["graph_2.linear_1"] is p["inner_lin"]
    assert tree["module_5"] is p["torch_lin"] and tree["module_7"] is p["doubled"]
    assert tree["head"] is p["out"]
    # the names are the parameters' prefixes (a node's first tag, else its id)
    assert {n.split(".")[0] for n in tree if n} >= prefixes
    assert [n for n, _ in g.named_children()] == [
        "linear_1",
        "graph_2",
        "dropout_4",
        "module_5",
        "module_7",
        "head",
    ]
    assert list(g.children()) == [tree[n] for n, _ in g.named_children()]
    assert list(g.modules()) == list(tree.values())


def test_get_submodule_returns_the_layer_the_graph_was_built_from():
    g, inner, p = _net()
    assert g.get_submodule("") is g
    assert g.get_submodule("graph_2.gelu_2") is p["inner_gelu"]
    assert g.get_submodule("head") is p["out"]
    assert g.head is p["out"]
    with pytest.raises(AttributeError, match="nothing"):
        g.get_submodule("nothing")
    with pytest.raises(AttributeError):
        g.get_submodule("graph_2.nothing")


def test_composite_nodes_hold_their_parts_in_order():
    router, experts = ft.SoftmaxRouter(4, 2), [Linear(4, 4), Linear(4, 4)]
    body = Linear(4, 4)
    g = (
        FlowBuilder.from_(Linear(3, 4))
        .gate(router, experts)
        .loop_body(FlowBuilder.from_(body).build())
        .for_n(2)
        .build()
    )
    tree = dict(g.named_modules())
    gate = [n for n in tree if n.startswith("gate_")][0]
    assert tree[f"{gate}.0"] is router
    assert [tree[f"{gate}.1"], tree[f"{gate}.2"]] == experts
    loop = [n for n in tree if n.startswith("loop_")][0]
    assert tree[f"{loop}.0.linear_1"] is body
    # every parameter of the tree is one of the graph's, and none is missing
    own = {id(t) for t in g.parameters()}
    assert {id(t) for m in g.modules() for t in m._parameters.values() if t is not None} == own


def test_state_stays_one_flat_table_by_flodl_name():
    g, _, _ = _net()
    keys = list(g.state_dict())
    assert keys == [n for n, _ in g.named_parameters()] + [n for n, _ in g.named_buffers()]
    assert all("/" in k for k in keys)
    assert len(g.named_buffers(remove_duplicate=False)) == len(g.named_buffers())
    holder = torch.nn.Sequential(g)
    sd = holder.state_dict()
    assert list(sd) == ["0." + k for k in keys]
    assert len(list(holder.parameters())) == len(g.parameters())
    assert [n for n, _ in holder.named_parameters()] == ["0." + n for n, _ in g.named_parameters()]
    changed = {k: v + 1 for k, v in sd.items()}
    result = holder.load_state_dict(changed)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert all(torch.equal(g.state_dict()[k], changed["0." + k]) for k in keys)


def test_train_and_eval_reach_every_child():
    g, inner, p = _net()
    g.eval()
    assert [m.training for m in g.modules()] == [False] * 9
    torch.nn.Sequential(g).train()
    assert all(m.training for m in g.modules())
    assert p["drop"].training and inner.training


def test_apply_reaches_the_rust_forward():
    g, _, p = _net()

    def zero_ft_linears(m):
        if isinstance(m, Linear):
            with torch.no_grad():
                m.weight.zero_()

    g.eval().apply(zero_ft_linears)
    assert torch.equal(g.state_dict()["head/weight"], torch.zeros(2, 4))
    # the last layer's weight is zero: the output is its bias
    assert torch.equal(g(X), p["out"].bias.detach().expand(5, 2))


def test_functional_call_by_tree_path_equals_by_flodl_name():
    g, _, p = _net()
    g.eval()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    w = torch.full((4, 3), 0.5)
    by_path = torch.func.functional_call(g, {"linear_1.weight": w}, (X,))
    by_name = torch.func.functional_call(g, {"linear_1/weight": w}, (X,))
    assert torch.equal(by_path, by_name)
    # the same as changing the weight for real
    with torch.no_grad():
        p["first"].weight.copy_(w)
    assert torch.equal(by_path, g(X))
    with torch.no_grad():
        p["first"].weight.copy_(before["linear_1/weight"])
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())
    assert not torch.equal(g(X), by_path)


def test_parametrize_on_a_child_is_honoured_or_refused():
    g, _, p = _net()
    g.eval()

    class Zero(torch.nn.Module):
        def forward(self, w):
            return torch.zeros_like(w)

    ref = g(X)
    parametrize.register_parametrization(p["out"], "weight", Zero())
    y = g(X)
    assert torch.equal(y, p["out"].bias.detach().expand(5, 2))
    assert not torch.equal(y, ref)
    with pytest.raises(ft.ConfigError, match=r"head\.weight"):
        ft.Trainer(g, ft.optim.SGD(g.parameters(), 0.1), loss="mse")
    parametrize.remove_parametrizations(p["out"], "weight")  # keeps the zero weight as a new Parameter
    trainer = ft.Trainer(g, ft.optim.SGD(g.parameters(), 0.1), loss="mse")
    assert torch.equal(trainer.predict(X), y.detach())
    assert torch.equal(g.state_dict()["head/weight"], torch.zeros(2, 4))


def test_a_copy_has_its_own_tree():
    g = FlowBuilder.from_(Linear(3, 4)).through(LayerNorm(4)).through(Linear(4, 2)).build()
    c = copy.deepcopy(g)
    names = [n for n, _ in g.named_modules()]
    assert [n for n, _ in c.named_modules()] == names
    for n in names[1:]:
        a, b = g.get_submodule(n), c.get_submodule(n)
        assert type(a) is type(b) and a is not b
    with torch.no_grad():
        c.get_submodule("linear_1").weight.add_(1)
    assert not torch.equal(c(X), g(X))
    assert torch.equal(c.state_dict()["linear_1/weight"], g.state_dict()["linear_1/weight"] + 1)
