"""Lightning and Fabric drive ferrotorch optimizers unchanged: every feature
gives what the same run with torch's counterpart gives (fused against fused),
bit for bit. Tiny models, CPU, a few seconds each."""

import warnings

import pytest
import torch

import ferrotorch as ft

L = pytest.importorskip("lightning")

pytestmark = pytest.mark.filterwarnings("ignore")

# (ferrotorch factory, torch factory): the same algorithm on the same path.
PAIRS = {
    "adam": (
        lambda p, lr: ft.optim.Adam(p, lr, implementation="fused"),
        lambda p, lr: torch.optim.Adam(p, lr, fused=True),
    ),
    "adamw": (
        lambda p, lr: ft.optim.AdamW(p, lr, weight_decay=0.05, implementation="fused"),
        lambda p, lr: torch.optim.AdamW(p, lr, weight_decay=0.05, fused=True),
    ),
    "sgd": (
        lambda p, lr: ft.optim.SGD(p, lr, momentum=0.9, implementation="fused"),
        lambda p, lr: torch.optim.SGD(p, lr, momentum=0.9, fused=True),
    ),
}

N, BATCH = 52, 8  # 7 batches per epoch: odd, with a partial last one


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 6, generator=g)
    y = torch.randn(N, 2, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)


def _net():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


class Module(L.LightningModule):
    def __init__(self, make_opt, sched=None, manual=False):
        super().__init__()
        self.net = _net()
        self.make_opt, self.sched = make_opt, sched
        self.automatic_optimization = not manual

    def training_step(self, batch, _i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x).float(), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        if self.automatic_optimization:
            return loss
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(loss)
        self.clip_gradients(opt, gradient_clip_val=0.5, gradient_clip_algorithm="norm")
        opt.step()
        return loss

    def configure_optimizers(self):
        opt = self.make_opt(self.parameters(), 0.02)
        if self.sched is None:
            return opt
        sched, interval = self.sched(opt)
        config = {"scheduler": sched, "interval": interval, "monitor": "train_loss"}
        return {"optimizer": opt, "lr_scheduler": config}


def _trainer(tmp_path=None, **kw):
    kw.setdefault("max_epochs", 2)
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=tmp_path is not None,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kw,
    )


def _fit(make_opt, sched=None, manual=False, **kw):
    m = Module(make_opt, sched, manual)
    _trainer(**kw).fit(m, _data())
    return m


def _same(a, b):
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb
        assert torch.equal(pa, pb), na


def _lrs(m):
    return [g["lr"] for g in m.trainer.optimizers[0].param_groups]


@pytest.mark.parametrize("algo", sorted(PAIRS))
def test_plain_fit_equals_torch(algo):
    mine, ref = PAIRS[algo]
    a, b = _fit(mine), _fit(ref)
    assert isinstance(a.trainer.optimizers[0], ft.optim.Optimizer)
    assert not torch.equal(a.net[0].weight, _net()[0].weight)  # it trained
    _same(a, b)


SCHEDULERS = {
    "torch_step_epoch": lambda o: (torch.optim.lr_scheduler.StepLR(o, 1, 0.5), "epoch"),
    "torch_onecycle_step": lambda o: (torch.optim.lr_scheduler.OneCycleLR(o, 0.05, total_steps=14), "step"),
    "torch_cosine_step": lambda o: (torch.optim.lr_scheduler.CosineAnnealingLR(o, 10), "step"),
}


# ferrotorch's torch-style schedulers are torch LRSchedulers: Lightning takes them
# as it takes torch's (no lr_scheduler_step override), with the same lrs.
FT_SCHEDULERS = {
    "step_epoch": (
        lambda o: (ft.sched.StepLR(o, 1, 0.5), "epoch"),
        lambda o: (torch.optim.lr_scheduler.StepLR(o, 1, 0.5), "epoch"),
    ),
    "onecycle_step": (
        lambda o: (ft.sched.OneCycleLR(o, 0.05, total_steps=21), "step"),
        lambda o: (torch.optim.lr_scheduler.OneCycleLR(o, 0.05, total_steps=21), "step"),
    ),
    "plateau_epoch": (
        lambda o: (ft.sched.ReduceLROnPlateau(o, patience=0, factor=0.5, threshold=10.0), "epoch"),
        lambda o: (
            torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.5, threshold=10.0),
            "epoch",
        ),
    ),
}


@pytest.mark.parametrize("sched", sorted(FT_SCHEDULERS))
@pytest.mark.parametrize("algo", ["adam", "sgd"])
def test_ferrotorch_schedulers_equal_torch(algo, sched):
    mine, ref = PAIRS[algo]
    ft_sched, torch_sched = FT_SCHEDULERS[sched]
    a, b = _fit(mine, ft_sched, max_epochs=3), _fit(ref, torch_sched, max_epochs=3)
    assert isinstance(a.trainer.lr_scheduler_configs[0].scheduler, ft.sched.LRScheduler)
    assert _lrs(a) == _lrs(b)
    assert _lrs(a) != [0.02]  # the schedule moved the lr
    _same(a, b)


@pytest.mark.parametrize("sched", sorted(SCHEDULERS))
@pytest.mark.parametrize("algo", ["adam", "sgd"])
def test_torch_schedulers_equal_torch(algo, sched):
    mine, ref = PAIRS[algo]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = _fit(mine, SCHEDULERS[sched])
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]
    b = _fit(ref, SCHEDULERS[sched])
    assert _lrs(a) == _lrs(b)
    _same(a, b)


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_gradient_clipping_equals_torch(algorithm):
    mine, ref = PAIRS["adam"]
    kw = dict(gradient_clip_val=0.05, gradient_clip_algorithm=algorithm)
    _same(_fit(mine, **kw), _fit(ref, **kw))


def test_bf16_mixed_equals_torch():
    mine, ref = PAIRS["adamw"]
    a, b = _fit(mine, precision="bf16-mixed"), _fit(ref, precision="bf16-mixed")
    _same(a, b)
    # autocast really ran: the bf16 run differs from a float32 one.
    assert not torch.equal(a.net[0].weight, _fit(mine).net[0].weight)


@pytest.mark.parametrize("algo", ["adam", "sgd"])
def test_16_mixed_equals_torch(algo):
    """float16 autocast with Lightning's GradScaler (on the CPU here): the
    scaler unscales through param_groups and steps the ferrotorch optimizer."""
    mine, ref = PAIRS[algo]
    a, b = _fit(mine, precision="16-mixed"), _fit(ref, precision="16-mixed")
    assert not torch.equal(a.net[0].weight, _fit(mine).net[0].weight)  # autocast ran
    _same(a, b)


@pytest.mark.parametrize("k", [2, 3])
def test_accumulate_grad_batches_equals_torch(k):
    mine, ref = PAIRS["sgd"]
    _same(_fit(mine, accumulate_grad_batches=k), _fit(ref, accumulate_grad_batches=k))


def test_manual_optimization_equals_torch():
    mine, ref = PAIRS["adam"]
    _same(_fit(mine, manual=True), _fit(ref, manual=True))


@pytest.mark.parametrize("algo", ["adam", "sgd"])
def test_checkpoint_resume_equals_uninterrupted(algo, tmp_path):
    """A ModelCheckpoint written after epoch 1 resumes to the same weights,
    optimizer state and lr as the uninterrupted 3-epoch run, which equals torch's."""
    mine, ref = PAIRS[algo]
    sched = SCHEDULERS["torch_step_epoch"]
    full = _fit(mine, sched, max_epochs=3)
    first = Module(mine, sched)
    t = _trainer(tmp_path / "ck", max_epochs=1)
    t.fit(first, _data())
    ckpt = t.checkpoint_callback.best_model_path
    assert ckpt
    resumed = Module(mine, sched)
    t2 = _trainer(tmp_path / "ck2", max_epochs=3)
    t2.fit(resumed, _data(), ckpt_path=ckpt)
    _same(full, resumed)
    assert _lrs(full) == _lrs(resumed)
    sa, sb = full.trainer.optimizers[0].state_dict(), resumed.trainer.optimizers[0].state_dict()
    for i, st in sa["state"].items():
        for key, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(sb["state"][i][key])), (i, key)
    _same(full, _fit(ref, sched, max_epochs=3))


# --- Fabric -------------------------------------------------------------------


def _fabric_run(make_opt, clip=None, precision="32-true"):
    fabric = L.Fabric(accelerator="cpu", devices=1, precision=precision)
    net = _net()
    opt = make_opt(net.parameters(), 0.02)
    net, opt = fabric.setup(net, opt)
    for _epoch in range(2):
        for x, y in fabric.setup_dataloaders(_data()):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x).float(), y)
            fabric.backward(loss)
            if clip is not None:
                fabric.clip_gradients(net, opt, max_norm=clip)
            opt.step()
    return net, opt


@pytest.mark.parametrize("algo", sorted(PAIRS))
def test_fabric_equals_torch(algo):
    mine, ref = PAIRS[algo]
    (a, oa), (b, _) = _fabric_run(mine, clip=0.5), _fabric_run(ref, clip=0.5)
    assert isinstance(oa, ft.optim.Optimizer)
    _same(a, b)


def test_fabric_bf16_equals_torch():
    mine, ref = PAIRS["adam"]
    (a, _), (b, _) = _fabric_run(mine, precision="bf16-mixed"), _fabric_run(ref, precision="bf16-mixed")
    _same(a, b)
