"""One copy of each parameter and buffer: whatever replaces one in a graph's
or a layer's registry is what the Rust forward, the Trainer, an optimizer
built earlier and every checkpoint writer use next. Each path is checked by
comparing graph(x), Trainer.predict(x) and a reloaded saved file."""

import pytest
import torch
from torch.nn.utils import parametrize

import ferrotorch as ft

W = "linear_1/weight"


def _graph():
    torch.manual_seed(0)
    return (
        ft.FlowBuilder.from_(ft.nn.Linear(3, 4))
        .through(ft.nn.BatchNorm(4))
        .through(ft.nn.Tanh())
        .through(ft.nn.Linear(4, 2))
        .build()
        .eval()
    )


X = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))


def _new_weight(g):
    return torch.nn.Parameter(torch.full_like(g.state_dict()[W], 0.25))


def _replace_setattr(g):
    setattr(g, W, _new_weight(g))


def _replace_dict(g):
    g._parameters[W] = _new_weight(g)


def _replace_register(g):
    g.register_parameter(W, _new_weight(g))


def _replace_assign(g):
    sd = {k: v.clone() for k, v in g.state_dict().items()}
    sd[W] = torch.full_like(sd[W], 0.25)
    sd["batchnorm_2/running_mean"] = torch.full_like(sd["batchnorm_2/running_mean"], 0.5)
    g.load_state_dict(sd, assign=True)


def _replace_accelerate(g):
    from accelerate.utils import set_module_tensor_to_device

    set_module_tensor_to_device(g, W, "cpu", value=torch.full_like(g.state_dict()[W], 0.25))
    running = g.state_dict()["batchnorm_2/running_mean"]
    set_module_tensor_to_device(g, "batchnorm_2/running_mean", "cpu", value=torch.full_like(running, 0.5))


PATHS = {
    "setattr": _replace_setattr,
    "parameters_dict": _replace_dict,
    "register_parameter": _replace_register,
    "load_state_dict_assign": _replace_assign,
    "accelerate": _replace_accelerate,
}


def _expected(g):
    """A plain torch computation from the registry's current tensors."""
    sd = g.state_dict()
    h = torch.nn.functional.linear(X, sd[W], sd["linear_1/bias"])
    h = torch.nn.functional.batch_norm(
        h,
        sd["batchnorm_2/running_mean"],
        sd["batchnorm_2/running_var"],
        sd["batchnorm_2/weight"],
        sd["batchnorm_2/bias"],
    )
    return torch.nn.functional.linear(torch.tanh(h), sd["linear_4/weight"], sd["linear_4/bias"])


@pytest.mark.parametrize("path", sorted(PATHS))
def test_graph_replacement_reaches_forward_trainer_files_and_optimizer(path, tmp_path):
    if path == "accelerate":
        pytest.importorskip("accelerate")
    g = _graph()
    opt = ft.optim.SGD(g.parameters(), 0.1)  # built before the replacement
    PATHS[path](g)
    want = _expected(g)
    assert torch.equal(g.state_dict()[W], torch.full((4, 3), 0.25))
    torch.testing.assert_close(g(X), want, rtol=0, atol=1e-6)
    trainer = ft.Trainer(g, opt, loss="mse")
    assert torch.equal(trainer.predict(X), g(X).detach())
    g.save_checkpoint(str(tmp_path / "g.fdl"))
    ft.checkpoint.save_safetensors(g, str(tmp_path / "g.safetensors"))
    for load in (
        lambda h: h.load_checkpoint(str(tmp_path / "g.fdl")),
        lambda h: ft.checkpoint.load_safetensors(str(tmp_path / "g.safetensors"), h),
    ):
        h = _graph()
        load(h)
        assert torch.equal(h(X), g(X))
    # The optimizer built earlier trains the tensor now in the registry.
    new = g.state_dict(keep_vars=True)[W]
    g.train()
    opt.zero_grad()
    g(X).square().sum().backward()
    assert new.grad is not None
    before = new.detach().clone()
    opt.step()
    assert not torch.equal(new.detach(), before)
    assert g.parameters()[0] is new


def test_graph_parametrize_is_honoured():
    g = _graph()

    class Double(torch.nn.Module):
        def forward(self, w):
            return 2 * w

    w0 = g.state_dict()[W].clone()
    parametrize.register_parametrization(g, W, Double())
    expected = torch.nn.functional.linear(X, 2 * w0, g.state_dict()["linear_1/bias"])
    assert any(k.startswith("parametrizations.") for k in g.state_dict())  # torch keeps the original there
    torch.testing.assert_close(g(X), _expected_with(g, expected), rtol=0, atol=1e-6)


def _expected_with(g, first):
    sd = g.state_dict()
    h = torch.nn.functional.batch_norm(
        first,
        sd["batchnorm_2/running_mean"],
        sd["batchnorm_2/running_var"],
        sd["batchnorm_2/weight"],
        sd["batchnorm_2/bias"],
    )
    return torch.nn.functional.linear(torch.tanh(h), sd["linear_4/weight"], sd["linear_4/bias"])


def test_graph_to_new_storage_and_functional_call_keep_one_copy():
    g = _graph()
    w = g.state_dict(keep_vars=True)[W]
    g.to(torch.float64)
    assert g.state_dict(keep_vars=True)[W] is w and w.dtype == torch.float64
    assert g(X.double()).dtype == torch.float64
    g.to(torch.float32)
    sub = {W: torch.zeros(4, 3)}
    out = torch.func.functional_call(g, sub, (X,))
    assert torch.equal(
        out, _expected_with(g, torch.nn.functional.linear(X, sub[W], g.state_dict()["linear_1/bias"]))
    )
    assert g.state_dict(keep_vars=True)[W] is w  # functional_call restores, nothing adopted


@pytest.mark.parametrize("path", ["setattr", "register_parameter", "load_state_dict_assign"])
def test_layer_replacement_reaches_forward_graphs_and_optimizer(path):
    lin = ft.nn.Linear(3, 2)
    opt = ft.optim.SGD(lin.parameters(), 0.1)
    new = torch.nn.Parameter(torch.full((2, 3), 0.5))
    if path == "setattr":
        lin.weight = new
    elif path == "register_parameter":
        lin.register_parameter("weight", new)
    else:
        lin.load_state_dict({"weight": new.detach().clone(), "bias": lin.bias.detach().clone()}, assign=True)
        new = lin.weight
    want = torch.nn.functional.linear(X, new, lin.bias)
    assert torch.equal(lin(X), want)
    g = ft.FlowBuilder.from_(lin).build()  # a graph built afterwards runs the Rust layer on the new tensor
    assert g.node_ids() == ["linear_1"] and torch.equal(g(X), want)
    opt.zero_grad()
    lin(X).sum().backward()
    before = new.detach().clone()
    opt.step()
    assert not torch.equal(new.detach(), before)


def test_layer_parametrize_is_honoured():
    lin = ft.nn.Linear(3, 2)

    class Double(torch.nn.Module):
        def forward(self, w):
            return 2 * w

    w0 = lin.weight.detach().clone()
    parametrize.register_parametrization(lin, "weight", Double())
    assert torch.equal(lin(X), torch.nn.functional.linear(X, 2 * w0, lin.bias))
