"""Every optimizer x options x implementation against torch.optim over 200
steps; groups, frozen parameters, state dicts both ways."""

import copy

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import optim as fo

STEPS = 200


def _model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).to(dtype)


def _data(seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 5, generator=g, dtype=dtype), torch.randn(16, 2, generator=g, dtype=dtype))
        for _ in range(5)
    ]


def _train(model, opt, steps, data, start=0, sign=1.0):
    """sign=-1 with maximize=True: maximizing -MSE is minimizing MSE (no divergence)."""
    for i in range(start, start + steps):
        x, y = data[i % len(data)]
        opt.zero_grad()
        (sign * torch.nn.functional.mse_loss(model(x), y)).backward()
        opt.step()


CASES = [
    ("SGD", fo.SGD, torch.optim.SGD, {"lr": 0.05}),
    ("SGD", fo.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", fo.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", fo.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True, "maximize": True}),
    ("Adam", fo.Adam, torch.optim.Adam, {"lr": 0.01}),
    ("Adam", fo.Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (
        "Adam",
        fo.Adam,
        torch.optim.Adam,
        {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "amsgrad": True, "maximize": True},
    ),
    ("AdamW", fo.AdamW, torch.optim.AdamW, {"lr": 0.01}),
    ("AdamW", fo.AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", fo.RMSprop, torch.optim.RMSprop, {"lr": 0.01}),
    (
        "RMSprop",
        fo.RMSprop,
        torch.optim.RMSprop,
        {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01},
    ),
    ("RMSprop", fo.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "maximize": True}),
    ("Adagrad", fo.Adagrad, torch.optim.Adagrad, {"lr": 0.05}),
    (
        "Adagrad",
        fo.Adagrad,
        torch.optim.Adagrad,
        {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1},
    ),
    ("RAdam", fo.RAdam, torch.optim.RAdam, {"lr": 0.01}),
    ("RAdam", fo.RAdam, torch.optim.RAdam, {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", fo.RAdam, torch.optim.RAdam, {"lr": 0.01, "weight_decay": 0.05}),
    ("NAdam", fo.NAdam, torch.optim.NAdam, {"lr": 0.01}),
    ("NAdam", fo.NAdam, torch.optim.NAdam, {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", fo.NAdam, torch.optim.NAdam, {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("Adamax", fo.Adamax, torch.optim.Adamax, {"lr": 0.01}),
    ("Adamax", fo.Adamax, torch.optim.Adamax, {"lr": 0.01, "weight_decay": 0.05, "maximize": True}),
]

FUSED = {"SGD", "Adam", "AdamW", "Adagrad"}


def _impls(name):
    return ["fused", "foreach", "reference"] if name in FUSED else ["foreach", "reference"]


@pytest.mark.parametrize("impl", ["fused", "foreach", "reference"])
@pytest.mark.parametrize(
    "name,ours_cls,torch_cls,kw", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_matches_torch_200_steps(name, ours_cls, torch_cls, kw, impl):
    if impl not in _impls(name):
        with pytest.raises(ValueError, match="no fused kernel"):
            ours_cls(_model().parameters(), implementation=impl, **kw)
        return
    data = _data()
    a, b = _model(), _model()
    sign = -1.0 if kw.get("maximize") else 1.0
    _train(a, ours_cls(a.parameters(), implementation=impl, **kw), STEPS, data, sign=sign)
    # Each path against torch's same path: fused=True, foreach=True, foreach=False.
    tkw = {"fused": {"fused": True}, "foreach": {"foreach": True}, "reference": {"foreach": False}}[impl]
    _train(b, torch_cls(b.parameters(), **kw, **tkw), STEPS, data, sign=sign)
    assert all(torch.isfinite(p).all() for p in a.parameters())
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def _lamb_reference(params, grads_states, lr, b1, b2, eps, wd, t):
    for p, (g, m, v) in zip(params, grads_states):
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        mhat = m / (1 - b1**t)
        vhat = v / (1 - b2**t)
        r = mhat / (vhat.sqrt() + eps) + wd * p
        pn, rn = p.norm(), r.norm()
        trust = pn / rn if pn > 0 and rn > 0 else 1.0
        p.sub_(lr * trust * r)


@pytest.mark.parametrize("impl", ["foreach", "reference"])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_lamb_matches_paper_transcription(impl, wd):
    data = _data()
    a, b = _model(), _model()
    _train(a, fo.LAMB(a.parameters(), 0.01, weight_decay=wd, implementation=impl), 50, data)
    ps = [p.detach().clone() for p in b.parameters()]
    states = [(torch.zeros_like(p), torch.zeros_like(p)) for p in ps]
    for t in range(1, 51):
        x, y = data[(t - 1) % len(data)]
        for p, q in zip(b.parameters(), ps):
            p.data.copy_(q)
        b.zero_grad()
        torch.nn.functional.mse_loss(b(x), y).backward()
        with torch.no_grad():
            _lamb_reference(
                ps,
                [(p.grad, m, v) for p, (m, v) in zip(b.parameters(), states)],
                0.01,
                0.9,
                0.999,
                1e-6,
                wd,
                t,
            )
    for p, q in zip(a.parameters(), ps):
        torch.testing.assert_close(p.detach(), q, rtol=0, atol=1e-5)


def test_param_groups_torch_dicts_and_flodl_builder():
    data = _data()
    a, b, c = _model(), _model(), _model()
    ga = [
        {"params": a[0].parameters(), "lr": 0.001},
        {"params": a[2].parameters(), "lr": 0.05, "weight_decay": 0.1},
    ]
    gb = [
        {"params": b[0].parameters(), "lr": 0.001},
        {"params": b[2].parameters(), "lr": 0.05, "weight_decay": 0.1},
    ]
    opt = fo.Adam(ga, 0.01)
    _train(a, opt, 100, data)
    _train(b, torch.optim.Adam(gb, lr=0.01), 100, data)
    built = fo.Adam.with_groups().betas(0.9, 0.999).group(c[0].parameters(), 0.001)
    built = built.group(c[2].parameters(), 0.05, weight_decay=0.1).build()
    _train(c, built, 100, data)
    for p, q, r in zip(a.parameters(), b.parameters(), c.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
        torch.testing.assert_close(r, q, rtol=0, atol=1e-6)
    assert [g["lr"] for g in opt.param_groups] == [0.001, 0.05]
    assert opt.param_groups[1]["weight_decay"] == 0.1 and opt.param_groups[0]["weight_decay"] == 0.0


def test_lr_controls():
    m = _model()
    opt = fo.SGD([{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 0.5}], 0.1, 0.9)
    assert opt.lr == 0.1 and opt.param_groups[1]["lr"] == 0.5
    opt.set_group_lr(1, 0.2)
    opt.scale_lr(0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.1]
    opt.param_groups[0]["lr"] = 0.3  # torch-style write goes through
    assert opt.lr == 0.3
    opt.set_lr(0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]
    with pytest.raises(ValueError, match="out of range"):
        opt.set_group_lr(5, 0.1)
    with pytest.raises(ft.ConfigError, match="learning rate"):
        opt.set_lr(-1.0)
    assert opt.lr == 0.01
    g = fo.SGD.with_groups(0.9).weight_decay(0.01).group(m.parameters(), 0.1).build()
    assert g.param_groups[0]["momentum"] == 0.9 and g.param_groups[0]["weight_decay"] == 0.01


def test_frozen_parameters_skipped():
    data = _data()
    a, b = _model(), _model()
    for m in (a, b):
        m[0].weight.requires_grad_(False)
    _train(a, fo.Adam(a.parameters(), 0.01), 50, data)
    _train(b, torch.optim.Adam(b.parameters(), lr=0.01), 50, data)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    assert torch.equal(a[0].weight, _model()[0].weight)


@pytest.mark.parametrize("name,ours_cls,torch_cls,kw", [CASES[1], CASES[5], CASES[10], CASES[13], CASES[18]])
def test_state_dict_round_trip_continues_identically(name, ours_cls, torch_cls, kw):
    data = _data()
    a = _model()
    opt = ours_cls(a.parameters(), **kw)
    _train(a, opt, 60, data)
    sd = copy.deepcopy(opt.state_dict())
    snapshot = copy.deepcopy(a.state_dict())
    _train(a, opt, 60, data, start=60)
    b = _model()
    b.load_state_dict(snapshot)
    opt2 = ours_cls(b.parameters(), **kw)
    opt2.load_state_dict(sd)
    _train(b, opt2, 60, data, start=60)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "name,ours_cls,torch_cls,kw",
    [CASES[1], CASES[5], CASES[8], CASES[10], CASES[13], CASES[15], CASES[18], CASES[20]],
)
def test_state_dict_crosses_to_and_from_torch(name, ours_cls, torch_cls, kw):
    data = _data()
    # torch -> ferrotorch
    a, ref = _model(), _model()
    topt = torch_cls(a.parameters(), **kw)
    _train(a, topt, 40, data)
    ref.load_state_dict(a.state_dict())
    ours = ours_cls(ref.parameters(), **kw)
    ours.load_state_dict(copy.deepcopy(topt.state_dict()))
    _train(a, topt, 40, data, start=40)
    _train(ref, ours, 40, data, start=40)
    for p, q in zip(a.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    # ferrotorch -> torch
    c, d = _model(), _model()
    ours = ours_cls(c.parameters(), **kw)
    _train(c, ours, 40, data)
    d.load_state_dict(c.state_dict())
    topt = torch_cls(d.parameters(), **kw)
    topt.load_state_dict(copy.deepcopy(ours.state_dict()))
    _train(c, ours, 40, data, start=40)
    _train(d, topt, 40, data, start=40)
    for p, q in zip(c.parameters(), d.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_load_state_dict_validates_before_touching(tmp_path):
    m = _model()
    opt = fo.Adam(m.parameters(), 0.01)
    _train(m, opt, 3, _data())
    before = copy.deepcopy(opt.state_dict())
    bad = copy.deepcopy(before)
    bad["state"][1]["exp_avg"] = torch.zeros(3)
    with pytest.raises(ft.ShapeError, match="exp_avg"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(before)
    bad["param_groups"].append(copy.deepcopy(bad["param_groups"][0]))
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(before)
    bad["state"][0]["bogus"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unknown state 'bogus'"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    for k, st in before["state"].items():
        for name, t in st.items():
            assert torch.equal(t, after["state"][k][name])
    path = tmp_path / "opt.pt"
    opt.save_state(path)
    opt2 = fo.Adam(m.parameters(), 0.5)
    opt2.load_state(path)
    assert opt2.lr == 0.01 and torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], after["state"][0]["exp_avg"]
    )


@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (fo.SGD, {"lr": -0.1}, "learning rate"),
        (fo.Adam, {"lr": -0.1}, "learning rate lr: -0.1"),
        (fo.Adam, {"lr": 0.1, "eps": -1.0}, "eps"),
        (fo.Adam, {"lr": 0.1, "betas": (1.0, 0.9)}, "beta parameter at index 0"),
        (fo.Adam, {"lr": 0.1, "betas": (0.9, -0.1)}, "beta parameter at index 1"),
        (fo.Adam, {"lr": 0.1, "weight_decay": -1.0}, "weight_decay"),
        (fo.SGD, {"lr": 0.1, "nesterov": True}, "Nesterov"),
        (fo.SGD, {"lr": 0.1, "momentum": -1.0}, "momentum"),
        (fo.AdamW, {"lr": 0.1, "betas": (0.9, 1.5)}, "beta parameter at index 1"),
        (fo.RMSprop, {"lr": 0.1, "eps": -1.0}, "eps"),
        (fo.Adagrad, {"lr": 0.1, "lr_decay": -1.0}, "lr_decay"),
        (fo.NAdam, {"lr": 0.1, "momentum_decay": -1.0}, "momentum_decay"),
        (fo.LAMB, {"lr": 0.1, "weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_bad_hyperparameters_name_the_value(cls, kwargs, match):
    with pytest.raises(ft.ConfigError, match=match) as e:
        cls(_model().parameters(), **kwargs)
    assert isinstance(e.value, ValueError)  # as torch's


def test_group_errors():
    m = _model()
    with pytest.raises(ValueError, match="unknown hyperparameter 'momentum'"):
        fo.Adam([{"params": m.parameters(), "momentum": 0.9}], 0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        fo.SGD([{"params": m[0].parameters()}, {"params": m[0].parameters()}], 0.1)
    with pytest.raises(ValueError, match="no 'params'"):
        fo.SGD([{"lr": 0.1}], 0.1)
    with pytest.raises(ValueError, match="unknown optimizer 'adamz'"):
        fo.by_name("adamz", m.parameters(), 0.1)
    assert isinstance(fo.by_name("ADAMW", m.parameters(), 0.1), fo.AdamW)


def test_trainer_accepts_every_optimizer():
    g = ft.FlowBuilder.from_(ft.nn.Linear(3, 1)).build()
    x, y = torch.randn(4, 3), torch.randn(4, 1)
    for cls in (fo.SGD, fo.AdamW, fo.RMSprop, fo.Adagrad, fo.RAdam, fo.NAdam, fo.LAMB, fo.Adamax):
        before = [p.detach().clone() for p in g.parameters()]
        tr = ft.Trainer(g, cls(g.parameters(), 0.01), loss="mse")
        loss = tr.step(x, y)
        assert loss == pytest.approx(F.mse_loss(torch.nn.functional.linear(x, *before), y).item(), rel=1e-6)
        assert tr.global_step == 1 and any(not torch.equal(a, b) for a, b in zip(before, g.parameters())), cls
