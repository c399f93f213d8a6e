"""Trainer with torch pieces: a torch.nn.Module model, a torch.optim
optimizer and torch lr schedulers run through the engine (GIL path) and
train exactly as the equivalent hand-written torch loop."""

import copy

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.nn import GELU, Linear


def _torch_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _data(n=6):
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)) for _ in range(n)]


def _reference(model, make_opt, make_sched, data, epochs, clip=None):
    opt = make_opt(model.parameters())
    sched = make_sched(opt) if make_sched else None
    losses, lrs = [], []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        for x, y in data:
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            losses.append(loss.item())
        if sched is not None:
            sched.step()
    return losses, lrs


@pytest.mark.parametrize("opt_kind", ["torch", "ferrotorch"])
def test_torch_module_trains_as_a_torch_loop(opt_kind):
    data = _data()
    make = (
        (lambda ps: torch.optim.Adam(ps, 0.01))
        if opt_kind == "torch"
        else (lambda ps: ft.optim.Adam(ps, 0.01))
    )
    ref_model = _torch_model()
    ref, _ = _reference(ref_model, lambda ps: torch.optim.Adam(ps, 0.01), None, data, 2, clip=0.5)
    model = _torch_model()
    trainer = Trainer(model, make(list(model.parameters())), loss="mse", clip_grad_norm=0.5)
    hist = trainer.fit(data, epochs=2)
    torch.testing.assert_close(torch.tensor(hist.step_losses), torch.tensor(ref), rtol=1e-5, atol=1e-6)
    for p, q in zip(model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make_sched",
    [
        lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 3),
    ],
)
@pytest.mark.parametrize("opt_cls", [torch.optim.SGD, ft.optim.SGD])
def test_torch_schedulers_in_the_trainer(make_sched, opt_cls):
    data = _data(3)
    ref_model = _torch_model()
    ref, lrs = _reference(
        ref_model, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), make_sched, data, 3
    )
    model = _torch_model()
    opt = opt_cls(list(model.parameters()), lr=0.1, momentum=0.9)
    trainer = Trainer(model, opt, loss="mse", scheduler=make_sched(opt))
    hist = trainer.fit(data, epochs=3)
    torch.testing.assert_close(torch.tensor(hist.step_losses), torch.tensor(ref), rtol=1e-5, atol=1e-6)
    assert [e["lr"] for e in hist.epochs_logs] == pytest.approx(lrs)  # the lr each epoch ran with


def test_graph_with_torch_optimizer_equals_ferrotorch_optimizer():
    data = _data(4)

    def graph():
        torch.manual_seed(1)
        return FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(Linear(8, 2)).build()

    g1, g2 = graph(), graph()
    Trainer(g1, torch.optim.AdamW(g1.parameters(), 0.01), loss="mse").fit(data, epochs=2)
    Trainer(g2, ft.optim.AdamW(g2.parameters(), 0.01), loss="mse").fit(data, epochs=2)
    for p, q in zip(g1.parameters(), g2.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_torch_optimizer_with_grad_scaler_and_state_resume(tmp_path):
    data = _data(4)
    model = _torch_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, opt, loss="mse", scaler=ft.GradScaler(init_scale=2.0**8))
    trainer.fit(data[:2], epochs=1)
    ref_model = copy.deepcopy(model)
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.05, momentum=0.9)
    ref_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    trainer.fit(data[2:], epochs=1)
    for x, y in data[2:]:
        ref_opt.zero_grad()
        F.mse_loss(ref_model(x), y).backward()
        ref_opt.step()
    for p, q in zip(model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_non_optimizer_is_refused():
    model = _torch_model()
    with pytest.raises(ft.InputTypeError, match="torch.optim"):
        Trainer(model, object(), loss="mse")
