"""Losses equal torch.nn.functional, values and gradients, for every reduction."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
import ferrotorch.losses as L
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.losses import cross_entropy_loss, mse_loss
from ferrotorch.nn import GELU, LayerNorm, Linear
from ferrotorch.optim import Adam

D = torch.float64
REDUCTIONS = ["mean", "sum", "none"]


def _pm1(*shape):
    return torch.randint(0, 2, shape).to(D) * 2 - 1


def _focal_ref(logits, target, alpha=0.25, gamma=2.0, ignore_index=-100, reduction="mean"):
    # Independent of our formulation: -log pt is torch's per-sample cross entropy.
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    loss = alpha * (1 - torch.exp(-ce)) ** gamma * ce
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (target != ignore_index).sum()


def _ctc_inputs():
    T, N, C = 12, 3, 5
    lp = torch.randn(T, N, C, dtype=D).log_softmax(2)
    targets = torch.randint(1, C, (N, 4))
    return [lp, targets, torch.tensor([12, 10, 8]), torch.tensor([4, 3, 2])]


# name -> (ours(inputs, reduction), torch(inputs, reduction), inputs(), indices needing grad)
CASES = {
    "mse": (
        lambda i, r: L.mse_loss(*i, reduction=r),
        lambda i, r: F.mse_loss(*i, reduction=r),
        lambda: [torch.randn(5, 4, dtype=D), torch.randn(5, 4, dtype=D)],
        (0, 1),
    ),
    "l1": (
        lambda i, r: L.l1_loss(*i, reduction=r),
        lambda i, r: F.l1_loss(*i, reduction=r),
        lambda: [torch.randn(5, 4, dtype=D), torch.randn(5, 4, dtype=D)],
        (0, 1),
    ),
    "mae": (
        lambda i, r: L.mae(*i, reduction=r),
        lambda i, r: F.l1_loss(*i, reduction=r),
        lambda: [torch.randn(7, dtype=D), torch.randn(7, dtype=D)],
        (0,),
    ),
    "smooth_l1": (
        lambda i, r: L.smooth_l1_loss(*i, beta=0.5, reduction=r),
        lambda i, r: F.smooth_l1_loss(*i, beta=0.5, reduction=r),
        lambda: [torch.randn(5, 4, dtype=D), torch.randn(5, 4, dtype=D)],
        (0, 1),
    ),
    "huber": (
        lambda i, r: L.huber_loss(*i, delta=0.7, reduction=r),
        lambda i, r: F.huber_loss(*i, delta=0.7, reduction=r),
        lambda: [torch.randn(5, 4, dtype=D) * 2, torch.randn(5, 4, dtype=D)],
        (0, 1),
    ),
    "poisson_log": (
        lambda i, r: L.poisson_nll_loss(*i, reduction=r),
        lambda i, r: F.poisson_nll_loss(*i, reduction=r),
        lambda: [torch.randn(6, 3, dtype=D), torch.poisson(torch.full((6, 3), 2.0, dtype=D))],
        (0,),
    ),
    "poisson_rate_full": (
        lambda i, r: L.poisson_nll_loss(*i, log_input=False, full=True, reduction=r),
        lambda i, r: F.poisson_nll_loss(*i, log_input=False, full=True, reduction=r),
        lambda: [torch.rand(6, 3, dtype=D) + 0.1, torch.poisson(torch.full((6, 3), 3.0, dtype=D))],
        (0,),
    ),
    "cross_entropy": (
        lambda i, r: L.cross_entropy_loss(*i, reduction=r),
        lambda i, r: F.cross_entropy(*i, reduction=r),
        lambda: [torch.randn(8, 5, dtype=D), torch.tensor([0, 4, -100, 2, 1, -100, 3, 0])],
        (0,),
    ),
    "cross_entropy_options": (
        lambda i, r: L.cross_entropy_loss(
            i[0], i[1], weight=i[2], ignore_index=2, label_smoothing=0.15, reduction=r
        ),
        lambda i, r: F.cross_entropy(
            i[0], i[1], weight=i[2], ignore_index=2, label_smoothing=0.15, reduction=r
        ),
        lambda: [torch.randn(8, 5, dtype=D), torch.randint(0, 5, (8,)), torch.rand(5, dtype=D) + 0.5],
        (0,),
    ),
    "cross_entropy_rank4": (
        lambda i, r: L.cross_entropy_loss(i[0], i[1], weight=i[2], reduction=r),
        lambda i, r: F.cross_entropy(i[0], i[1], weight=i[2], reduction=r),
        lambda: [
            torch.randn(2, 3, 4, 5, dtype=D),
            torch.randint(0, 3, (2, 4, 5)).index_fill_(1, torch.tensor([1]), -100),
            torch.tensor([1.0, 2.0, 0.5], dtype=D),
        ],
        (0,),
    ),
    "cross_entropy_probs": (
        lambda i, r: L.cross_entropy_loss(i[0], i[1], weight=i[2], label_smoothing=0.1, reduction=r),
        lambda i, r: F.cross_entropy(i[0], i[1], weight=i[2], label_smoothing=0.1, reduction=r),
        lambda: [
            torch.randn(6, 4, 3, dtype=D),
            torch.randn(6, 4, 3, dtype=D).softmax(1),
            torch.rand(4, dtype=D) + 0.5,
        ],
        (0, 1),
    ),
    "cross_entropy_one_hot": (
        lambda i, r: L.cross_entropy_loss(*i, reduction=r),
        lambda i, r: F.cross_entropy(*i, reduction=r),
        lambda: [torch.randn(6, 4, dtype=D), F.one_hot(torch.randint(0, 4, (6,)), 4).to(D)],
        (0,),
    ),
    "cross_entropy_extreme": (
        lambda i, r: L.cross_entropy_loss(*i, reduction=r),
        lambda i, r: F.cross_entropy(*i, reduction=r),
        lambda: [
            torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=D),
            torch.tensor([1, 2, 0]),
        ],
        (0,),
    ),
    "cross_entropy_sparse": (
        lambda i, r: L.cross_entropy_sparse(*i, ignore_index=1, label_smoothing=0.2, reduction=r),
        lambda i, r: F.cross_entropy(*i, ignore_index=1, label_smoothing=0.2, reduction=r),
        lambda: [torch.randn(8, 5, dtype=D), torch.randint(0, 5, (8,))],
        (0,),
    ),
    "nll": (
        lambda i, r: L.nll_loss(i[0], i[1], weight=i[2], reduction=r),
        lambda i, r: F.nll_loss(i[0], i[1], weight=i[2], reduction=r),
        lambda: [
            torch.randn(8, 5, dtype=D).log_softmax(1),
            torch.tensor([0, 4, -100, 2, 1, 3, 3, 0]),
            torch.rand(5, dtype=D) + 0.5,
        ],
        (0,),
    ),
    "nll_rank3_ignore": (
        lambda i, r: L.nll_loss(*i, ignore_index=0, reduction=r),
        lambda i, r: F.nll_loss(*i, ignore_index=0, reduction=r),
        lambda: [torch.randn(4, 3, 6, dtype=D).log_softmax(1), torch.randint(0, 3, (4, 6))],
        (0,),
    ),
    "bce": (
        lambda i, r: L.bce_loss(i[0], i[1], weight=i[2], reduction=r),
        lambda i, r: F.binary_cross_entropy(i[0], i[1], weight=i[2], reduction=r),
        lambda: [
            torch.rand(6, 4, dtype=D) * 0.98 + 0.01,
            torch.rand(6, 4, dtype=D),
            torch.rand(4, dtype=D),
        ],
        (0,),
    ),
    "bce_zero_targets": (
        lambda i, r: L.bce_loss(*i, reduction=r),
        lambda i, r: F.binary_cross_entropy(*i, reduction=r),
        lambda: [torch.rand(9, dtype=D) * 0.98 + 0.01, torch.zeros(9, dtype=D)],
        (0,),
    ),
    "bce_with_logits": (
        lambda i, r: L.bce_with_logits_loss(i[0], i[1], weight=i[2], pos_weight=i[3], reduction=r),
        lambda i, r: F.binary_cross_entropy_with_logits(
            i[0], i[1], weight=i[2], pos_weight=i[3], reduction=r
        ),
        lambda: [
            torch.randn(6, 4, dtype=D) * 3,
            torch.randint(0, 2, (6, 4)).to(D),
            torch.rand(6, 1, dtype=D),
            torch.rand(4, dtype=D) * 3,
        ],
        (0, 1),
    ),
    "bce_with_logits_extreme": (
        lambda i, r: L.bce_with_logits_loss(*i, reduction=r),
        lambda i, r: F.binary_cross_entropy_with_logits(*i, reduction=r),
        lambda: [torch.tensor([1e4, -1e4, 1e4, -1e4], dtype=D), torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=D)],
        (0,),
    ),
    "focal": (
        lambda i, r: L.focal_loss(*i, reduction=r),
        lambda i, r: _focal_ref(*i, reduction=r),
        lambda: [torch.randn(8, 5, dtype=D), torch.tensor([0, 4, -100, 2, 1, 3, -100, 0])],
        (0,),
    ),
    "focal_options": (
        lambda i, r: L.focal_loss(*i, alpha=0.7, gamma=0.5, ignore_index=3, reduction=r),
        lambda i, r: _focal_ref(*i, alpha=0.7, gamma=0.5, ignore_index=3, reduction=r),
        lambda: [torch.randn(4, 5, 3, dtype=D), torch.randint(0, 5, (4, 3))],
        (0,),
    ),
    "focal_extreme": (
        lambda i, r: L.focal_loss(*i, alpha=1.0, gamma=2.0, reduction=r),
        lambda i, r: _focal_ref(*i, alpha=1.0, gamma=2.0, reduction=r),
        lambda: [torch.tensor([[1e4, -1e4, 0.0], [-1e4, 5.0, 1e4]], dtype=D), torch.tensor([1, 2])],
        (0,),
    ),
    "kl_div": (
        lambda i, r: L.kl_div_loss(*i, reduction=r),
        lambda i, r: F.kl_div(*i, reduction=r),
        lambda: [
            torch.randn(5, 4, dtype=D).log_softmax(1),
            torch.cat([torch.zeros(5, 1, dtype=D), torch.randn(5, 3, dtype=D).softmax(1)], 1),
        ],
        (0,),  # d/d(target) is NaN at the zero targets (log 0), in torch too
    ),
    "kl_div_log_target": (
        lambda i, r: L.kl_div_loss(*i, reduction=r, log_target=True),
        lambda i, r: F.kl_div(*i, reduction=r, log_target=True),
        lambda: [torch.randn(5, 4, dtype=D).log_softmax(1), torch.randn(5, 4, dtype=D).log_softmax(1)],
        (0, 1),
    ),
    "ctc": (
        lambda i, r: L.ctc_loss(*i, reduction=r),
        lambda i, r: F.ctc_loss(*i, reduction=r),
        _ctc_inputs,
        (0,),
    ),
    "ctc_blank_last_lists": (
        lambda i, r: L.ctc_loss(i[0], i[1] - 1, i[2].tolist(), i[3].tolist(), blank=4, reduction=r),
        lambda i, r: F.ctc_loss(i[0], i[1] - 1, i[2], i[3], blank=4, reduction=r),
        _ctc_inputs,
        (0,),
    ),
    "triplet": (
        lambda i, r: L.triplet_margin_loss(*i, reduction=r),
        lambda i, r: F.triplet_margin_loss(*i, reduction=r),
        lambda: [torch.randn(6, 8, dtype=D) for _ in range(3)],
        (0, 1, 2),
    ),
    "triplet_options": (
        lambda i, r: L.triplet_margin_loss(*i, margin=2.0, p=1.0, eps=1e-3, swap=True, reduction=r),
        lambda i, r: F.triplet_margin_loss(*i, margin=2.0, p=1.0, eps=1e-3, swap=True, reduction=r),
        lambda: [torch.randn(6, 8, dtype=D) for _ in range(3)],
        (0, 1, 2),
    ),
    "cosine_embedding": (
        lambda i, r: L.cosine_embedding_loss(*i, margin=0.2, reduction=r),
        lambda i, r: F.cosine_embedding_loss(*i, margin=0.2, reduction=r),
        lambda: [torch.randn(7, 5, dtype=D), torch.randn(7, 5, dtype=D), _pm1(7)],
        (0, 1),
    ),
    "cosine_embedding_unbatched": (
        lambda i, r: L.cosine_embedding_loss(*i, reduction=r),
        lambda i, r: F.cosine_embedding_loss(*i, reduction=r),
        lambda: [torch.randn(5, dtype=D), torch.randn(5, dtype=D), torch.tensor(-1.0, dtype=D)],
        (0, 1),
    ),
    "hinge_embedding": (
        lambda i, r: L.hinge_embedding_loss(*i, margin=0.5, reduction=r),
        lambda i, r: F.hinge_embedding_loss(*i, margin=0.5, reduction=r),
        lambda: [torch.randn(10, dtype=D), _pm1(10)],
        (0,),
    ),
    "margin_ranking": (
        lambda i, r: L.margin_ranking_loss(*i, margin=0.3, reduction=r),
        lambda i, r: F.margin_ranking_loss(*i, margin=0.3, reduction=r),
        lambda: [torch.randn(10, dtype=D), torch.randn(10, dtype=D), _pm1(10)],
        (0, 1),
    ),
}


def _run(fn, inputs, grads, r):
    xs = [t.detach().clone().requires_grad_(k in grads) for k, t in enumerate(inputs)]
    out = fn(xs, r)
    return out, xs


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_matches_torch(case, reduction):
    ours_fn, ref_fn, make, grads = CASES[case]
    inputs = make()
    ours, xs = _run(ours_fn, inputs, grads, reduction)
    ref, rs = _run(ref_fn, inputs, grads, reduction)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(ours).all()
    upstream = torch.randn_like(ref)
    ours.backward(upstream)
    ref.backward(upstream)
    for k in grads:
        assert xs[k].grad is not None, f"no gradient for input {k}"
        torch.testing.assert_close(xs[k].grad, rs[k].grad, rtol=1e-10, atol=1e-12)


def test_kl_div_defaults_to_batchmean():
    x = torch.randn(4, 6, dtype=D).log_softmax(1)
    t = torch.randn(4, 6, dtype=D).softmax(1)
    torch.testing.assert_close(L.kl_div_loss(x, t), F.kl_div(x, t, reduction="batchmean"))
    torch.testing.assert_close(
        L.kl_div_loss(x, t, reduction="batchmean"), F.kl_div(x, t, reduction="sum") / 4
    )
    torch.testing.assert_close(L.KLDivLoss()(x, t), F.kl_div(x, t, reduction="batchmean"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_and_float64(dtype):
    logits = torch.randn(16, 7, dtype=dtype, requires_grad=True)
    target = torch.randint(0, 7, (16,))
    l2 = logits.detach().clone().requires_grad_(True)
    ours, ref = (
        cross_entropy_loss(logits, target, label_smoothing=0.1),
        F.cross_entropy(l2, target, label_smoothing=0.1),
    )
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(logits.grad, l2.grad)


@pytest.mark.parametrize("fn", ["cross_entropy_loss", "cross_entropy_sparse", "nll_loss", "focal_loss"])
def test_all_ignored_batch(fn):
    x = torch.randn(4, 3, dtype=D, requires_grad=True)
    t = torch.full((4,), -100)
    f = getattr(L, fn)
    mean = f(x, t)
    assert math.isnan(mean.item())  # 0/0, as torch's cross_entropy
    if fn != "focal_loss":
        ref = F.cross_entropy(x, t) if fn.startswith("cross") else F.nll_loss(x, t)
        assert math.isnan(ref.item())
    total = f(x, t, reduction="sum")
    assert total.item() == 0.0
    total.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert torch.equal(f(x, t, reduction="none"), torch.zeros(4, dtype=D))


def test_ignore_index_everywhere_matches_dropping_the_samples():
    x = torch.randn(10, 4, dtype=D)
    t = torch.randint(0, 4, (10,))
    t[::3] = 7
    keep = t != 7
    for f, ref in [
        (L.cross_entropy_loss, F.cross_entropy),
        (L.cross_entropy_sparse, F.cross_entropy),
        (L.nll_loss, F.nll_loss),
        (L.focal_loss, _focal_ref),
    ]:
        torch.testing.assert_close(f(x, t, ignore_index=7), ref(x[keep], t[keep]))


def test_focal_gamma_zero_is_alpha_times_cross_entropy():
    x = torch.randn(9, 4, dtype=D)
    t = torch.randint(0, 4, (9,))
    torch.testing.assert_close(L.focal_loss(x, t, alpha=0.5, gamma=0.0), 0.5 * F.cross_entropy(x, t))


def test_zero_targets():
    p = torch.randn(5, 3, dtype=D)
    z = torch.zeros(5, 3, dtype=D)
    torch.testing.assert_close(L.mse_loss(p, z), (p**2).mean())
    torch.testing.assert_close(L.poisson_nll_loss(p, z), F.poisson_nll_loss(p, z))
    torch.testing.assert_close(
        L.kl_div_loss(p.log_softmax(1), z), F.kl_div(p.log_softmax(1), z, reduction="batchmean")
    )
    assert L.kl_div_loss(p.log_softmax(1), z).item() == 0.0


def test_flodl_closed_forms():
    assert mse_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.5, 2.5, 3.5])).item() == 0.25
    assert L.l1_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.5, 2.5, 3.5])).item() == 0.5
    v = L.smooth_l1_loss(torch.tensor([1.0, 5.0]), torch.tensor([1.5, 2.0]), 1.0).item()
    assert v == pytest.approx(1.3125)


def test_cross_entropy_int32_targets():
    logits = torch.randn(4, 3, 7)
    target = torch.randint(0, 3, (4, 7))
    torch.testing.assert_close(cross_entropy_loss(logits, target.int()), F.cross_entropy(logits, target))


# ---- class forms ----------------------------------------------------------


def _reg():
    return [torch.randn(6, 3, dtype=D), torch.randn(6, 3, dtype=D)]


def _cls():
    return [torch.randn(6, 3, dtype=D), torch.randint(0, 3, (6,))]


W3 = torch.tensor([1.0, 2.0, 3.0], dtype=D)

# (loss object, torch reference, inputs)
CLASS_CASES = [
    (L.MSELoss(reduction="sum"), lambda a, b: F.mse_loss(a, b, reduction="sum"), _reg),
    (L.L1Loss(), F.l1_loss, _reg),
    (L.MAELoss(), F.l1_loss, _reg),
    (L.SmoothL1Loss(beta=0.3), lambda a, b: F.smooth_l1_loss(a, b, beta=0.3), _reg),
    (
        L.HuberLoss(delta=0.4, reduction="none"),
        lambda a, b: F.huber_loss(a, b, delta=0.4, reduction="none"),
        _reg,
    ),
    (
        L.PoissonNLLLoss(full=True),
        lambda a, b: F.poisson_nll_loss(a, b, full=True),
        lambda: [torch.randn(6, 3, dtype=D), torch.rand(6, 3, dtype=D) * 4],
    ),
    (L.CrossEntropyLoss(label_smoothing=0.1), lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1), _cls),
    (
        L.CrossEntropyLoss(weight=W3, ignore_index=0),
        lambda a, b: F.cross_entropy(a, b, weight=W3, ignore_index=0),
        _cls,
    ),
    (L.CrossEntropySparseLoss(), F.cross_entropy, _cls),
    (
        L.NLLLoss(reduction="sum"),
        lambda a, b: F.nll_loss(a, b, reduction="sum"),
        lambda: [torch.randn(6, 3, dtype=D).log_softmax(1), torch.randint(0, 3, (6,))],
    ),
    (
        L.BCELoss(weight=W3),
        lambda a, b: F.binary_cross_entropy(a, b, weight=W3),
        lambda: [torch.rand(6, 3, dtype=D) * 0.9 + 0.05, torch.rand(6, 3, dtype=D)],
    ),
    (
        L.BCEWithLogitsLoss(pos_weight=W3),
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=W3),
        lambda: [torch.randn(6, 3, dtype=D), torch.rand(6, 3, dtype=D)],
    ),
    (L.FocalLoss(alpha=1.0, gamma=1.5), lambda a, b: _focal_ref(a, b, alpha=1.0, gamma=1.5), _cls),
    (
        L.KLDivLoss(log_target=True),
        lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=True),
        lambda: [torch.randn(6, 3, dtype=D).log_softmax(1), torch.randn(6, 3, dtype=D).log_softmax(1)],
    ),
    (
        L.HingeEmbeddingLoss(margin=2.0),
        lambda a, b: F.hinge_embedding_loss(a, b, margin=2.0),
        lambda: [torch.randn(6, 3, dtype=D), _pm1(6, 3)],
    ),
]


@pytest.mark.parametrize("loss,ref,make", CLASS_CASES, ids=lambda v: repr(v) if isinstance(v, L.Loss) else "")
def test_class_forms_match_torch(loss, ref, make):
    a, b = make()
    expect = ref(a, b)
    torch.testing.assert_close(loss(a, b), expect, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss.compute(a, b), expect, rtol=1e-12, atol=1e-12)
    assert isinstance(loss, L.Loss) and loss.inputs[-1] == "target"


def test_multi_input_classes():
    a, p, n = (torch.randn(5, 4, dtype=D) for _ in range(3))
    y = _pm1(5)
    torch.testing.assert_close(
        L.TripletMarginLoss(margin=0.5, p=1.0)(a, p, n), F.triplet_margin_loss(a, p, n, margin=0.5, p=1.0)
    )
    torch.testing.assert_close(
        L.CosineEmbeddingLoss(margin=0.1).compute(a, p, y), F.cosine_embedding_loss(a, p, y, margin=0.1)
    )
    torch.testing.assert_close(
        L.MarginRankingLoss(margin=0.2)(a[:, 0], p[:, 0], y),
        F.margin_ranking_loss(a[:, 0], p[:, 0], y, margin=0.2),
    )
    lp, t, il, tl = _ctc_inputs()
    torch.testing.assert_close(
        L.CTCLoss(reduction="sum")(lp, t, il, tl), F.ctc_loss(lp, t, il, tl, reduction="sum")
    )
    with pytest.raises(ft.InputTypeError, match=r"takes 3 tensors \(anchor, positive, negative\), got 2"):
        L.TripletMarginLoss()(a, p)


def test_class_repr_name_and_loss_by_name():
    ce = L.CrossEntropyLoss(label_smoothing=0.1)
    assert (
        repr(ce) == "CrossEntropyLoss(weight=None, ignore_index=-100, label_smoothing=0.1, reduction='mean')"
    )
    assert ce.name == "cross_entropy" and ce.reduction == "mean"
    assert L.KLDivLoss().reduction == "batchmean"
    m = L.Loss("mae")
    assert m.name == "l1"
    x, y = torch.randn(4, dtype=D), torch.randn(4, dtype=D)
    torch.testing.assert_close(m(x, y), F.l1_loss(x, y))
    assert set(L.LOSS_NAMES) >= {"mse", "l1", "mae", "cross_entropy", "bce_with_logits", "kl_div", "focal"}
    for name in L.LOSS_NAMES:
        # The function's own argument names (the core table's), e.g. nll's log_probs.
        fn = getattr(L, L.Loss(name).name + "_loss", None) or getattr(L, L.Loss(name).name)
        assert L.Loss(name).inputs == list(inspect.signature(fn).parameters)[:2]
        assert L.Loss(name).inputs[1] == "target"


# ---- errors ---------------------------------------------------------------


def test_mse_shape_mismatch_names_both_shapes():
    with pytest.raises(ft.ShapeError) as e:
        mse_loss(torch.randn(3, 2), torch.randn(2, 3))
    assert "[3, 2]" in str(e.value) and "[2, 3]" in str(e.value)


def test_mse_dtype_mismatch():
    with pytest.raises(ft.DTypeError, match="float64"):
        mse_loss(torch.randn(3), torch.randn(3, dtype=torch.float64))


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: L.l1_loss(a, b),
        lambda a, b: L.smooth_l1_loss(a, b),
        lambda a, b: L.huber_loss(a, b),
        lambda a, b: L.poisson_nll_loss(a, b),
        lambda a, b: L.bce_loss(a, b),
        lambda a, b: L.bce_with_logits_loss(a, b),
        lambda a, b: L.kl_div_loss(a, b),
        lambda a, b: L.hinge_embedding_loss(a, b),
        lambda a, b: L.margin_ranking_loss(a, a, b),
        lambda a, b: L.triplet_margin_loss(a, a, b),
        lambda a, b: L.cosine_embedding_loss(a, b, torch.ones(3)),
        lambda a, b: L.cross_entropy_loss(a, b),
    ],
)
def test_shape_mismatch_names_both_shapes(call):
    with pytest.raises(ft.ShapeError) as e:
        call(torch.rand(3, 4), torch.rand(3, 5))
    assert "[3, 4]" in str(e.value) and "[3, 5]" in str(e.value), str(e.value)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: L.l1_loss(a, b),
        lambda a, b: L.smooth_l1_loss(a, b),
        lambda a, b: L.huber_loss(a, b),
        lambda a, b: L.poisson_nll_loss(a, b),
        lambda a, b: L.bce_loss(a, b),
        lambda a, b: L.bce_with_logits_loss(a, b),
        lambda a, b: L.kl_div_loss(a, b),
        lambda a, b: L.hinge_embedding_loss(a, b),
        lambda a, b: L.margin_ranking_loss(a, b, torch.ones(3, 4)),
        lambda a, b: L.triplet_margin_loss(a, a, b),
        lambda a, b: L.cosine_embedding_loss(a, b, torch.ones(3)),
        lambda a, b: L.cross_entropy_loss(a, b),
    ],
)
def test_dtype_mismatch_names_both(call):
    with pytest.raises(ft.DTypeError) as e:
        call(torch.rand(3, 4), torch.rand(3, 4, dtype=D))
    assert "float32" in str(e.value) and "float64" in str(e.value), str(e.value)
    assert isinstance(e.value, TypeError)


def test_cross_entropy_bad_inputs():
    with pytest.raises(ft.DTypeError, match="class indices"):
        cross_entropy_loss(torch.randn(4, 3), torch.randn(4))
    with pytest.raises(ft.ShapeError, match=r"\[4\]"):
        cross_entropy_loss(torch.randn(4, 3), torch.zeros(5, dtype=torch.int64))
    # unbatched [C] logits take a 0-dim class index, as torch (issue #15)
    with pytest.raises(ft.ShapeError, match=r"logits shape \[4\] needs a target of shape \[\]"):
        cross_entropy_loss(torch.randn(4), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ft.ShapeError, match="batch, classes"):
        cross_entropy_loss(torch.randn(()), torch.zeros((), dtype=torch.int64))
    with pytest.raises(ft.DTypeError, match="class indices"):
        L.cross_entropy_sparse(torch.randn(4, 3), torch.rand(4, 3).softmax(1))
    with pytest.raises(ft.ShapeError, match=r"weight must have shape \[3\].*\[4\]"):
        cross_entropy_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.int64), weight=torch.ones(4))
    with pytest.raises(ft.DTypeError, match="weight is float64"):
        cross_entropy_loss(
            torch.randn(4, 3), torch.zeros(4, dtype=torch.int64), weight=torch.ones(3, dtype=D)
        )
    with pytest.raises(ft.DTypeError, match="probability target is float64"):
        cross_entropy_loss(torch.randn(4, 3), torch.rand(4, 3, dtype=D))
    with pytest.raises(ft.DTypeError, match="class indices"):
        L.focal_loss(torch.randn(4, 3), torch.randn(4))
    with pytest.raises(ft.ShapeError, match="does not broadcast"):
        L.bce_loss(torch.rand(4, 3), torch.rand(4, 3), weight=torch.rand(2))


@pytest.mark.parametrize(
    "call,arg",
    [
        (lambda: L.smooth_l1_loss(torch.ones(2), torch.ones(2), beta=0.0), "beta"),
        (lambda: L.smooth_l1_loss(torch.ones(2), torch.ones(2), -1.0), "beta"),
        (lambda: L.SmoothL1Loss(beta=-1.0), "beta"),
        (lambda: L.huber_loss(torch.ones(2), torch.ones(2), delta=0.0), "delta"),
        (lambda: L.HuberLoss(delta=float("nan")), "delta"),
        (
            lambda: L.cross_entropy_loss(
                torch.ones(2, 3), torch.zeros(2, dtype=torch.int64), label_smoothing=1.5
            ),
            "label_smoothing",
        ),
        (lambda: L.CrossEntropyLoss(label_smoothing=-0.1), "label_smoothing"),
        (lambda: L.FocalLoss(gamma=-1.0), "gamma"),
        (lambda: L.FocalLoss(alpha=-0.5), "alpha"),
        (lambda: L.TripletMarginLoss(margin=0.0), "margin"),
        (
            lambda: L.triplet_margin_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3), margin=-1.0),
            "margin",
        ),
        (lambda: L.CTCLoss(blank=-1), "blank"),
        (lambda: L.ctc_loss(*_ctc_inputs(), blank=5), "blank"),
        (lambda: L.mse_loss(torch.ones(2), torch.ones(2), reduction="avg"), "reduction"),
        (lambda: L.MSELoss(reduction="batchmean"), "batchmean"),
        (lambda: L.KLDivLoss(reduction="bogus"), "reduction"),
        (lambda: L.Loss("hinge2"), "hinge2"),
        (lambda: L.Loss("ctc"), "not \\(pred, target\\)"),
    ],
)
def test_bad_options_raise_config_error(call, arg):
    with pytest.raises(ft.ConfigError, match=arg):
        call()


def test_ctc_bad_lengths_and_dtypes():
    lp, t, il, tl = _ctc_inputs()
    with pytest.raises(ft.ShapeError, match="input_lengths"):
        L.ctc_loss(lp, t, torch.tensor([12, 10]), tl)
    with pytest.raises(ft.DTypeError, match="targets must be integers"):
        L.ctc_loss(lp, t.double(), il, tl)
    with pytest.raises(ft.ShapeError, match="log_probs"):
        L.ctc_loss(lp[0, 0], t, il, tl)


def test_non_tensor_input():
    with pytest.raises(ft.InputTypeError, match="mse_loss pred"):
        L.mse_loss([1.0, 2.0], torch.ones(2))


# ---- Trainer ----------------------------------------------------------------


def _model():
    return FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(LayerNorm(8)).through(Linear(8, 3)).build()


def _ref_of(graph):
    ref = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3)
    )
    with torch.no_grad():
        for a, b in zip(ref.parameters(), graph.parameters()):
            a.copy_(b)
    return ref


@pytest.mark.parametrize(
    "loss,ref,target",
    [
        (
            L.CrossEntropyLoss(label_smoothing=0.1),
            lambda o, y: F.cross_entropy(o, y, label_smoothing=0.1),
            "idx",
        ),
        (
            L.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]), ignore_index=1),
            lambda o, y: F.cross_entropy(o, y, weight=torch.tensor([1.0, 2.0, 0.5]), ignore_index=1),
            "idx",
        ),
        ("focal", lambda o, y: _focal_ref(o, y), "idx"),
        ("smooth_l1", F.smooth_l1_loss, "reg"),
        (L.HuberLoss(delta=0.5), lambda o, y: F.huber_loss(o, y, delta=0.5), "reg"),
        ("bce_with_logits", F.binary_cross_entropy_with_logits, "prob"),
        # the raw output stands in for log-probabilities; the formula is the same
        ("kl_div", lambda o, y: F.kl_div(o, y, reduction="batchmean"), "kl"),
    ],
    ids=lambda v: repr(v) if isinstance(v, (str, L.Loss)) else "",
)
def test_trainer_step_with_builtin_loss_equals_torch_loop(loss, ref, target):
    g = _model()
    net = _ref_of(g)
    x = torch.randn(16, 4)
    y = {
        "idx": torch.randint(0, 3, (16,)),
        "reg": torch.randn(16, 3),
        "prob": torch.rand(16, 3),
        "kl": torch.rand(16, 3).softmax(1),
    }[target]
    tr = Trainer(g, Adam(g.parameters(), 0.01), loss=loss)
    assert tr.builtin_loss
    topt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(10):
        got = tr.step(x, y)
        topt.zero_grad()
        lt = ref(net(x), y)
        lt.backward()
        topt.step()
        assert got == pytest.approx(lt.item(), rel=1e-5, abs=1e-6)
    for a, b in zip(g.parameters(), net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_trainer_rejects_multi_input_losses():
    g = _model()
    opt = Adam(g.parameters(), 0.01)
    with pytest.raises(ft.ConfigError, match="anchor, positive, negative"):
        Trainer(g, opt, loss=L.TripletMarginLoss())
    with pytest.raises(ft.ConfigError, match="reduction='none'"):
        Trainer(g, opt, loss=L.MSELoss(reduction="none"))
    with pytest.raises(ft.ConfigError, match="not \\(pred, target\\).*mse"):
        Trainer(g, opt, loss="ctc")
    with pytest.raises(ft.ConfigError, match="unknown loss 'nope'.*focal"):
        Trainer(g, opt, loss="nope")
