"""GradScaler equals torch.amp.GradScaler step by step; autocast, AutocastGuard,
cast_parameters and no_grad behave as torch's."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ferrotorch as ft

ROOT = Path(__file__).resolve().parent.parent

# Steps (0-based) whose gradients get an inf or a nan injected after backward.
INJECT = {4: "inf", 5: "nan", 11: "inf", 20: "nan", 21: "inf", 22: "inf", 37: "nan", 50: "inf"}
STEPS = 60


def _model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _batches(n):
    g = torch.Generator().manual_seed(123)
    return [(torch.randn(16, 5, generator=g), torch.randn(16, 2, generator=g)) for _ in range(n)]


def _inject(model, kind):
    g = next(iter(model.parameters())).grad
    g.view(-1)[3] = float("inf") if kind == "inf" else float("nan")


def _autocast_ctx(which, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    if which == "ours":
        return ft.autocast(dtype, device_type="cpu")
    return torch.autocast("cpu", dtype=dtype)


def _run_pair(make_ours, make_ref, dtype=None, ours_torch_opt=False):
    """Trains two identical models, ours with ft.GradScaler, the reference
    with torch.amp.GradScaler, and compares after every step."""
    m_ours, m_ref = _model(0), _model(0)
    opt_ours, opt_ref = make_ours(list(m_ours.parameters())), make_ref(list(m_ref.parameters()))
    kw = dict(init_scale=2.0**12, growth_factor=2.0, backoff_factor=0.5, growth_interval=3)
    s_ours = ft.GradScaler(**kw)
    s_ref = torch.amp.GradScaler("cpu", **kw)
    skipped = 0
    for step, (x, y) in enumerate(_batches(STEPS)):
        for which, m, opt, s in (("ours", m_ours, opt_ours, s_ours), ("ref", m_ref, opt_ref, s_ref)):
            opt.zero_grad()
            with _autocast_ctx(which, dtype):
                out = m(x)
                loss = torch.nn.functional.mse_loss(out.float(), y)
            s.scale(loss).backward()
            if step in INJECT:
                _inject(m, INJECT[step])
            s.step(opt)
            s.update()
        skipped += step in INJECT
        assert s_ours.get_scale() == s_ref.get_scale(), f"scale differs at step {step}"
        assert s_ours._get_growth_tracker() == s_ref._get_growth_tracker(), f"tracker at step {step}"
        for a, b in zip(m_ours.parameters(), m_ref.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=f"params differ at step {step}")
    assert skipped == len(INJECT)
    # The scale moved both ways over the run: it grew and backed off.
    assert s_ref.get_scale() != 2.0**12
    return m_ours, m_ref


def _ft_adam(impl):
    return lambda ps: ft.optim.Adam(ps, lr=1e-2, implementation=impl)


OPTIMIZER_PAIRS = {
    "fused_adam": (_ft_adam("fused"), lambda ps: torch.optim.Adam(ps, lr=1e-2, fused=True)),
    "foreach_adam": (_ft_adam("foreach"), lambda ps: torch.optim.Adam(ps, lr=1e-2, foreach=True)),
    "foreach_sgd": (
        lambda ps: ft.optim.SGD(ps, lr=0.05, momentum=0.9, implementation="foreach"),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, foreach=True),
    ),
    "fused_adamw": (
        lambda ps: ft.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, implementation="fused"),
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, fused=True),
    ),
    "torch_sgd": (
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    ),
}


@pytest.mark.parametrize("name", list(OPTIMIZER_PAIRS))
def test_grad_scaler_matches_torch(name):
    make_ours, make_ref = OPTIMIZER_PAIRS[name]
    _run_pair(make_ours, make_ref)


@pytest.mark.parametrize("name", ["fused_adam", "foreach_sgd", "torch_sgd"])
def test_grad_scaler_matches_torch_bf16_autocast(name):
    make_ours, make_ref = OPTIMIZER_PAIRS[name]
    _run_pair(make_ours, make_ref, dtype=torch.bfloat16)


def test_grad_scaler_matches_torch_fp16_autocast():
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            y = torch.nn.Linear(2, 2)(torch.randn(1, 2))
        if y.dtype != torch.float16:
            pytest.skip("float16 autocast on CPU is a no-op in this torch")
    except RuntimeError as e:  # pragma: no cover - depends on the torch build
        pytest.skip(f"float16 autocast on CPU unsupported: {e}")
    make_ours, make_ref = OPTIMIZER_PAIRS["fused_adam"]
    _run_pair(make_ours, make_ref, dtype=torch.float16)


def test_fused_step_state_counts_only_taken_steps():
    # torch's fused Adam undoes the step counter on a skipped step; so must we.
    p = torch.ones(3, requires_grad=True)
    opt = ft.optim.Adam([p], lr=1e-2, implementation="fused")
    s = ft.GradScaler(init_scale=4.0)
    for kind in ["ok", "inf", "ok"]:
        opt.zero_grad()
        s.scale((p * 1.0).sum()).backward()
        if kind == "inf":
            p.grad.view(-1)[0] = float("inf")
        s.step(opt)
        s.update()
    assert opt.state_dict()["state"][0]["step"].item() == 2.0


def test_unscale_then_clip_then_step_matches_torch():
    m_ours, m_ref = _model(1), _model(1)
    o_ours = ft.optim.Adam(m_ours.parameters(), lr=1e-2, implementation="fused")
    o_ref = torch.optim.Adam(m_ref.parameters(), lr=1e-2, fused=True)
    s_ours, s_ref = (
        ft.GradScaler(init_scale=256.0, growth_interval=2),
        torch.amp.GradScaler("cpu", init_scale=256.0, growth_interval=2),
    )
    for step, (x, y) in enumerate(_batches(12)):
        for m, o, s, clip in (
            (m_ours, o_ours, s_ours, ft.clip_grad_norm),
            (m_ref, o_ref, s_ref, torch.nn.utils.clip_grad_norm_),
        ):
            o.zero_grad()
            s.scale(torch.nn.functional.mse_loss(m(x), y)).backward()
            if step == 6:
                _inject(m, "inf")
            s.unscale_(o)
            clip(list(m.parameters()), 0.5)
            s.step(o)
            s.update()
        assert s_ours.get_scale() == s_ref.get_scale()
        for a, b in zip(m_ours.parameters(), m_ref.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_grad_scaler_update_growth():
    p = torch.zeros(2, requires_grad=True)
    s = ft.GradScaler(init_scale=100.0, growth_interval=3)
    s.load_state_dict(
        {
            "scale": 100.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 3,
            "_growth_tracker": 2,
        }
    )
    s.scale((p * torch.tensor([1.0, 2.0])).sum()).backward()
    assert s.step([p], lambda: None) is True
    s.update()
    assert s.get_scale() == 200.0
    assert s._get_growth_tracker() == 0


def test_grad_scaler_backoff_and_flodl_step_skips():
    p = torch.zeros(2, requires_grad=True)
    s = ft.GradScaler(init_scale=100.0, growth_interval=3)
    s.scale(p.sum()).backward()
    p.grad[0] = float("inf")
    called = []
    assert s.step([p], lambda: called.append(1)) is False
    assert called == []
    s.update()
    assert s.get_scale() == 50.0
    assert s._get_growth_tracker() == 0
    # A clean step runs step_fn with unscaled gradients.
    p.grad = None
    s.scale((p * torch.tensor([3.0, 4.0])).sum()).backward()
    seen = []
    assert s.step([p], lambda: seen.append(p.grad.clone())) is True
    torch.testing.assert_close(seen[0], torch.tensor([3.0, 4.0]), rtol=0, atol=0)
    s.update()
    assert s._get_growth_tracker() == 1


def test_flodl_step_returns_false_on_nan_with_optimizer_step():
    p = torch.ones(3, requires_grad=True)
    opt = ft.optim.SGD([p], lr=0.1)
    s = ft.GradScaler()
    s.scale(p.sum()).backward()
    p.grad[1] = float("nan")
    assert s.step([p], opt.step) is False
    torch.testing.assert_close(p.detach(), torch.ones(3))


def test_state_dict_round_trip_with_torch():
    ref = torch.amp.GradScaler(
        "cpu", init_scale=512.0, growth_interval=7, growth_factor=3.0, backoff_factor=0.25
    )
    ref.scale(torch.ones(()))
    ref._scale.fill_(1024.0)
    ref._growth_tracker.fill_(5)
    ours = ft.GradScaler()
    ours.load_state_dict(ref.state_dict())
    assert ours.state_dict() == ref.state_dict()
    assert ours.get_scale() == 1024.0 and ours._get_growth_tracker() == 5
    assert ours.get_growth_interval() == 7 and ours.get_growth_factor() == 3.0
    # And back: ours -> torch, after some steps.
    p = torch.zeros(2, requires_grad=True)
    for _ in range(4):
        p.grad = None
        ours.scale((p * 2.0).sum()).backward()
        ours.step([p], lambda: None)
        ours.update()
    back = torch.amp.GradScaler("cpu")
    back.load_state_dict(ours.state_dict())
    assert back.state_dict() == ours.state_dict()
    assert set(ours.state_dict()) == {
        "scale",
        "growth_factor",
        "backoff_factor",
        "growth_interval",
        "_growth_tracker",
    }
    assert isinstance(ours.state_dict()["_growth_tracker"], int)


def test_state_dict_continues_identically():
    # Save mid-run from torch, load into ours, continue both: same scales.
    ref = torch.amp.GradScaler("cpu", init_scale=64.0, growth_interval=2)
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        ref.scale(p.sum()).backward()
        ref.step(opt)
        ref.update()
    ours = ft.GradScaler()
    ours.load_state_dict(ref.state_dict())
    q = p.detach().clone().requires_grad_(True)
    opt_q = torch.optim.SGD([q], lr=0.1)
    for step in range(6):
        for s, t, o in ((ref, p, opt), (ours, q, opt_q)):
            o.zero_grad()
            s.scale(t.sum()).backward()
            if step == 3:
                t.grad[0] = float("inf")
            s.step(o)
            s.update()
        assert ours.get_scale() == ref.get_scale()
        torch.testing.assert_close(q, p, rtol=0, atol=0)


def test_load_state_dict_errors():
    s = ft.GradScaler()
    with pytest.raises(ft.TorchError, match="empty"):
        s.load_state_dict({})
    with pytest.raises(ft.TagError, match="_growth_tracker"):
        s.load_state_dict({"scale": 1.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 3})
    with pytest.raises(ft.ConfigError, match="growth_factor"):
        s.load_state_dict(
            {
                "scale": 1.0,
                "growth_factor": 0.5,
                "backoff_factor": 0.5,
                "growth_interval": 3,
                "_growth_tracker": 0,
            }
        )


def test_disabled_is_pass_through():
    s = ft.GradScaler(enabled=False)
    assert not s.is_enabled()
    loss = torch.tensor(3.0, requires_grad=True)
    assert s.scale(loss) is loss
    p = torch.ones(2, requires_grad=True)
    p.grad = torch.tensor([float("inf"), 1.0])
    opt = torch.optim.SGD([p], lr=0.1)
    s.unscale_(opt)
    assert torch.isinf(p.grad[0])  # untouched
    s.step(opt)  # steps even with inf, as torch's disabled scaler
    assert torch.isinf(p[0])
    s.update()
    assert s.get_scale() == 1.0
    assert s.state_dict() == {}
    s.load_state_dict({})  # a no-op
    called = []
    assert s.step([p], lambda: called.append(1)) is True and called == [1]
    ref = torch.amp.GradScaler("cpu", enabled=False)
    assert ref.state_dict() == s.state_dict() and ref.get_scale() == s.get_scale()


def test_step_returns_optimizer_result_and_none_when_skipped():
    class Opt:
        def __init__(self, p):
            self.param_groups = [{"params": [p]}]

        def step(self, *args, **kwargs):
            return ("stepped", args, kwargs)

    p = torch.zeros(2, requires_grad=True)
    opt = Opt(p)
    s = ft.GradScaler()
    s.scale(p.sum()).backward()
    assert s.step(opt, 1, k=2) == ("stepped", (1,), {"k": 2})
    s.update()
    p.grad[0] = float("inf")
    s.scale(p.sum()).backward()
    assert s.step(opt) is None
    with pytest.raises(ft.TorchError, match="already been called"):
        s.step(opt)
    s.update()
    s.scale(p.sum()).backward()
    with pytest.raises(ft.TorchError, match="Closure"):
        s.step(opt, closure=lambda: 0)


def test_scale_containers_match_torch():
    ours, ref = ft.GradScaler(init_scale=8.0), torch.amp.GradScaler("cpu", init_scale=8.0)
    a, b = torch.tensor([1.0, 2.0]), torch.tensor(3.0)
    for x in (a, [a, b], (a, [b])):
        o, r = ours.scale(x), ref.scale(x)
        assert type(o) is type(r)
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    bf = torch.tensor([1.5], dtype=torch.bfloat16)
    assert ours.scale(bf).dtype == ref.scale(bf).dtype == torch.bfloat16
    with pytest.raises(ft.InputTypeError, match="outputs"):
        ours.scale(3.0)


def test_order_errors_like_torch():
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    s = ft.GradScaler()
    with pytest.raises(ft.TorchError, match="scale"):
        s.unscale_(opt)
    s.scale(p.sum()).backward()
    s.unscale_(opt)
    with pytest.raises(ft.TorchError, match="already been called"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(ft.TorchError, match="after step"):
        s.unscale_(opt)
    s.update()
    with pytest.raises(ft.TorchError, match="no inf checks"):
        s.update()
    q = torch.zeros(1, requires_grad=True)
    with pytest.raises(ft.TorchError, match="no inf checks"):
        s.step(torch.optim.SGD([q], lr=0.1))


def test_fp16_grads_refused_like_torch():
    p = torch.zeros(2, dtype=torch.float16, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    s = ft.GradScaler()
    s.scale(p.float().sum()).backward()
    with pytest.raises(ValueError, match="FP16"):
        s.unscale_(opt)


def test_bad_config():
    with pytest.raises(ft.ConfigError, match="growth_factor"):
        ft.GradScaler(growth_factor=1.0)
    with pytest.raises(ft.ConfigError, match="backoff_factor"):
        ft.GradScaler(backoff_factor=1.0)
    with pytest.raises(ft.ConfigError, match="growth_interval"):
        ft.GradScaler(growth_interval=0)
    with pytest.raises(ft.ConfigError, match="device"):
        ft.GradScaler(device="tpu")
    ft.GradScaler(growth_factor=1.0, enabled=False)  # not validated when disabled, as torch


def test_update_new_scale():
    p = torch.zeros(1, requires_grad=True)
    s = ft.GradScaler(init_scale=16.0)
    s.scale(p.sum()).backward()
    s.step([p], lambda: None)
    s.update(3.0)
    assert s.get_scale() == 3.0
    s.update(torch.tensor([5.0]))
    assert s.get_scale() == 5.0
    assert ft.GradScaler(device="cpu")._get_scale_async().item() == 65536.0


# ---- autocast & friends -------------------------------------------------


def test_autocast_context_matches_torch():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = torch.mm(a, b)
    assert not ft.is_autocast_enabled("cpu")
    with ft.autocast(torch.bfloat16, device_type="cpu") as g:
        assert isinstance(g, ft.AutocastGuard)
        assert ft.is_autocast_enabled("cpu") and torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        ours = torch.mm(a, b)
        with ft.autocast(torch.float16, device_type="cpu", enabled=False):
            assert not torch.is_autocast_enabled("cpu")
            assert torch.mm(a, b).dtype == torch.float32
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert ours.dtype == torch.bfloat16
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    assert not ft.is_autocast_enabled("cpu")
    assert torch.mm(a, b).dtype == torch.float32


def test_autocast_fn_form_and_restore_on_error():
    a = torch.randn(3, 3)
    y = ft.autocast(torch.bfloat16, lambda: a @ a, device_type="cpu")
    assert y.dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")

    def boom():
        raise KeyError("x")

    with pytest.raises(KeyError):
        ft.autocast(torch.bfloat16, boom, device_type="cpu")
    assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(KeyError):
        with ft.AutocastGuard(torch.bfloat16, device_type="cpu"):
            raise KeyError("y")
    assert not torch.is_autocast_enabled("cpu")
    assert torch.get_autocast_dtype("cpu") == torch.bfloat16  # torch's CPU default


def test_autocast_inside_torch_autocast_restores_outer():
    with torch.autocast("cpu", dtype=torch.float16):
        with ft.autocast("bfloat16", device_type="cpu"):
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert torch.get_autocast_dtype("cpu") == torch.float16
        assert torch.is_autocast_enabled("cpu")


def test_autocast_bad_args():
    with pytest.raises(ft.ConfigError, match="float16 or bfloat16"):
        ft.autocast(torch.float32, device_type="cpu")
    with pytest.raises(ft.ConfigError, match="device_type"):
        ft.autocast(torch.bfloat16, device_type="tpu")
    with pytest.raises(ft.DTypeError, match="dtype"):
        ft.autocast(torch.int32, device_type="cpu")
    with pytest.raises(ft.InputTypeError, match="callable"):
        ft.autocast(torch.bfloat16, 3, device_type="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ft.ConfigError, match="CUDA"):
            with ft.autocast(torch.float16, device_type="cuda"):
                pass


def test_cast_parameters_keeps_identity():
    m = torch.nn.Linear(3, 2)
    w, b = m.weight, m.bias
    m.weight.grad = torch.ones(2, 3)
    expected = m.weight.detach().to(torch.bfloat16)
    ft.cast_parameters(m.parameters(), torch.bfloat16)
    assert m.weight is w and m.bias is b
    assert w.dtype == torch.bfloat16 and b.dtype == torch.bfloat16
    assert w.requires_grad and w.is_leaf
    assert w.grad.dtype == torch.bfloat16
    torch.testing.assert_close(w.detach(), expected, rtol=0, atol=0)
    m(torch.randn(4, 3, dtype=torch.bfloat16)).sum().backward()  # still trains
    # Already in dtype: untouched (same storage).
    ptr = w.data_ptr()
    ft.cast_parameters([w], torch.bfloat16)
    assert w.data_ptr() == ptr
    with pytest.raises(ft.DTypeError, match="dtype"):
        ft.cast_parameters([w], torch.int64)
    with pytest.raises(ft.DTypeError, match=r"params\[0\]"):
        ft.cast_parameters([torch.zeros(2, dtype=torch.int64)], torch.float32)


def test_no_grad():
    x = torch.ones(2, requires_grad=True)
    with ft.no_grad():
        assert not torch.is_grad_enabled()
        y = x * 2
    assert not y.requires_grad and torch.is_grad_enabled()
    z = ft.no_grad(lambda: x * 3)
    assert not z.requires_grad

    @ft.no_grad()
    def f():
        return x * 4

    assert not f().requires_grad
    with pytest.raises(ft.InputTypeError):
        ft.no_grad(3)


def test_mixed_precision_example_runs():
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mixed_precision.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(ft.__file__).resolve().parent.parent)},
    )
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("step")]
    assert len(lines) >= 5
    first, last = float(lines[0].split("loss")[1].split()[0]), float(lines[-1].split("loss")[1].split()[0])
    assert last < first


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CUDA-less path")
def test_a_cuda_scaler_without_cuda_warns_and_runs_disabled_as_torchs():
    with pytest.warns(UserWarning, match="CUDA is not available.  Disabling."):
        s = ft.GradScaler(device="cuda", growth_factor=0.5)  # disabled: options are not checked
    with pytest.warns(UserWarning, match="CUDA is not available.  Disabling."):
        t = torch.amp.GradScaler("cuda")
    assert not s.is_enabled() and not t.is_enabled()
    assert s.state_dict() == t.state_dict() == {}


def test_step_raises_what_the_optimizer_or_step_fn_raised_and_the_scaler_stays_usable():
    p = torch.nn.Parameter(torch.ones(2))

    class Boom(torch.optim.SGD):
        def step(self, closure=None):
            assert s.get_scale() == 8.0  # the scaler is not locked during the user's step
            raise KeyError("from step")

    s = ft.GradScaler(init_scale=8.0)
    opt = Boom([p], lr=0.1)
    s.scale(p.sum()).backward()
    with pytest.raises(KeyError, match="from step"):
        s.step(opt)

    def step_fn():
        raise IndexError("from step_fn")

    with pytest.raises(IndexError, match="from step_fn"):
        s.step([p], step_fn)
    assert s.step([p], lambda: None) is True
