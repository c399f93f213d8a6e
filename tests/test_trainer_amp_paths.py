"""``Trainer(amp=torch.bfloat16)`` applies on every step path (CPU autocast):
``fit`` (a ferrotorch DataLoader and any iterable), ``step(x, y)`` and
``step(closure)`` run the forward under autocast, seen by a forward hook
recording the dtype a torch Linear produces inside the model, and train
exactly as the hand-written ``torch.autocast`` loop; ``step_loss`` raises
``ConfigError`` (its forward ran before the call, where amp cannot apply)."""

import copy

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.nn import Linear

AMP = torch.bfloat16


def _hooked(module, seen):
    module.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    return module


def _torch_model(seen):
    torch.manual_seed(0)
    return torch.nn.Sequential(_hooked(torch.nn.Linear(4, 8), seen), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _data(n=4):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(6, 4, generator=g), torch.randn(6, 3, generator=g)) for _ in range(n)]


def _reference(model, data, closure_style=False):
    """The torch loop: forward (and, as a closure holds it, the loss) under
    torch.autocast; the loss on the float32 output."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for x, y in data:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=AMP):
            out = model(x)
            if closure_style:
                loss = F.mse_loss(out, y)
        if not closure_style:
            loss = F.mse_loss(out.float(), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _same(a, b):
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("path", ["fit_loader", "fit_iterable", "step_xy", "step_closure"])
def test_torch_model_runs_under_autocast_on_every_path(path):
    seen, ref_seen = [], []
    model = _torch_model(seen)
    ref = _torch_model(ref_seen)
    data = _data()
    tr = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss="mse", amp=AMP)
    if path == "fit_loader":
        x, y = torch.cat([d[0] for d in data]), torch.cat([d[1] for d in data])
        got = tr.fit(DataLoader((x, y), 6, shuffle=False), epochs=1).step_losses
    elif path == "fit_iterable":
        got = tr.fit(data, epochs=1).step_losses
    elif path == "step_xy":
        got = [tr.step(x, y) for x, y in data]
    else:
        got = [tr.step(lambda x=x, y=y: F.mse_loss(model(x), y)) for x, y in data]
    assert seen == [AMP] * 4
    want = _reference(ref, data, closure_style=path == "step_closure")
    assert ref_seen == [AMP] * 4
    assert got == want
    _same(model, ref)


def test_without_amp_the_same_paths_stay_float32():
    seen = []
    model = _torch_model(seen)
    tr = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss="mse")
    x, y = _data(1)[0]
    tr.step(x, y)
    tr.step(lambda: F.mse_loss(model(x), y))
    tr.step_loss(F.mse_loss(model(x), y))
    assert seen == [torch.float32] * 3


@pytest.mark.parametrize("path", ["fit_loader", "step_xy", "step_closure"])
def test_ferrotorch_graph_with_a_torch_node_runs_under_autocast(path):
    """The Rust step (a ferrotorch graph) and the closure step hold the same
    autocast region: the torch node inside the graph sees bfloat16."""
    seen, ref_seen = [], []

    def build(rec):
        torch.manual_seed(0)
        node = _hooked(torch.nn.Linear(8, 3), rec)
        return FlowBuilder.from_(Linear(4, 8)).through(node).build()

    g, g2 = build(seen), build(ref_seen)
    data = _data()
    tr = Trainer(g, ft.optim.SGD(g.parameters(), 0.1), loss="mse", amp=AMP)
    if path == "fit_loader":
        x, y = torch.cat([d[0] for d in data]), torch.cat([d[1] for d in data])
        tr.fit(DataLoader((x, y), 6, shuffle=False), epochs=1)
    elif path == "step_xy":
        for x, y in data:
            tr.step(x, y)
    else:
        for x, y in data:
            tr.step(lambda x=x, y=y: F.mse_loss(g(x), y))
    assert seen == [AMP] * 4
    # The same graph stepped by hand under torch.autocast.
    opt = ft.optim.SGD(g2.parameters(), 0.1)
    for x, y in data:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=AMP):
            out = g2(x)
            if path == "step_closure":
                loss = F.mse_loss(out, y)
        if path != "step_closure":
            loss = F.mse_loss(out.float(), y)
        loss.backward()
        opt.step()
        g2.end_step()
    assert ref_seen == [AMP] * 4
    _same(g, g2)


def test_hf_style_dict_batch_runs_its_own_loss_under_autocast():
    """loss=None: the model's own loss is computed inside its forward, so
    under autocast, as Hugging Face's Trainer(bf16=True) runs it."""
    seen = []

    class WithLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.lin = _hooked(torch.nn.Linear(4, 3), seen)

        def forward(self, x, labels=None):
            logits = self.lin(x)
            out = {"logits": logits}
            if labels is not None:
                out["loss"] = F.cross_entropy(logits, labels)
            return out

    model = WithLoss()
    ref = copy.deepcopy(model)
    g = torch.Generator().manual_seed(2)
    batches = [
        {"x": torch.randn(5, 4, generator=g), "labels": torch.randint(0, 3, (5,), generator=g)}
        for _ in range(3)
    ]
    tr = Trainer(model, torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True), loss=None, amp=AMP)
    got = tr.fit(batches, epochs=1).step_losses
    assert seen == [AMP] * 3
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, fused=True)
    want = []
    for b in batches:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=AMP):
            loss = ref(**b)["loss"]
        loss.backward()
        opt.step()
        want.append(loss.item())
    assert got == want
    _same(model, ref)


def test_loss_callable_on_a_structured_output_sees_float32():
    """The loss runs outside autocast on the output's tensors cast to float32."""
    dtypes = []

    class Out(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, x):
            return (self.lin(x), x)

    def loss_fn(out, y):
        dtypes.append((out[0].dtype, torch.is_autocast_enabled("cpu")))
        return F.mse_loss(out[0], y)

    model = Out()
    tr = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss=loss_fn, amp=AMP)
    x, y = _data(1)[0]
    tr.step(x, y)
    assert dtypes == [(torch.float32, False)]


def test_step_loss_refuses_amp():
    seen = []
    model = _torch_model(seen)
    tr = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss="mse", amp=AMP)
    x, y = _data(1)[0]
    with pytest.raises(
        ft.ConfigError, match=r"step_loss: amp=torch.bfloat16 cannot apply to a forward that already ran"
    ):
        tr.step_loss(F.mse_loss(model(x), y))
    assert tr.global_step == 0
    assert all(p.grad is None for p in model.parameters())  # no backward ran
