"""Optimizers over groups that mix float32, float64 and bfloat16 parameters.

torch splits a group's tensors by (device, dtype) before its foreach and
fused kernels; ferrotorch's driver does the same. Every algorithm and every
implementation must step each tensor exactly as torch does, bit for bit:

    ferrotorch "fused"     vs torch fused=True
    ferrotorch "foreach"   vs torch foreach=True
    ferrotorch "reference" vs torch foreach=False (the single-tensor loop)
    ferrotorch "auto"      vs whichever of the two above it picked

The same kernels run on both sides, so every comparison is torch.equal; no
tolerance is needed anywhere in this file. The hyperparameters are chosen so
that bfloat16 rounding shows (betas far from 1, weight decay, lr_decay):
with torch's defaults many bfloat16 products round back to the input and
would hide a wrong op order.

Covered: one mixed group, parameters that have no gradient on some steps
(state created lazily, step counters that drift apart), two groups of
different dtypes, a state_dict round trip in the middle of a run, the step
counters torch keeps, and LAMB (no torch counterpart: a mixed group must step
each tensor exactly as single-dtype groups do).
"""

import pytest
import torch

import ferrotorch as ft

F32, F64, BF16 = torch.float32, torch.float64, torch.bfloat16
# Two tensors per dtype in one group, interleaved so buckets are not contiguous.
LAYOUT = [((3, 4), F32), ((5,), F64), ((2, 3), BF16), ((4,), F32), ((7,), BF16), ((2, 2), F64)]

CASES = {
    "sgd_momentum": ("SGD", dict(lr=0.05, momentum=0.9)),
    "sgd_nesterov_wd": ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    "sgd_dampening_wd": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    "sgd_plain_maximize": ("SGD", dict(lr=0.05, maximize=True)),
    "adam": ("Adam", dict(lr=0.05, betas=(0.8, 0.9))),
    "adam_amsgrad_wd": ("Adam", dict(lr=0.05, betas=(0.8, 0.9), amsgrad=True, weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1)),
    "adamw_amsgrad_maximize": (
        "AdamW",
        dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True, maximize=True),
    ),
    "rmsprop": ("RMSprop", dict(lr=0.01, alpha=0.9)),
    "rmsprop_centered_momentum_wd": (
        "RMSprop",
        dict(lr=0.01, alpha=0.9, centered=True, momentum=0.8, weight_decay=0.1),
    ),
    "adagrad": ("Adagrad", dict(lr=0.05)),
    "adagrad_decay_wd": (
        "Adagrad",
        dict(lr=0.05, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.1),
    ),
    "radam": ("RAdam", dict(lr=0.05, betas=(0.8, 0.9))),
    "radam_decoupled": (
        "RAdam",
        dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, decoupled_weight_decay=True),
    ),
    "nadam": ("NAdam", dict(lr=0.05, betas=(0.8, 0.9))),
    "nadam_decoupled": (
        "NAdam",
        dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, decoupled_weight_decay=True),
    ),
    "adamax_wd": ("Adamax", dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1)),
}
FUSED = {"SGD", "Adam", "AdamW", "Adagrad"}
IMPLS = ["fused", "foreach", "reference", "auto"]
PAIRS = [
    pytest.param(case, impl, id=f"{case}-{impl}")
    for case, (name, _) in CASES.items()
    for impl in IMPLS
    if impl != "fused" or name in FUSED
]
STEPS = 6
# The lazy pattern: parameter i gets its first gradient on step FIRST[i], and
# none on the (step, i) in SKIP. So state is created late, a bucket holds
# parameters with and without momentum buffers on the same step (float32 and
# bfloat16 on step 2), and step counters within a bucket drift apart.
FIRST = [0, 1, 2, 2, 0, 1]
SKIP = {(3, 0), (4, 4), (3, 5)}


def _chosen(name, impl):
    if impl == "auto":
        return "fused" if name in FUSED else "foreach"
    return impl


def _torch_path(chosen):
    return {"fused": dict(fused=True), "foreach": dict(foreach=True), "reference": dict(foreach=False)}[
        chosen
    ]


def _weights(layout=LAYOUT, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).to(d) for s, d in layout]


def _grads(step, layout=LAYOUT, lazy=False):
    g = torch.Generator().manual_seed(1000 + step)
    out = [torch.randn(s, generator=g).to(d) for s, d in layout]
    if lazy:
        out = [None if step < FIRST[i] or (step, i) in SKIP else t for i, t in enumerate(out)]
    return out


def _set(params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else g.clone()


def _torch_refuses_lazy(case, impl):
    """torch's fused SGD refuses a group where some momentum buffers exist and
    others not (it hands None to the kernel); ferrotorch steps such a group.
    torch's fused kernels are elementwise per tensor, so torch with one group
    per parameter is the exact oracle there."""
    name, kw = CASES[case]
    return name == "SGD" and _chosen(name, impl) == "fused" and kw.get("momentum", 0) != 0


def _grouped(ps, groups=None, per_param=False):
    """`ps` as param groups: `groups` lists (indices, extra keys); with
    `per_param`, one group per parameter carrying its group's extra keys."""
    groups = groups or [(list(range(len(ps))), {})]
    if per_param:
        return [dict(extra, params=[ps[i]]) for idx, extra in groups for i in idx]
    if len(groups) == 1 and not groups[0][1]:
        return list(ps)
    return [dict(extra, params=[ps[i] for i in idx]) for idx, extra in groups]


def _pair(case, impl, groups=None, per_param_torch_groups=False):
    """(our params, our optimizer, torch params, torch optimizer)."""
    name, kw = CASES[case]
    w = _weights()
    a = [torch.nn.Parameter(t.clone()) for t in w]
    b = [torch.nn.Parameter(t.clone()) for t in w]
    ours = getattr(ft.optim, name)(_grouped(a, groups), implementation=impl, **kw)
    torch_path = _torch_path(_chosen(name, impl))
    theirs = getattr(torch.optim, name)(_grouped(b, groups, per_param_torch_groups), **kw, **torch_path)
    assert ours.implementation == _chosen(name, impl)
    return a, ours, b, theirs


def _assert_equal_params(a, b, where):
    for i, (p, q) in enumerate(zip(a, b)):
        assert p.dtype == q.dtype
        assert torch.equal(p, q), (
            f"{where}: parameter {i} ({p.dtype}) differs by {(p.double() - q.double()).abs().max().item():.3g}"
        )


def _state_by_param(opt):
    """{param position: {key: tensor}} over all groups, for either library."""
    sd = opt.state_dict()
    return {k: v for k, v in sd["state"].items()}


def _assert_equal_state(ours, theirs, where):
    sa, sb = _state_by_param(ours), _state_by_param(theirs)
    # torch keeps no state for a parameter whose state would be empty (SGD
    # without momentum); compare what holds tensors.
    sa = {k: {n: t for n, t in v.items() if t is not None} for k, v in sa.items()}
    sb = {k: {n: t for n, t in v.items() if t is not None} for k, v in sb.items()}
    sa = {k: v for k, v in sa.items() if v}
    sb = {k: v for k, v in sb.items() if v}
    assert sorted(sa) == sorted(sb), f"{where}: state for params {sorted(sa)} vs torch {sorted(sb)}"
    for k in sb:
        assert sorted(sa[k]) == sorted(sb[k]), (
            f"{where}: param {k} state keys {sorted(sa[k])} vs {sorted(sb[k])}"
        )
        for n, t in sb[k].items():
            mine = sa[k][n]
            if n == "step":
                # torch's counters: float32, on the parameter's device for
                # fused kernels, on the CPU otherwise.
                assert float(mine) == float(t), f"{where}: param {k} step {float(mine)} vs torch {float(t)}"
                assert mine.dtype == t.dtype and mine.device == t.device, (where, k, mine.dtype, t.dtype)
            else:
                assert mine.dtype == t.dtype, (where, k, n)
                assert torch.equal(mine, t), f"{where}: param {k} state {n} differs"


def _run(a, ours, b, theirs, steps, lazy=False, start=0, where=""):
    for s in range(start, start + steps):
        g = _grads(s, lazy=lazy)
        _set(a, g)
        _set(b, g)
        ours.step()
        theirs.step()
        _assert_equal_params(a, b, f"{where} step {s}")


@pytest.mark.parametrize("case,impl", PAIRS)
def test_one_mixed_group_matches_torch(case, impl):
    a, ours, b, theirs = _pair(case, impl)
    _run(a, ours, b, theirs, STEPS, where=f"{case}/{impl}")
    _assert_equal_state(ours, theirs, f"{case}/{impl}")


@pytest.mark.parametrize("case,impl", PAIRS)
def test_step_counters_match_torch(case, impl):
    name, _ = CASES[case]
    a, ours, b, theirs = _pair(case, impl, per_param_torch_groups=_torch_refuses_lazy(case, impl))
    _run(a, ours, b, theirs, STEPS, lazy=True, where=f"{case}/{impl}")
    sa, sb = ours.state_dict()["state"], theirs.state_dict()["state"]
    if name == "SGD":
        assert all("step" not in v for v in sa.values())
        return
    steps_ours = {k: float(v["step"]) for k, v in sa.items()}
    steps_torch = {k: float(v["step"]) for k, v in sb.items()}
    assert steps_ours == steps_torch
    # The lazy pattern really makes the counters differ within a bucket.
    assert len(set(steps_torch.values())) > 1


@pytest.mark.parametrize("case,impl", PAIRS)
def test_lazy_state_matches_torch(case, impl):
    a, ours, b, theirs = _pair(case, impl, per_param_torch_groups=_torch_refuses_lazy(case, impl))
    _run(a, ours, b, theirs, STEPS, lazy=True, where=f"{case}/{impl} lazy")
    _assert_equal_state(ours, theirs, f"{case}/{impl} lazy")


def _two_groups(case):
    _, kw = CASES[case]
    extra = {"lr": kw["lr"] * 0.5}
    if "weight_decay" in kw:
        extra["weight_decay"] = 0.2
    # Group 0: float32 + bfloat16, group 1: float64 + bfloat16 (other lr).
    return [([0, 2, 3], {}), ([1, 4, 5], extra)]


@pytest.mark.parametrize("case,impl", PAIRS)
def test_two_groups_of_different_dtypes_match_torch(case, impl):
    groups = _two_groups(case)
    a, ours, b, theirs = _pair(case, impl, groups, per_param_torch_groups=_torch_refuses_lazy(case, impl))
    _run(a, ours, b, theirs, STEPS, lazy=True, where=f"{case}/{impl} two groups")
    _assert_equal_state(ours, theirs, f"{case}/{impl} two groups")


@pytest.mark.parametrize("source", ["ferrotorch", "torch"])
@pytest.mark.parametrize("groups", ["one_group", "two_groups"])
@pytest.mark.parametrize("case,impl", PAIRS)
def test_state_dict_round_trip_mid_run_matches_torch(case, impl, groups, source):
    """After 3 steps the state dict (ours, or torch's: the layouts are one)
    goes into a new optimizer, which continues equal to uninterrupted torch."""
    name, kw = CASES[case]
    groups = _two_groups(case) if groups == "two_groups" else None
    per_param = _torch_refuses_lazy(case, impl)
    a, ours, b, theirs = _pair(case, impl, groups, per_param_torch_groups=per_param)
    _run(a, ours, b, theirs, 3, lazy=True, where=f"{case}/{impl} before")
    sd = (ours if source == "ferrotorch" else theirs).state_dict()
    # torch's per-parameter groups (see _torch_refuses_lazy) need the same groups.
    resumed_groups = _grouped(a, groups, per_param and source == "torch")
    resumed = getattr(ft.optim, name)(resumed_groups, implementation=impl, **kw)
    resumed.load_state_dict(sd)
    _assert_equal_state(resumed, theirs, f"{case}/{impl} loaded from {source}")
    _run(a, resumed, b, theirs, 3, lazy=True, start=3, where=f"{case}/{impl} after")
    _assert_equal_state(resumed, theirs, f"{case}/{impl} after")


@pytest.mark.parametrize("case,impl", PAIRS)
def test_mixed_group_steps_each_tensor_as_single_dtype_groups(case, impl):
    """No torch on this side: one mixed group vs one optimizer per dtype."""
    name, kw = CASES[case]
    w = _weights()
    mixed = [torch.nn.Parameter(t.clone()) for t in w]
    alone = [torch.nn.Parameter(t.clone()) for t in w]
    opt = getattr(ft.optim, name)(mixed, implementation=impl, **kw)
    per_dtype = [
        getattr(ft.optim, name)([p for p in alone if p.dtype == d], implementation=impl, **kw)
        for d in (F32, F64, BF16)
    ]
    for s in range(STEPS):
        g = _grads(s, lazy=True)
        _set(mixed, g)
        _set(alone, g)
        opt.step()
        for o in per_dtype:
            o.step()
        _assert_equal_params(mixed, alone, f"{case}/{impl} step {s}")


LAMB_KW = dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1)


@pytest.mark.parametrize("impl", ["foreach", "reference", "auto"])
@pytest.mark.parametrize("lazy", [False, True], ids=["all_grads", "lazy"])
def test_lamb_mixed_group_steps_each_tensor_as_single_dtype_groups(impl, lazy):
    w = _weights()
    mixed = [torch.nn.Parameter(t.clone()) for t in w]
    alone = [torch.nn.Parameter(t.clone()) for t in w]
    opt = ft.optim.LAMB(mixed, implementation=impl, **LAMB_KW)
    singles = [ft.optim.LAMB([p], implementation=impl, **LAMB_KW) for p in alone]
    for s in range(STEPS):
        g = _grads(s, lazy=lazy)
        _set(mixed, g)
        _set(alone, g)
        opt.step()
        for o in singles:
            o.step()
        _assert_equal_params(mixed, alone, f"LAMB/{impl} step {s}")
    sa = opt.state_dict()["state"]
    for i, o in enumerate(singles):
        so = o.state_dict()["state"]
        if not so:
            assert i not in sa
            continue
        assert float(sa[i]["step"]) == float(so[0]["step"])
        for n in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[i][n], so[0][n])


def test_lamb_mixed_state_dict_round_trip():
    w = _weights()
    a = [torch.nn.Parameter(t.clone()) for t in w]
    b = [torch.nn.Parameter(t.clone()) for t in w]
    oa = ft.optim.LAMB(a, **LAMB_KW)
    ob = ft.optim.LAMB(b, **LAMB_KW)
    for s in range(STEPS):
        g = _grads(s, lazy=True)
        _set(a, g)
        _set(b, g)
        oa.step()
        ob.step()
        if s == 2:
            sd = ob.state_dict()
            ob = ft.optim.LAMB(b, **LAMB_KW)
            ob.load_state_dict(sd)
    _assert_equal_params(a, b, "LAMB round trip")
