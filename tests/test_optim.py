"""Adam equals torch.optim.Adam step by step; it takes any torch parameters.
(Every optimizer and option against torch, lr controls and bad hyperparameters:
test_optimizers.py.)"""

import pytest
import torch

import ferrotorch as ft
from ferrotorch.optim import Adam


def _problem(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    shapes = [(5, 3), (3,), (4, 5), (1,)]
    init = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    data = [
        (torch.randn(8, 3, generator=g, dtype=dtype), torch.randn(8, 1, generator=g, dtype=dtype))
        for _ in range(7)
    ]
    return init, data


def _loss_simple(ps, x, y):
    w1, b1, w2, b2 = ps  # [5,3] [3] [4,5] [1]
    h = torch.tanh(x @ w1.T)  # [8,5]
    out = (h @ w2.T).sum(1, keepdim=True) + b2 + b1.sum()  # [8,1]
    return ((out - y) ** 2).mean()


def _run(make_opt, steps, dtype=torch.float32, seed=0, skip_grad_every=0):
    init, data = _problem(seed, dtype)
    ps = [t.clone().requires_grad_(True) for t in init]
    opt = make_opt(ps)
    for i in range(steps):
        x, y = data[i % len(data)]
        opt.zero_grad()
        loss = _loss_simple(ps, x, y)
        loss.backward()
        if skip_grad_every and i % skip_grad_every == 0:
            ps[1].grad = None  # a parameter without grad this step is skipped
        opt.step()
    return ps, opt


def test_adam_float64_matches_fused_torch_closely():
    ours, _ = _run(lambda p: Adam(p, 0.01, weight_decay=0.05), 120, dtype=torch.float64)
    ref, _ = _run(
        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.05, fused=True), 120, dtype=torch.float64
    )
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_params_without_grad_are_skipped_like_torch():
    ours, opt = _run(lambda p: Adam(p, 0.01), 30, skip_grad_every=3)
    ref, topt = _run(lambda p: torch.optim.Adam(p, lr=0.01), 30, skip_grad_every=3)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # per-parameter step counts, as torch keeps them
    assert opt.param_state(1)["step"].item() == topt.state[ref[1]]["step"].item() == 20
    assert opt.param_state(0)["step"].item() == 30


def test_state_matches_torch_layout():
    _, opt = _run(lambda p: Adam(p, 0.01), 10)
    ref, topt = _run(lambda p: torch.optim.Adam(p, lr=0.01), 10)
    for i, b in enumerate(ref):
        st, tst = opt.param_state(i), topt.state[b]
        assert st["step"].dtype == torch.float32 and st["step"].item() == 10
        torch.testing.assert_close(st["exp_avg"], tst["exp_avg"], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(st["exp_avg_sq"], tst["exp_avg_sq"], rtol=1e-6, atol=1e-7)


def test_one_step_closed_form():
    # floDl's check: p=[1,2,3,4], g=[.1,.2,.3,.4], lr 1e-3 -> p - lr (bias-corrected first step)
    p = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    p.grad = torch.tensor([0.1, 0.2, 0.3, 0.4])
    opt = Adam([p], 1e-3)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.999, 1.999, 2.999, 3.999]), rtol=0, atol=1e-5)
    st = opt.param_state(0)
    torch.testing.assert_close(st["exp_avg"], 0.1 * p.grad)
    torch.testing.assert_close(st["exp_avg_sq"], 0.001 * p.grad**2)


def test_works_on_plain_torch_module():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    ref.load_state_dict(net.state_dict())
    opt, topt = Adam(net.parameters(), 0.01), torch.optim.Adam(ref.parameters(), lr=0.01)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    for _ in range(50):
        for m, o in ((net, opt), (ref, topt)):
            o.zero_grad()
            torch.nn.functional.mse_loss(m(x), y).backward()
            o.step()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_zero_grad_sets_none():
    p = torch.randn(3, requires_grad=True)
    p.sum().backward()
    opt = Adam([p], 0.1)
    opt.zero_grad()
    assert p.grad is None


def test_empty_and_non_leaf_params_rejected():
    # torch's message ("optimizer got an empty parameter list") under the optimizer's name;
    # a ConfigError is a ValueError, as torch's is
    with pytest.raises(ft.ConfigError, match=r"^Adam: optimizer got an empty parameter list$") as e:
        Adam([], 0.1)
    assert isinstance(e.value, ValueError)
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        torch.optim.Adam([], 0.1)
    a = torch.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter 0 is not a leaf"):
        Adam([a * 2], 0.1)
    with pytest.raises(ft.InputTypeError, match=r"params\[1\]"):
        Adam([a, "w"], 0.1)
    with pytest.raises(ValueError, match="implementation"):
        Adam([a], 0.1, implementation="magic")
