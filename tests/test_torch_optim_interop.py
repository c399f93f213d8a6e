"""ferrotorch optimizers are torch.optim.Optimizers: torch's lr schedulers
drive them value by value as they drive torch's own optimizers, and
ferrotorch's cyclic schedulers cycle momentum / beta1 exactly as torch's."""

import pytest
import torch

import ferrotorch as ft
from ferrotorch import sched as fsched

LRS = torch.optim.lr_scheduler


def _pair(kind, **kw):
    torch.manual_seed(0)
    w0 = [torch.randn(5, 3), torch.randn(3)]
    a = [torch.nn.Parameter(t.clone()) for t in w0]
    b = [torch.nn.Parameter(t.clone()) for t in w0]
    ours = getattr(ft.optim, kind)(a, **kw)
    theirs = getattr(torch.optim, kind)(b, **kw)
    return a, ours, b, theirs


def _grads(ps, k):
    g = torch.Generator().manual_seed(k)
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g)


def _group_vals(opt):
    out = []
    for g in opt.param_groups:
        d = {k: v for k, v in g.items() if k in ("lr", "momentum", "betas", "initial_lr")}
        out.append(d)
    return out


def _run(a, ours, b, theirs, make, steps, per_step_metric=None):
    s1, s2 = make(ours), make(theirs)
    assert _group_vals(ours) == _group_vals(theirs)
    for k in range(steps):
        _grads(a, k)
        _grads(b, k)
        ours.step()
        theirs.step()
        if per_step_metric is None:
            s1.step()
            s2.step()
        else:
            s1.step(per_step_metric(k))
            s2.step(per_step_metric(k))
        assert _group_vals(ours) == _group_vals(theirs), k
        assert s1.get_last_lr() == s2.get_last_lr() if hasattr(s2, "get_last_lr") else True
        for p, q in zip(a, b):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    return s1, s2


def test_is_a_torch_optimizer():
    w = torch.nn.Parameter(torch.ones(2))
    for cls in (ft.optim.SGD, ft.optim.Adam, ft.optim.AdamW, ft.optim.RMSprop):
        o = cls([w], 0.1)
        assert isinstance(o, torch.optim.Optimizer)
        assert o.defaults["lr"] == 0.1


SCHEDULERS = [
    ("StepLR", lambda o: LRS.StepLR(o, 3, gamma=0.5)),
    ("MultiStepLR", lambda o: LRS.MultiStepLR(o, [2, 5, 9], gamma=0.3)),
    ("ExponentialLR", lambda o: LRS.ExponentialLR(o, 0.9)),
    ("CosineAnnealingLR", lambda o: LRS.CosineAnnealingLR(o, 10, eta_min=1e-4)),
    ("CosineAnnealingWarmRestarts", lambda o: LRS.CosineAnnealingWarmRestarts(o, 4, T_mult=2)),
    ("LinearLR", lambda o: LRS.LinearLR(o, 0.1, 1.0, total_iters=6)),
    ("PolynomialLR", lambda o: LRS.PolynomialLR(o, total_iters=8, power=2.0)),
    ("LambdaLR", lambda o: LRS.LambdaLR(o, lambda e: 1.0 / (1 + e))),
    ("OneCycleLR", lambda o: LRS.OneCycleLR(o, 0.5, total_steps=25)),
    ("CyclicLR", lambda o: LRS.CyclicLR(o, 0.01, 0.2, step_size_up=4)),
    (
        "SequentialLR",
        lambda o: LRS.SequentialLR(
            o, [LRS.LinearLR(o, 0.2, total_iters=3), LRS.ExponentialLR(o, 0.8)], milestones=[3]
        ),
    ),
]


@pytest.mark.parametrize("name,make", SCHEDULERS, ids=[n for n, _ in SCHEDULERS])
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_torch_schedulers_drive_ferrotorch_optimizers_as_torch_ones(name, make, kind):
    kw = dict(lr=0.1, momentum=0.9) if kind == "SGD" else dict(lr=0.1)
    a, ours, b, theirs = _pair(kind, **kw)
    _run(a, ours, b, theirs, make, 25)


def test_reduce_on_plateau_from_torch():
    a, ours, b, theirs = _pair("SGD", lr=0.1, momentum=0.5)
    metric = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8] * 2
    _run(
        a,
        ours,
        b,
        theirs,
        lambda o: LRS.ReduceLROnPlateau(o, patience=1, factor=0.5),
        20,
        lambda k: metric[k],
    )


def test_torch_scheduler_state_round_trip_through_optimizer_state_dict():
    a, ours, _, _ = _pair("SGD", lr=0.1)
    s = LRS.OneCycleLR(ours, 0.5, total_steps=30)
    for _ in range(5):
        _grads(a, 0)
        ours.step()
        s.step()
    sd, ssd = ours.state_dict(), s.state_dict()
    assert sd["param_groups"][0]["initial_lr"] == pytest.approx(0.02)
    c = [torch.nn.Parameter(p.detach().clone()) for p in a]
    fresh = ft.optim.SGD(c, lr=0.1)
    fresh.load_state_dict(sd)
    s2 = LRS.OneCycleLR(fresh, 0.5, total_steps=30, last_epoch=4)
    s2.load_state_dict(ssd)
    for _ in range(3):
        for ps, o, sc in ((a, ours, s), (c, fresh, s2)):
            _grads(ps, 1)
            o.step()
            sc.step()
        assert _group_vals(ours) == _group_vals(fresh)


def test_step_closure_returns_loss():
    w = torch.nn.Parameter(torch.ones(2))
    o = ft.optim.SGD([w], 0.1)

    def closure():
        o.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert o.step(closure).item() == 2.0
    torch.testing.assert_close(w.detach(), torch.full((2,), 0.8))


# ---------------------------------------------- ferrotorch's cyclic schedulers


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "RMSprop", "NAdam"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_ferrotorch_one_cycle_cycles_momentum_as_torch(kind, three_phase):
    kw = dict(lr=0.1, momentum=0.9) if kind in ("SGD", "RMSprop") else dict(lr=0.1)
    a, ours, b, theirs = _pair(kind, **kw)
    ours_s = fsched.OneCycleLR(ours, 0.4, total_steps=40, three_phase=three_phase)
    theirs_s = LRS.OneCycleLR(theirs, 0.4, total_steps=40, three_phase=three_phase)
    assert [g["betas" if "betas" in g else "momentum"] for g in theirs.param_groups] == [
        g["betas" if "betas" in g else "momentum"] for g in ours.param_groups
    ]
    for k in range(40):
        _grads(a, k)
        _grads(b, k)
        ours.step()
        theirs.step()
        ours_s.step()
        theirs_s.step()
        mine, ref = _group_vals(ours)[0], _group_vals(theirs)[0]
        assert mine["lr"] == pytest.approx(ref["lr"], rel=1e-12, abs=0)
        key = "betas" if "betas" in ref else "momentum"
        assert mine[key] == pytest.approx(ref[key], rel=1e-12, abs=0), k
        for p, q in zip(a, b):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_ferrotorch_cyclic_lr_cycles_momentum_as_torch(mode, kind):
    kw = dict(lr=0.1, momentum=0.9) if kind == "SGD" else dict(lr=0.1)
    a, ours, b, theirs = _pair(kind, **kw)
    args = dict(base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=5, mode=mode, gamma=0.97)
    ours_s = fsched.CyclicLR(ours, **args)
    theirs_s = LRS.CyclicLR(theirs, **args)
    for k in range(30):
        _grads(a, k)
        _grads(b, k)
        ours.step()
        theirs.step()
        ours_s.step()
        theirs_s.step()
        mine, ref = _group_vals(ours)[0], _group_vals(theirs)[0]
        assert mine["lr"] == pytest.approx(ref["lr"], rel=1e-12, abs=0)
        key = "betas" if "betas" in ref else "momentum"
        assert mine[key] == pytest.approx(ref[key], rel=1e-12, abs=0), k
        for p, q in zip(a, b):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
