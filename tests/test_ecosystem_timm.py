"""timm models and timm's schedulers with ferrotorch optimizers, bit-equal
to torch's fused counterparts (BatchNorm statistics included)."""

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft

pytest.importorskip("timm")
import timm  # noqa: E402
import timm.scheduler  # noqa: E402
import timm.utils  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

PAIRS = {
    "sgd_nesterov": (
        lambda p: ft.optim.SGD(p, 0.05, momentum=0.9, nesterov=True, implementation="fused"),
        lambda p: torch.optim.SGD(p, 0.05, momentum=0.9, nesterov=True, fused=True),
    ),
    "adamw": (
        lambda p: ft.optim.AdamW(p, 2e-3, weight_decay=0.05, implementation="fused"),
        lambda p: torch.optim.AdamW(p, 2e-3, weight_decay=0.05, fused=True),
    ),
}


def _run(make_opt, ema=False, name="test_resnet"):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=3)
    opt = make_opt(model.parameters())
    sched = timm.scheduler.CosineLRScheduler(opt, t_initial=4, warmup_t=1, warmup_lr_init=1e-4)
    model_ema = timm.utils.ModelEmaV3(model, decay=0.9) if ema else None
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 0])
    for epoch in range(3):
        for i in range(2):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step_update(epoch * 2 + i + 1)
            if model_ema is not None:
                model_ema.update(model)
        sched.step(epoch + 1)
    return model, opt, model_ema


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("name", ["test_resnet", "test_vit"])  # BatchNorm convnet; LayerNorm transformer
@pytest.mark.parametrize("algo", sorted(PAIRS))
def test_timm_model_and_scheduler_equal_torch(algo, name):
    mine, ref = PAIRS[algo]
    a, oa, _ = _run(mine, name=name)
    b, ob, _ = _run(ref, name=name)
    assert [g["lr"] for g in oa.param_groups] == [g["lr"] for g in ob.param_groups]
    assert oa.param_groups[0]["lr"] != 0.05  # timm's schedule moved it
    _same(a, b)


def test_timm_ema_of_a_model_trained_by_ferrotorch_equals_torch():
    mine, ref = PAIRS["adamw"]
    _, _, ea = _run(mine, ema=True)
    _, _, eb = _run(ref, ema=True)
    _same(ea.module, eb.module)
