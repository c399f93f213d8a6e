"""Graph's torch-module surface: repr as torch's module tree with floDl node
ids, named_parameters with torch's keywords."""

import torch

from ferrotorch import FlowBuilder
from ferrotorch.nn import GELU, LayerNorm, Linear


def _graph():
    torch.manual_seed(0)
    return (
        FlowBuilder.from_(Linear(2, 16))
        .through(GELU())
        .through(LayerNorm(16))
        .also(Linear(16, 16))
        .tag("hidden")
        .through(Linear(16, 2))
        .build()
    )


def test_repr_is_a_module_tree_with_node_ids():
    g = _graph()
    text = repr(g)
    lines = text.splitlines()
    assert lines[0] == "Graph(" and lines[-1] == ")"
    body = lines[1:-1]
    assert len(body) == 6  # one line per node, as torch prints one per child
    assert body[0] == "  (linear_1): Linear(2 -> 16)"
    assert all(line.startswith("  (") and "): " in line for line in body)
    inner = FlowBuilder.from_(Linear(2, 2)).label("enc").build()
    outer = FlowBuilder.from_(inner).through(Linear(2, 1)).build()
    nested = repr(outer).splitlines()
    assert nested[1].endswith("Graph 'enc'(") and nested[2].startswith("    (linear_1)")
    # torch's layout: a torch container holding the graph indents its tree as a child's
    seq = repr(torch.nn.Sequential(g)).splitlines()
    assert seq == ["Sequential(", "  (0): Graph("] + ["  " + line for line in lines[1:]] + [")"]


def test_named_parameters_takes_torch_keywords():
    g = _graph()
    plain = g.named_parameters()
    prefixed = g.named_parameters(prefix="model")
    # torch's own prefixing, through a torch container holding the graph
    held = torch.nn.ModuleDict({"model": g}).named_parameters()
    assert [n for n, _ in prefixed] == [n for n, _ in held]
    assert [n for n, _ in prefixed] == ["model." + n for n, _ in plain]
    assert all(a is b or a.data_ptr() == b.data_ptr() for (_, a), (_, b) in zip(plain, prefixed))
    assert g.named_parameters(recurse=False) == []  # a container owns none itself, as torch
    assert len(g.named_parameters(remove_duplicate=False)) == len(plain)
    lin = Linear(3, 2)
    assert [n for n, _ in lin.named_parameters(prefix="fc")] == ["fc.weight", "fc.bias"]
    assert [n for n, _ in torch.nn.ModuleDict({"fc": lin}).named_parameters()] == ["fc.weight", "fc.bias"]
