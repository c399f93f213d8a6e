"""ferrotorch optimizers behave as torch.optim optimizers where torch's
machinery looks: re-classing wrappers, step hooks, closures, zero_grad modes,
named parameters, torch schedulers' step tracking and torch.compile."""

import logging
import warnings

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _batch(i):
    g = torch.Generator().manual_seed(i)
    return torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g)


def test_plain_python_subclass_that_wrappers_can_reclass():
    opt = ft.optim.Adam(_net().parameters(), 1e-2)
    assert isinstance(opt, torch.optim.Optimizer)
    assert all(not k.__module__.startswith("ferrotorch._core") for k in type(opt).__mro__)

    class Wrapper:  # what Lightning's LightningOptimizer and Fabric's _FabricOptimizer do
        def __init__(self, o):
            self.__dict__ = {k: v for k, v in o.__dict__.items() if k != "step"}
            self.__class__ = type("Wrapped" + type(o).__name__, (type(self), type(o)), {})
            self._inner = o

    w = Wrapper(opt)
    assert isinstance(w, ft.optim.Adam)
    assert w.param_groups[0]["lr"] == 1e-2
    w.param_groups[0]["lr"] = 0.5  # the views write through to the one Rust optimizer
    assert opt.lr == 0.5


def test_step_hooks_closure_and_zero_grad_modes():
    net = _net()
    opt = ft.optim.SGD(net.parameters(), 0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", o is opt)))
    opt.register_step_post_hook(lambda o, a, k: calls.append(("post", o is opt)))
    x, y = _batch(0)

    def closure():
        opt.zero_grad()
        loss = F.mse_loss(net(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    assert calls == [("pre", True), ("post", True)]
    closure()
    grads = [p.grad for p in net.parameters()]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(net.parameters(), grads):
        assert p.grad is g and not p.grad.any()  # zeroed in place, as torch
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_named_parameters_and_group_dicts_of_named_parameters():
    a, b = _net(), _net()
    mine = ft.optim.Adam(a.named_parameters(), 1e-2, implementation="fused")
    ref = torch.optim.Adam(b.named_parameters(), 1e-2, fused=True)
    assert mine.param_groups[0]["param_names"] == ref.param_groups[0]["param_names"]
    assert (
        mine.state_dict()["param_groups"][0]["param_names"]
        == ref.state_dict()["param_groups"][0]["param_names"]
    )
    for i in range(3):
        x, y = _batch(i)
        for net, opt in ((a, mine), (b, ref)):
            opt.zero_grad()
            F.mse_loss(net(x), y).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def _no_sched_warning(caught):
    return not [w for w in caught if "lr_scheduler.step()" in str(w.message)]


def test_trainer_updates_count_for_torch_schedulers():
    """The engine's update is the optimizer step torch's scheduler tracks: no
    'lr_scheduler.step() before optimizer.step()' warning, and torch's counters."""
    net = _net()
    opt = ft.optim.SGD(net.parameters(), 0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
    x, y = _batch(0)
    trainer = ft.Trainer(net, opt, loss="mse", scheduler=sched)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(ft.data.DataLoader((x, y), batch_size=4), epochs=3)
    assert _no_sched_warning(caught)
    assert opt._opt_called is True
    assert sched.last_epoch == 3 and sched._step_count == 4  # as torch keeps them
    assert sched.get_last_lr() == [0.1 * 0.5**3]


def test_fused_grad_scaler_step_counts_for_torch_schedulers():
    net = _net()
    opt = ft.optim.Adam(net.parameters(), 1e-2, implementation="fused")
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
    scaler = ft.GradScaler()
    x, y = _batch(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt.zero_grad()
        scaler.scale(F.mse_loss(net(x), y)).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
    assert _no_sched_warning(caught)


def test_python_step_counts_for_torch_schedulers():
    net = _net()
    opt = ft.optim.Adam(net.parameters(), 1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y = _batch(0)
        F.mse_loss(net(x), y).backward()
        opt.step()
        sched.step()
    assert _no_sched_warning(caught)
    # Stepping the scheduler first still warns, as torch does.
    opt2 = ft.optim.Adam(_net().parameters(), 1e-2)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1, 0.5)
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        sched2.step()


def test_torch_compile_of_a_train_step_is_clean_and_equal(caplog):
    """The optimizer's step and zero_grad are an intended graph break: no
    warning, no log line from Dynamo, and the losses of the eager run."""

    def run(compiled):
        net = _net()
        opt = ft.optim.Adam(net.parameters(), 1e-2)

        def train_step(x, y):
            opt.zero_grad()
            loss = F.mse_loss(net(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = torch.compile(train_step, backend="aot_eager") if compiled else train_step
        return [fn(*_batch(i)).item() for i in range(3)], net

    torch._dynamo.reset()
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled, a = run(True)
    eager, b = run(False)
    assert not [w for w in caught if "ynamo" in str(w.message) or "trace" in str(w.message)], caught
    assert not [r for r in caplog.records if r.name.startswith("torch")], caplog.records
    assert compiled == eager
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
