"""Schedulers: torch-style ones against torch.optim.lr_scheduler value by value,
floDl's calculators against FLODL_FACTS' formulas and expectations, Kaun's
schedules against their definitions."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.optim import lr_scheduler as tls

import ferrotorch as ft
from ferrotorch import sched as fs
from ferrotorch import schedule as ks

STEPS = 1000


def _close(a, b, rel=1e-12):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x == y or abs(x - y) <= rel * abs(y), (a, b)


def _sgd_pair():
    """Two SGD optimizers with the same two groups (different lrs)."""

    def make():
        g = torch.Generator().manual_seed(0)
        a = torch.nn.Parameter(torch.randn(3, generator=g))
        b = torch.nn.Parameter(torch.randn(2, generator=g))
        return torch.optim.SGD(
            [{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.01}], lr=0.1, momentum=0.9
        )

    return make(), make()


def _adam_pair():
    """A ferrotorch Adam (one group) and torch's, same lr."""
    p = torch.nn.Parameter(torch.zeros(3))
    q = torch.nn.Parameter(torch.zeros(3))
    return ft.optim.Adam([p], 0.05), torch.optim.Adam([q], lr=0.05)


def _torch_adam_pair():
    def make():
        a = torch.nn.Parameter(torch.zeros(2))
        b = torch.nn.Parameter(torch.zeros(2))
        return torch.optim.Adam([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}])

    return make(), make()


def _lrs(opt):
    if hasattr(opt, "param_groups"):
        return [float(g["lr"]) for g in opt.param_groups]
    return [opt.lr]


# name -> (ferrotorch factory, torch factory); factories take the optimizer.
CASES = {
    "StepLR": (
        lambda o: fs.StepLR(o, step_size=30, gamma=0.7),
        lambda o: tls.StepLR(o, step_size=30, gamma=0.7),
    ),
    "MultiStepLR": (
        lambda o: fs.MultiStepLR(o, milestones=[100, 300, 300, 700], gamma=0.5),
        lambda o: tls.MultiStepLR(o, milestones=[100, 300, 300, 700], gamma=0.5),
    ),
    "ExponentialLR": (
        lambda o: fs.ExponentialLR(o, gamma=0.995),
        lambda o: tls.ExponentialLR(o, gamma=0.995),
    ),
    "CosineAnnealingLR": (
        lambda o: fs.CosineAnnealingLR(o, T_max=150, eta_min=0.001),
        lambda o: tls.CosineAnnealingLR(o, T_max=150, eta_min=0.001),
    ),
    "CosineAnnealingLR-eta0": (
        lambda o: fs.CosineAnnealingLR(o, 77),
        lambda o: tls.CosineAnnealingLR(o, 77),
    ),
    "CosineAnnealingWarmRestarts": (
        lambda o: fs.CosineAnnealingWarmRestarts(o, T_0=50, T_mult=2, eta_min=1e-4),
        lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=50, T_mult=2, eta_min=1e-4),
    ),
    "CosineAnnealingWarmRestarts-1": (
        lambda o: fs.CosineAnnealingWarmRestarts(o, T_0=37),
        lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=37),
    ),
    "OneCycleLR": (
        lambda o: fs.OneCycleLR(o, max_lr=0.5, total_steps=STEPS, cycle_momentum=False),
        lambda o: tls.OneCycleLR(o, max_lr=0.5, total_steps=STEPS, cycle_momentum=False),
    ),
    "OneCycleLR-3phase-linear": (
        lambda o: fs.OneCycleLR(
            o,
            max_lr=0.3,
            epochs=10,
            steps_per_epoch=100,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
            cycle_momentum=False,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        lambda o: tls.OneCycleLR(
            o,
            max_lr=0.3,
            epochs=10,
            steps_per_epoch=100,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
            cycle_momentum=False,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
    ),
    "CyclicLR-triangular2": (
        lambda o: fs.CyclicLR(
            o, 0.01, 0.1, step_size_up=70, step_size_down=30, mode="triangular2", cycle_momentum=False
        ),
        lambda o: tls.CyclicLR(
            o, 0.01, 0.1, step_size_up=70, step_size_down=30, mode="triangular2", cycle_momentum=False
        ),
    ),
    "CyclicLR-exp_range": (
        lambda o: fs.CyclicLR(o, 0.001, 0.05, 45, mode="exp_range", gamma=0.999, cycle_momentum=False),
        lambda o: tls.CyclicLR(o, 0.001, 0.05, 45, mode="exp_range", gamma=0.999, cycle_momentum=False),
    ),
    "CyclicLR-scale_fn": (
        lambda o: fs.CyclicLR(
            o, 0.001, 0.05, 20, scale_fn=lambda x: 0.9**x, scale_mode="iterations", cycle_momentum=False
        ),
        lambda o: tls.CyclicLR(
            o, 0.001, 0.05, 20, scale_fn=lambda x: 0.9**x, scale_mode="iterations", cycle_momentum=False
        ),
    ),
    "LinearLR": (
        lambda o: fs.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=400),
        lambda o: tls.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=400),
    ),
    "PolynomialLR": (
        lambda o: fs.PolynomialLR(o, total_iters=600, power=2.0),
        lambda o: tls.PolynomialLR(o, total_iters=600, power=2.0),
    ),
    "LambdaLR": (
        lambda o: fs.LambdaLR(o, lambda e: 0.99**e + 0.1 * (e % 7)),
        lambda o: tls.LambdaLR(o, lambda e: 0.99**e + 0.1 * (e % 7)),
    ),
    "SequentialLR": (
        lambda o: fs.SequentialLR(
            o,
            [fs.LinearLR(o, 0.1, total_iters=100), fs.CosineAnnealingLR(o, 300), fs.ExponentialLR(o, 0.99)],
            milestones=[100, 400],
        ),
        lambda o: tls.SequentialLR(
            o,
            [
                tls.LinearLR(o, 0.1, total_iters=100),
                tls.CosineAnnealingLR(o, 300),
                tls.ExponentialLR(o, 0.99),
            ],
            milestones=[100, 400],
        ),
    ),
    "SequentialLR-step-poly": (
        lambda o: fs.SequentialLR(o, [fs.StepLR(o, 40, 0.5), fs.PolynomialLR(o, 500, 1.5)], milestones=[200]),
        lambda o: tls.SequentialLR(
            o, [tls.StepLR(o, 40, 0.5), tls.PolynomialLR(o, 500, 1.5)], milestones=[200]
        ),
    ),
}


def _run_pair(ours_opt, ref_opt, make_ours, make_ref, steps=STEPS):
    ours, ref = make_ours(ours_opt), make_ref(ref_opt)
    _close(ours.get_last_lr(), ref.get_last_lr())
    _close(_lrs(ours_opt), _lrs(ref_opt))
    assert ours.last_epoch == ref.last_epoch
    for _ in range(steps):
        ours_opt.step()
        ref_opt.step()
        ours.step()
        ref.step()
        _close(ours.get_last_lr(), ref.get_last_lr())
        _close(_lrs(ours_opt), _lrs(ref_opt))
        assert ours.last_epoch == ref.last_epoch
    return ours, ref


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_sgd_two_groups(name):
    ours_opt, ref_opt = _sgd_pair()
    _run_pair(ours_opt, ref_opt, *CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_ferrotorch_adam(name):
    ours_opt, ref_opt = _adam_pair()
    _run_pair(ours_opt, ref_opt, *CASES[name])


@pytest.mark.parametrize(
    "make_ours,make_ref",
    [
        (
            lambda o: fs.OneCycleLR(o, [0.5, 0.1], total_steps=300, three_phase=True),
            lambda o: tls.OneCycleLR(o, [0.5, 0.1], total_steps=300, three_phase=True),
        ),
        (
            lambda o: fs.CyclicLR(o, [0.01, 0.001], [0.1, 0.05], 25, base_momentum=0.7),
            lambda o: tls.CyclicLR(o, [0.01, 0.001], [0.1, 0.05], 25, base_momentum=0.7),
        ),
    ],
)
@pytest.mark.parametrize("pair", [_sgd_pair, _torch_adam_pair])
def test_cycle_momentum_matches(make_ours, make_ref, pair):
    """Momentum (SGD) or beta1 (Adam) cycles as torch's does."""
    ours_opt, ref_opt = pair()
    _run_pair(ours_opt, ref_opt, make_ours, make_ref, steps=300)
    for g, h in zip(ours_opt.param_groups, ref_opt.param_groups):
        for key in ("momentum", "betas", "max_momentum", "base_momentum", "initial_lr", "max_lr", "min_lr"):
            assert g.get(key) == h.get(key), key


def test_cycle_momentum_needs_momentum():
    # Adagrad has neither momentum nor betas: torch refuses it too (issue #15
    # made Adam-family and SGD optimizers cycle beta1 / momentum instead).
    w = torch.nn.Parameter(torch.ones(2))
    opt = ft.optim.Adagrad([w], 0.1)
    with pytest.raises(ValueError, match="momentum"):
        torch.optim.lr_scheduler.OneCycleLR(torch.optim.Adagrad([w], 0.1), 0.1, total_steps=10)
    with pytest.raises(ft.ConfigError, match="cycle_momentum"):
        fs.OneCycleLR(opt, 0.1, total_steps=10)
    with pytest.raises(ft.ConfigError, match="cycle_momentum"):
        fs.CyclicLR(opt, 0.01, 0.1)


@pytest.mark.parametrize(
    "mode,threshold_mode,cooldown,min_lr,eps",
    [
        ("min", "rel", 0, 0.0, 1e-8),
        ("min", "abs", 3, [1e-4, 1e-5], 1e-8),
        ("max", "rel", 2, 2e-3, 1e-8),
        ("max", "abs", 0, 0.0, 1e-3),
    ],
)
@pytest.mark.parametrize("pair", ["sgd", "adam"])
def test_reduce_on_plateau(mode, threshold_mode, cooldown, min_lr, eps, pair):
    ours_opt, ref_opt = _sgd_pair() if pair == "sgd" else _adam_pair()
    if pair == "adam" and isinstance(min_lr, list):
        min_lr = min_lr[0]
    kw = dict(
        mode=mode, factor=0.5, patience=5, threshold=0.01, threshold_mode=threshold_mode, cooldown=cooldown
    )
    ours = fs.ReduceLROnPlateau(ours_opt, min_lr=min_lr, eps=eps, **kw)
    ref = tls.ReduceLROnPlateau(ref_opt, min_lr=min_lr, eps=eps, **kw)
    g = torch.Generator().manual_seed(3)
    noise = torch.rand(STEPS, generator=g, dtype=torch.float64)
    for i in range(STEPS):
        metric = 1.0 / (1 + i // 40) + 0.05 * float(noise[i])
        if mode == "max":
            metric = -metric
        ours.step(metric)
        ref.step(torch.tensor(metric) if i % 2 else metric)
        _close(ours.get_last_lr(), ref.get_last_lr())
        _close(_lrs(ours_opt), _lrs(ref_opt))
        assert (ours.num_bad_epochs, ours.cooldown_counter, ours.last_epoch) == (
            ref.num_bad_epochs,
            ref.cooldown_counter,
            ref.last_epoch,
        )
    assert _lrs(ours_opt)[0] < 0.05  # it did reduce


def _restore_opt(old, new):
    if hasattr(old, "param_groups"):
        new.load_state_dict(old.state_dict())
    else:
        new.set_lr(old.lr)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("pair", ["sgd", "adam"])
def test_state_dict_round_trip(name, pair):
    """Stop mid-run, rebuild from the state dicts, continue identically."""
    make_ours, _ = CASES[name]
    mk = (lambda: _sgd_pair()[0]) if pair == "sgd" else (lambda: _adam_pair()[0])
    opt_a, opt_b = mk(), mk()
    full = make_ours(opt_a)
    half = make_ours(opt_b)
    for _ in range(STEPS // 2):
        opt_b.step()
        half.step()
    sd = half.state_dict()
    # A fresh optimizer and scheduler, then the saved states.
    opt_c = mk()
    resumed = make_ours(opt_c)
    _restore_opt(opt_b, opt_c)
    resumed.load_state_dict(sd)
    assert resumed.last_epoch == half.last_epoch
    _close(resumed.get_last_lr(), half.get_last_lr())
    for _ in range(STEPS // 2):
        opt_a.step()
        full.step()
    for _ in range(STEPS // 2):
        opt_c.step()
        resumed.step()
        opt_a.step()
        full.step()
        _close(resumed.get_last_lr(), full.get_last_lr(), rel=0)
        _close(_lrs(opt_c), _lrs(opt_a), rel=0)


def test_plateau_state_dict_round_trip():
    opt, _ = _sgd_pair()
    s = fs.ReduceLROnPlateau(opt, patience=2, cooldown=1)
    for m in [1.0, 0.9, 0.95, 0.96, 0.97]:
        s.step(m)
    sd = s.state_dict()
    opt2, _ = _sgd_pair()
    s2 = fs.ReduceLROnPlateau(opt2, patience=9)
    opt2.load_state_dict(opt.state_dict())
    s2.load_state_dict(sd)
    for m in [0.98, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9]:
        s.step(m)
        s2.step(m)
        assert s.get_last_lr() == s2.get_last_lr()
        assert (s.best, s.num_bad_epochs, s.cooldown_counter) == (
            s2.best,
            s2.num_bad_epochs,
            s2.cooldown_counter,
        )


@pytest.mark.parametrize(
    "name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts"]
)
def test_torch_state_dict_loads(name):
    """A torch scheduler's state dict, taken mid-run, continues in ferrotorch."""
    make_ours, make_ref = CASES[name]
    ref_opt, ours_opt = _sgd_pair()
    ref = make_ref(ref_opt)
    for _ in range(333):
        ref_opt.step()
        ref.step()
    ours = make_ours(ours_opt)
    ours_opt.load_state_dict(ref_opt.state_dict())
    ours.load_state_dict(ref.state_dict())
    for _ in range(300):
        ref_opt.step()
        ref.step()
        ours_opt.step()
        ours.step()
        _close(ours.get_last_lr(), ref.get_last_lr())


def test_torch_plateau_state_dict_loads():
    ref_opt, ours_opt = _sgd_pair()
    ref = tls.ReduceLROnPlateau(ref_opt, patience=1)
    for m in [1.0, 1.0, 1.0, 0.5]:
        ref.step(m)
    ours = fs.ReduceLROnPlateau(ours_opt)
    ours_opt.load_state_dict(ref_opt.state_dict())
    ours.load_state_dict(ref.state_dict())
    for m in [0.6, 0.7, 0.8, 0.2]:
        ref.step(m)
        ours.step(m)
        assert ours.get_last_lr() == ref.get_last_lr()


def test_multistep_state_dict_counter():
    opt, _ = _sgd_pair()
    s = fs.MultiStepLR(opt, [5, 5, 9])
    assert s.state_dict()["milestones"] == {5: 2, 9: 1}


def test_lambda_state_dict_saves_callable_objects():
    class Fn:
        def __init__(self):
            self.k = 0.5

        def __call__(self, e):
            return self.k**e

    opt, ref_opt = _sgd_pair()
    f = Fn()
    ours = fs.LambdaLR(opt, [f, lambda e: 1.0])
    ref = tls.LambdaLR(ref_opt, [Fn(), lambda e: 1.0])
    assert ours.state_dict()["lr_lambdas"] == ref.state_dict()["lr_lambdas"] == [{"k": 0.5}, None]
    sd = ours.state_dict()
    sd["lr_lambdas"] = [{"k": 0.25}, None]
    ours.load_state_dict(sd)
    assert f.k == 0.25


def test_two_schedulers_share_initial_lr_on_ferrotorch_optimizer():
    """torch keeps group['initial_lr']; so does a ferrotorch optimizer's group."""
    ours_opt, ref_opt = _adam_pair()
    a, b = fs.ExponentialLR(ours_opt, 0.5), tls.ExponentialLR(ref_opt, 0.5)
    for _ in range(3):
        ours_opt.step()
        ref_opt.step()
        a.step()
        b.step()
    # A new scheduler starts from initial_lr, not from the current lr.
    c, d = fs.StepLR(ours_opt, 2), tls.StepLR(ref_opt, 2)
    assert c.base_lrs == d.base_lrs == [0.05]
    _close(_lrs(ours_opt), _lrs(ref_opt))


def test_torch_and_ferrotorch_schedulers_share_one_initial_lr():
    """A torch scheduler and a ferrotorch one on the same ferrotorch optimizer
    read and write the same group['initial_lr'], as two torch schedulers do."""
    ours_opt, ref_opt = _adam_pair()
    a, b = tls.ExponentialLR(ours_opt, 0.5), tls.ExponentialLR(ref_opt, 0.5)
    for _ in range(2):
        a.step()
        b.step()
    c, d = fs.StepLR(ours_opt, 2), tls.StepLR(ref_opt, 2)
    assert c.base_lrs == d.base_lrs == [ref_opt.param_groups[0]["initial_lr"]]
    assert ours_opt.param_groups[0]["initial_lr"] == ref_opt.param_groups[0]["initial_lr"]
    # And the other way round: torch's scheduler starts from ours.
    ours_opt, ref_opt = _adam_pair()
    e, f = fs.ExponentialLR(ours_opt, 0.5), tls.ExponentialLR(ref_opt, 0.5)
    e.step()
    f.step()
    g, h = tls.StepLR(ours_opt, 2), tls.StepLR(ref_opt, 2)
    assert g.base_lrs == h.base_lrs
    _close(_lrs(ours_opt), _lrs(ref_opt))


def test_step_epoch_closed_form():
    ours_opt, ref_opt = _sgd_pair()
    ours, ref = fs.StepLR(ours_opt, 3, 0.5), tls.StepLR(ref_opt, 3, 0.5)
    with pytest.warns(UserWarning):
        ref.step(7)
    ours.step(7)
    _close(ours.get_last_lr(), ref.get_last_lr())
    ours_opt, ref_opt = _sgd_pair()
    ours = fs.CosineAnnealingWarmRestarts(ours_opt, 10, 2)
    ref = tls.CosineAnnealingWarmRestarts(ref_opt, 10, 2)
    for e in [0.5, 3.25, 12.0, 31.5, 75.1]:
        ours.step(e)
        ref.step(e)
        _close(ours.get_last_lr(), ref.get_last_lr())
        assert ours.last_epoch == ref.last_epoch


def test_tensor_lr_is_filled_in_place():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=torch.tensor(0.1))
    lr_tensor = opt.param_groups[0]["lr"]
    s = fs.ExponentialLR(opt, 0.5)
    opt.step()
    s.step()
    assert opt.param_groups[0]["lr"] is lr_tensor
    assert float(lr_tensor) == pytest.approx(0.05)


# --- dispatch -----------------------------------------------------------------


def test_dispatch_on_first_argument():
    opt, _ = _sgd_pair()
    assert isinstance(fs.MultiStepLR(opt, [3]), fs.LRScheduler)
    assert isinstance(fs.MultiStepLR(0.1, [3], 0.1), fs.Schedule)
    assert isinstance(fs.MultiStepLR(0.1, [3], 0.1), fs.MultiStepLR)
    assert isinstance(fs.MultiStepLR(opt, [3]), fs.MultiStepLR)
    assert not isinstance(fs.StepDecay(0.1, 1, 0.5), fs.MultiStepLR)
    assert isinstance(fs.ExponentialLR(opt, 0.9), fs.LRScheduler)
    assert isinstance(fs.ExponentialLR(0.1, 0.9), fs.Schedule)
    assert isinstance(fs.OneCycleLR(opt, 0.1, total_steps=10), fs.LRScheduler)
    assert isinstance(fs.OneCycleLR(0.1, 10), fs.Schedule)
    assert isinstance(fs.CyclicLR(opt, 0.01, 0.1), fs.LRScheduler)
    assert isinstance(fs.CyclicLR(0.01, 0.1, 5), fs.Schedule)
    with pytest.raises(ft.InputTypeError, match="optimizer"):
        fs.StepLR(0.1, 10)
    with pytest.raises(ft.InputTypeError, match="optimizer"):
        fs.MultiStepLR("opt", [3])


# --- floDl calculators ----------------------------------------------------------


def test_flodl_expectations():
    s = fs.StepDecay(0.1, 10, 0.5)
    assert s.lr(9) == pytest.approx(0.1, rel=1e-15) and s.lr(10) == pytest.approx(0.05, rel=1e-15)
    assert s(10) == s.lr(10)
    m = fs.MultiStepLR(0.1, [60, 30, 90], 0.1)
    assert m.milestones == [30, 60, 90]
    assert [m.lr(i) for i in (29, 30, 59, 60, 90)] == pytest.approx([0.1, 0.01, 0.01, 0.001, 1e-4], rel=1e-14)
    c = fs.CosineScheduler(0.1, 0.001, 100)
    assert c.lr(100) == pytest.approx(0.001, rel=1e-14)
    assert 0.04 < c.lr(50) < 0.06
    assert c.lr(0) == pytest.approx(0.1) and c.lr(1000) == pytest.approx(0.001)
    e = fs.ExponentialLR(0.1, 0.9)
    assert e.lr(5) == pytest.approx(0.1 * 0.9**5, rel=1e-15)


def test_flodl_plateau():
    p = fs.PlateauScheduler(0.1, 3, 0.5)
    for metric in [1.0, 0.9, 0.8]:
        assert p.observe(metric) == 0.1
    assert p.observe(0.81) == 0.1 and p.observe(0.82) == 0.1
    assert p.observe(0.83) == pytest.approx(0.05)
    assert p.lr() == pytest.approx(0.05) and p.best == 0.8 and p.wait == 0
    q = fs.PlateauScheduler(0.1, 1, 0.5, min_lr=0.04)
    q.observe(1.0)
    assert q.observe(1.0) == 0.05 and q.observe(1.0) == 0.04  # floored at min_lr


def _one_cycle_ref(max_lr, total, frac, step):
    w = round(total * frac)
    lo = max_lr / 25
    s = min(step, total)
    if s < w:
        return lo + (s / max(w, 1)) * (max_lr - lo)
    return lo + 0.5 * (max_lr - lo) * (1 + math.cos(math.pi * (s - w) / max(total - w, 1)))


def test_flodl_one_cycle_cyclic_warmup_formulas():
    oc = fs.OneCycleLR(0.1, 100)
    assert oc.warmup_steps == 30
    for s in range(0, 130, 7):
        assert oc.lr(s) == pytest.approx(_one_cycle_ref(0.1, 100, 0.3, s), rel=1e-14)
    assert oc.lr(100) == pytest.approx(0.1 / 25)
    ow = fs.OneCycleLR.with_warmup_frac(0.2, 50, 1.7)  # clamped to 1
    assert ow.warmup_steps == 50
    for s in range(0, 60, 3):
        assert ow.lr(s) == pytest.approx(_one_cycle_ref(0.2, 50, 1.0, s), rel=1e-14)

    cy = fs.CyclicLR(0.01, 0.1, 4)
    ca = fs.CyclicLR.asymmetric(0.01, 0.1, 3, 5)
    for sched, up, down in [(cy, 4, 4), (ca, 3, 5)]:
        for s in range(40):
            pos = s % (up + down)
            scale = pos / up if pos <= up else 1 - (pos - up) / down
            assert sched.lr(s) == pytest.approx(0.01 + 0.09 * scale, rel=1e-14)

    inner = fs.CosineScheduler(0.1, 0.0, 20)
    w = fs.WarmupScheduler(inner, 0.1, 5)
    for s in range(30):
        want = 0.1 * (s + 1) / 5 if s < 5 else inner.lr(s - 5)
        assert w.lr(s) == pytest.approx(want, rel=1e-14)
    nested = fs.WarmupScheduler(w, 0.01, 2)
    assert [nested.lr(s) for s in (0, 1, 2, 3)] == pytest.approx([0.005, 0.01, w.lr(0), w.lr(1)])


def test_python_callables_as_schedules():
    w = fs.WarmupScheduler(lambda step: 0.5 / (step + 1), 1.0, 2)
    assert [w(s) for s in range(5)] == pytest.approx([0.5, 1.0, 0.5, 0.25, 0.5 / 3])
    j = ks.join([lambda s: 1.0, ks.constant(2.0), lambda s: float(s)], [3, 6])
    assert [j(s) for s in range(9)] == [1, 1, 1, 2, 2, 2, 0, 1, 2]

    def boom(step):
        raise RuntimeError("bad schedule")

    with pytest.raises(RuntimeError, match="bad schedule"):
        fs.WarmupScheduler(boom, 1.0, 1).lr(3)
    with pytest.raises(ft.InputTypeError, match="callable"):
        fs.WarmupScheduler(3.0, 1.0, 1)
    opt, ref_opt = _sgd_pair()
    ours = fs.LambdaLR(opt, ks.cosine_decay(1.0, 50))
    ref = tls.LambdaLR(ref_opt, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, 50) / 50)))
    for _ in range(60):
        opt.step()
        ref_opt.step()
        ours.step()
        ref.step()
        _close(ours.get_last_lr(), ref.get_last_lr(), rel=1e-14)


# --- Kaun -------------------------------------------------------------------------


def test_kaun_values():
    assert ks.constant(0.3)(1) == 0.3 and ks.constant(0.3)(10**6) == 0.3
    cd = ks.cosine_decay(0.1, 100, alpha=0.1)
    for s in [1, 25, 50, 99]:
        want = ((1 - 0.1) * 0.5 * (1 + math.cos(math.pi * s / 100)) + 0.1) * 0.1
        assert cd(s) == pytest.approx(want, rel=1e-15)
    assert cd(100) == pytest.approx(0.01) and cd(1000) == pytest.approx(0.01)
    assert ks.cosine_decay(1.0, 10)(5) == pytest.approx(0.5)

    wl = ks.warmup_linear(0.0, 0.1, 10)
    assert [wl(s) for s in (1, 5, 10, 50)] == pytest.approx([0.01, 0.05, 0.1, 0.1])

    wc3 = ks.warmup_cosine(0.0, 1.0, 4)  # Kaun's cosine-shaped warmup
    assert [wc3(s) for s in (0, 2, 4, 9)] == pytest.approx([0.0, 0.5, 1.0, 1.0])
    assert wc3(1) == pytest.approx(1 - 0.5 * (1 + math.cos(math.pi / 4)))

    wc = ks.warmup_cosine(0.0, 1.0, 10, 100, end_value=0.1)
    assert wc(5) == pytest.approx(0.5) and wc(10) == pytest.approx(1.0)
    assert wc(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert wc(110) == pytest.approx(0.1) and wc(500) == pytest.approx(0.1)

    ed = ks.exponential_decay(0.1, 0.5, 10)
    assert ed(5) == pytest.approx(0.1 * 0.5**0.5, rel=1e-15)
    assert ed(20) == pytest.approx(0.025, rel=1e-15)

    j = ks.join([ks.warmup_linear(0.0, 1.0, 10), ks.cosine_decay(1.0, 90)], [10])
    assert j(5) == pytest.approx(0.5) and j(10) == pytest.approx(1.0)
    assert j(55) == pytest.approx(ks.cosine_decay(1.0, 90)(45))
    assert isinstance(j, ks.Schedule)
    # Kaun schedules plug into floDl's warmup too.
    assert fs.WarmupScheduler(ks.constant(0.2), 0.2, 2)(7) == 0.2


# --- argument errors ----------------------------------------------------------------

ERRORS = [
    (lambda: fs.StepDecay(0.1, 0, 0.5), "step_size"),
    (lambda: fs.StepDecay(-0.1, 10, 0.5), "base"),
    (lambda: fs.StepDecay(0.1, 10, 0.0), "gamma"),
    (lambda: fs.CosineScheduler(0.1, 0.0, 0), "total"),
    (lambda: fs.CosineScheduler(0.1, -1.0, 10), "min_lr"),
    (lambda: fs.WarmupScheduler(fs.StepDecay(0.1, 1, 0.5), -1.0, 3), "target_lr"),
    (lambda: fs.ExponentialLR(0.1, -0.5), "gamma"),
    (lambda: fs.MultiStepLR(0.1, [1], 0.0), "gamma"),
    (lambda: fs.OneCycleLR(0.1, 0), "total"),
    (lambda: fs.OneCycleLR(-0.1, 10), "max_lr"),
    (lambda: fs.CyclicLR(0.01, 0.1, 0), "step_size_up"),
    (lambda: fs.CyclicLR.asymmetric(0.01, 0.1, 3, 0), "step_size_down"),
    (lambda: fs.PlateauScheduler(0.1, 3, 1.5), "factor"),
    (lambda: fs.PlateauScheduler(0.1, 3, 0.5, -1.0), "min_lr"),
    (lambda: fs.StepDecay(0.1, 1, 0.5).lr(-1), "step"),
    (lambda: ks.cosine_decay(0.1, 0), "decay_steps"),
    (lambda: ks.warmup_linear(0.0, 0.1, 0), "warmup_steps"),
    (lambda: ks.warmup_cosine(0.0, 0.1, 10, 0), "decay_steps"),
    (lambda: ks.exponential_decay(0.1, 0.0, 10), "decay_rate"),
    (lambda: ks.exponential_decay(0.1, 0.5, 0), "decay_steps"),
    (lambda: ks.join([ks.constant(1.0)], [3]), "boundaries"),
    (lambda: ks.join([ks.constant(1.0), ks.constant(2.0)], [-1]), "boundaries"),
    (lambda: ks.constant(1.0)(-2), "step"),
]


def _opt():
    return _sgd_pair()[0]


TORCH_ERRORS = [
    (lambda o: fs.StepLR(o, 0), "step_size"),
    (lambda o: fs.LinearLR(o, start_factor=0.0), "start_factor"),
    (lambda o: fs.LinearLR(o, end_factor=1.5), "end_factor"),
    (lambda o: fs.LinearLR(o, total_iters=0), "total_iters"),
    (lambda o: fs.PolynomialLR(o, total_iters=0), "total_iters"),
    (lambda o: fs.CosineAnnealingLR(o, 0), "T_max"),
    (lambda o: fs.CosineAnnealingLR(o, 10, eta_min=-1.0), "eta_min"),
    (lambda o: fs.CosineAnnealingWarmRestarts(o, 0), "T_0"),
    (lambda o: fs.CosineAnnealingWarmRestarts(o, 5, T_mult=0), "T_mult"),
    (lambda o: fs.OneCycleLR(o, 0.1), "total_steps"),
    (lambda o: fs.OneCycleLR(o, 0.1, total_steps=0), "total_steps"),
    (lambda o: fs.OneCycleLR(o, 0.1, total_steps=10, pct_start=1.5), "pct_start"),
    (lambda o: fs.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: fs.OneCycleLR(o, [0.1, 0.2, 0.3], total_steps=10), "max_lr"),
    (lambda o: fs.OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=3), "epochs"),
    (lambda o: fs.CyclicLR(o, 0.01, 0.1, mode="sine"), "mode"),
    (lambda o: fs.CyclicLR(o, 0.01, 0.1, step_size_up=0), "step_size_up"),
    (lambda o: fs.CyclicLR(o, [0.01], 0.1), "base_lr"),
    (lambda o: fs.LambdaLR(o, [lambda e: 1.0]), "lr_lambdas"),
    (lambda o: fs.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: fs.ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: fs.ReduceLROnPlateau(o, threshold_mode="pct"), "threshold_mode"),
    (lambda o: fs.ReduceLROnPlateau(o, patience=-1), "patience"),
    (lambda o: fs.ReduceLROnPlateau(o, cooldown=-1), "cooldown"),
    (lambda o: fs.ReduceLROnPlateau(o, min_lr=[0.1]), "min_lrs"),
    (lambda o: fs.SequentialLR(o, [fs.StepLR(o, 2)], milestones=[3]), "milestone"),
    (lambda o: fs.SequentialLR(o, [], milestones=[]), "at least one"),
    (lambda o: fs.SequentialLR(o, [fs.StepLR(o, 2), fs.StepLR(_opt(), 2)], [3]), "different optimizer"),
    (lambda o: fs.StepLR(o, 2, last_epoch=5), "last_epoch"),
]


@pytest.mark.parametrize("make,word", ERRORS)
def test_argument_errors(make, word):
    with pytest.raises(ft.ConfigError, match=word):
        make()


@pytest.mark.parametrize("make,word", TORCH_ERRORS)
def test_torch_style_argument_errors(make, word):
    with pytest.raises(ft.ConfigError, match=word):
        make(_opt())


def test_other_input_errors():
    o = _opt()
    with pytest.raises(ft.InputTypeError, match="ReduceLROnPlateau"):
        fs.SequentialLR(o, [fs.ReduceLROnPlateau(o), fs.StepLR(o, 2)], [3])
    s = fs.OneCycleLR(o, 0.1, total_steps=3)
    for _ in range(3):
        s.step()
    with pytest.raises(ft.ConfigError, match="total steps"):
        s.step()
    with pytest.raises(ft.TagError, match="missing key 'base_lrs'"):
        fs.StepLR(o, 2).load_state_dict({"step_size": 2, "gamma": 0.1})


def test_example_runs():
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root / "python") + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, str(root / "examples" / "schedulers.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "StepDecay" in out.stdout and "CosineAnnealingLR" in out.stdout
