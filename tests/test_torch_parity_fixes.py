"""Issue #15 small fixes, each checked against torch: losses under autocast
(dtype and value equal torch.nn.functional's), unbatched cross entropy,
Module.to(dtype), accuracy on one-hot targets, GradScaler skip reporting and
Kaun's schedule as lr."""

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import losses as L
from ferrotorch.metrics import accuracy
from ferrotorch.nn import Linear

DTYPES = [torch.bfloat16, torch.float16]


def _inputs(device, dtype):
    """A low-precision prediction made under autocast and float32 targets."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g).to(device)
    w = torch.randn(4, 5, generator=g).to(device)
    with torch.autocast(device, dtype=dtype):
        pred = F.linear(x, w)  # autocast's lower-precision output
    assert pred.dtype == dtype
    t = torch.randn(6, 4, generator=g).to(device)
    return pred, t


# (name, ferrotorch fn, torch fn, target maker(pred, t), extra kwargs)
CASES = [
    ("mse", L.mse_loss, F.mse_loss, lambda p, t: t, {}),
    ("l1", L.l1_loss, F.l1_loss, lambda p, t: t, {}),
    ("smooth_l1", L.smooth_l1_loss, F.smooth_l1_loss, lambda p, t: t, {"beta": 0.5}),
    ("huber", L.huber_loss, F.huber_loss, lambda p, t: t, {"delta": 0.7}),
    ("poisson_nll", L.poisson_nll_loss, F.poisson_nll_loss, lambda p, t: t.abs(), {}),
    ("ce_soft", L.cross_entropy_loss, F.cross_entropy, lambda p, t: t.softmax(1), {}),
    ("ce_index", L.cross_entropy_loss, F.cross_entropy, lambda p, t: t.argmax(1), {}),
    ("ce_sparse", L.cross_entropy_sparse, F.cross_entropy, lambda p, t: t.argmax(1), {}),
    (
        "bce_logits",
        L.bce_with_logits_loss,
        F.binary_cross_entropy_with_logits,
        lambda p, t: (t > 0).float(),
        {},
    ),
    ("kl_div", L.kl_div_loss, F.kl_div, lambda p, t: t.softmax(1), {"reduction": "batchmean"}),
    ("hinge", L.hinge_embedding_loss, F.hinge_embedding_loss, lambda p, t: t.sign(), {}),
]


def _check(device, dtype, fn, ref, make_target, kw, pred_fn=lambda p: p):
    pred, t = _inputs(device, dtype)
    pred = pred_fn(pred)
    target = make_target(pred, t)
    with torch.autocast(device, dtype=dtype):
        try:
            want = ref(pred, target, **kw)
        except Exception as exc:  # torch refuses: so must we
            with pytest.raises((RuntimeError, ft.Error)):
                fn(pred, target, **kw)
            return type(exc)
        got = fn(pred, target, **kw)
    assert got.dtype == want.dtype
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    return None


def _run_all(device):
    for dtype in DTYPES:
        for _name, fn, ref, mk, kw in CASES:
            _check(device, dtype, fn, ref, mk, kw)
        # log-probabilities, probabilities: built from the autocast output.
        _check(
            device, dtype, L.nll_loss, F.nll_loss, lambda p, t: t.argmax(1), {}, lambda p: p.log_softmax(1)
        )
        _check(
            device, dtype, L.bce_loss, F.binary_cross_entropy, lambda p, t: (t > 0).float(), {}, torch.sigmoid
        )


def test_losses_under_cpu_autocast_equal_functional():
    _run_all("cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_losses_under_cuda_autocast_equal_functional():
    _run_all("cuda")


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_input_losses_under_autocast(dtype):
    pred, t = _inputs("cpu", dtype)
    a, b = pred, t
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, 1.0])
    with torch.autocast("cpu", dtype=dtype):
        for fn, ref in [(L.cosine_embedding_loss, F.cosine_embedding_loss)]:
            got, want = fn(a, b, y), ref(a, b, y)
            assert got.dtype == want.dtype
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        got = L.margin_ranking_loss(a[:, 0], b[:, 0], y)
        want = F.margin_ranking_loss(a[:, 0], b[:, 0], y)
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        got = L.triplet_margin_loss(a, b, b.flip(0))
        want = F.triplet_margin_loss(a, b, b.flip(0))
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_classes_under_autocast(dtype):
    pred, t = _inputs("cpu", dtype)
    with torch.autocast("cpu", dtype=dtype):
        for cls, ref, target in [
            (L.MSELoss(), F.mse_loss, t),
            (L.L1Loss(), F.l1_loss, t),
            (L.SmoothL1Loss(), F.smooth_l1_loss, t),
            (L.HuberLoss(), F.huber_loss, t),
            (L.CrossEntropyLoss(), F.cross_entropy, t.softmax(1)),
            (L.BCEWithLogitsLoss(), F.binary_cross_entropy_with_logits, (t > 0).float()),
        ]:
            want = ref(pred, target)
            for got in (cls.compute(pred, target), cls(pred, target)):
                assert got.dtype == want.dtype
                torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_mixed_dtypes_outside_autocast_still_an_error():
    pred, t = _inputs("cpu", torch.bfloat16)
    with pytest.raises(ft.DTypeError, match="bfloat16"):
        L.mse_loss(pred, t)


def test_autocast_loss_gradients_equal_torch():
    pred, t = _inputs("cpu", torch.bfloat16)
    p1 = pred.detach().requires_grad_()
    p2 = pred.detach().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        L.mse_loss(p1, t).backward()
        F.mse_loss(p2, t).backward()
    assert p1.grad.dtype == p2.grad.dtype == torch.bfloat16
    torch.testing.assert_close(p1.grad, p2.grad, rtol=0, atol=0)


# ---------------------------------------------------------------- unbatched CE


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_unbatched_cross_entropy_equals_torch(smoothing):
    torch.manual_seed(1)
    logits = torch.randn(7, dtype=torch.float64, requires_grad=True)
    for target in (torch.tensor(3), torch.randn(7, dtype=torch.float64).softmax(0)):
        got = L.cross_entropy_loss(logits, target, label_smoothing=smoothing)
        want = F.cross_entropy(logits, target, label_smoothing=smoothing)
        torch.testing.assert_close(got, want)
        (g1,) = torch.autograd.grad(got, logits)
        (g2,) = torch.autograd.grad(want, logits)
        torch.testing.assert_close(g1, g2)
    lp = logits.log_softmax(0)
    torch.testing.assert_close(L.nll_loss(lp, torch.tensor(2)), F.nll_loss(lp, torch.tensor(2)))
    with pytest.raises(ft.ShapeError):
        L.cross_entropy_loss(logits, torch.tensor([1, 2]))


# ---------------------------------------------------------------- Module.to(dtype)


def test_module_to_dtype_matches_torch():
    m = Linear(3, 2)
    ref = torch.nn.Linear(3, 2)
    with torch.no_grad():
        ref.weight.copy_(m.weight)
        ref.bias.copy_(m.bias)
    handle = m.weight
    assert m.to(torch.float64) is m
    ref.to(torch.float64)
    assert m.weight.dtype == ref.weight.dtype == torch.float64
    assert m.weight.data_ptr() == handle.data_ptr()  # same handle, new data
    x = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(m(x), ref(x))
    m.to("cpu", torch.float32)
    ref.to("cpu", torch.float32)
    assert m.weight.dtype == torch.float32
    m.to(dtype=torch.bfloat16)
    assert m.weight.dtype == torch.bfloat16
    m.to(torch.zeros(1, dtype=torch.float64))
    assert m.weight.dtype == torch.float64
    m.to(device=torch.device("cpu"), dtype=torch.float32)
    assert m.weight.dtype == torch.float32
    assert m.weight is handle  # torch's Module.to keeps the parameter objects
    with pytest.raises(TypeError, match="floating point"):  # torch's own refusal (a layer is a torch module)
        m.to(torch.int64)


# ---------------------------------------------------------------- accuracy


def test_accuracy_with_one_hot_or_probability_targets_is_class_accuracy():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 2.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 2, 2, 1])
    want = (logits.argmax(1) == labels).double().mean().item()
    assert want == 0.5
    assert accuracy(logits, labels) == want
    assert accuracy(logits, F.one_hot(labels, 3)) == want
    assert accuracy(logits, F.one_hot(labels, 3).float()) == want
    soft = F.one_hot(labels, 3).float() * 0.8 + 0.2 / 3
    assert accuracy(logits, soft) == want
    # binary probabilities keep the 0.5 threshold (one column or flat)
    prob = torch.tensor([0.9, 0.2, 0.7])
    assert accuracy(prob, torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)


# ---------------------------------------------------------------- GradScaler


def test_grad_scaler_reports_skipped_steps():
    for impl in ("fused", "foreach"):
        w = torch.nn.Parameter(torch.ones(3))
        tw = torch.nn.Parameter(torch.ones(3))
        opt = ft.optim.SGD([w], 0.1, implementation=impl)
        ref_opt = torch.optim.SGD([tw], lr=0.1)
        scaler = ft.GradScaler(init_scale=4.0)
        tscaler = torch.amp.GradScaler("cpu", init_scale=4.0)
        assert scaler.last_found_inf() is None and scaler.last_step_skipped() is False
        for bad in (False, True, False, True):
            c = torch.full((3,), float("inf") if bad else 1.0)
            before = w.detach().clone()
            opt.zero_grad()
            scaler.scale((w * c).sum()).backward()
            scaler.step(opt)
            flag = scaler.last_found_inf()
            assert flag.dim() == 0 and (flag.item() != 0) == bad
            assert scaler.last_step_skipped() is bad
            assert torch.equal(w.detach(), before) is bad
            scaler.update()
            # torch's scaler on torch's SGD takes the same decision
            ref_opt.zero_grad()
            tscaler.scale((tw * c).sum()).backward()
            tscaler.step(ref_opt)
            tscaler.update()
            torch.testing.assert_close(w, tw)
            assert scaler.get_scale() == tscaler.get_scale()


# ---------------------------------------------------------------- schedule as lr


def test_kaun_schedule_as_lr_equals_torch_lambda_lr():
    sched = ft.schedule.cosine_decay(0.1, 10)
    w1 = torch.nn.Parameter(torch.arange(4.0))
    w2 = torch.nn.Parameter(torch.arange(4.0))
    opt = ft.optim.SGD([w1], lr=sched, momentum=0.9)
    assert opt.lr == pytest.approx(sched(1))
    ref = torch.optim.SGD([w2], lr=1.0, momentum=0.9)
    # Kaun's first update sees step 1; LambdaLR's first epoch is 0.
    lam = torch.optim.lr_scheduler.LambdaLR(ref, lambda e: sched(e + 1))
    for _ in range(12):
        for w, o in ((w1, opt), (w2, ref)):
            o.zero_grad()
            (w**2).sum().backward()
            o.step()
        lam.step()
        torch.testing.assert_close(w1, w2)
    # Python callables work too; like floDl's calculators they count from 0
    p = torch.nn.Parameter(torch.ones(2))
    opt2 = ft.optim.SGD([p], lr=lambda s: 0.5 * (s + 1))
    assert opt2.lr == pytest.approx(0.5)
    for k in range(1, 4):
        p.grad = torch.ones(2)
        before = p.detach().clone()
        opt2.step()
        torch.testing.assert_close(before - p.detach(), torch.full((2,), 0.5 * k))


def test_schedule_lr_rejects_non_schedules():
    with pytest.raises(ft.ConfigError):
        ft.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr="fast")
