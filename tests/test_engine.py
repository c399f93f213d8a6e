"""The one training engine: non-finite handling before any change, gradient
accumulation counted in updates, state saved mid-window, validate-then-apply
loads, device placement, and the counters every style shares."""

import copy

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from _mlp import mlp as _model
from _mlp import torch_twin as _ref
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.nn import Linear
from ferrotorch.optim import SGD, Adam

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _data(n=48, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=gen), torch.randn(n, 3, generator=gen)


def _params(g):
    return [p.detach().clone() for p in g.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


# --- 1. non-finite loss or gradient: detected before anything changes -------------


def test_nan_batch_raises_before_the_update_and_names_step_and_batch():
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01))
    x, y = _data(40)
    y[21] = float("nan")  # batch 2 of 8-row batches
    ref = _model()
    ref_tr = Trainer(ref, Adam(ref.parameters(), 0.01))
    ref_tr.fit(DataLoader((x[:16], y[:16]), 8, shuffle=False), epochs=1)  # the 2 good steps
    with pytest.raises(ft.TrainingError, match=r"at step 2 \(epoch 1, batch 2\)") as ei:
        tr.fit(DataLoader((x, y), 8, shuffle=False), epochs=1)
    assert "non-finite loss (nan) at step 2 (epoch 1, batch 2)" in str(ei.value)
    assert _same(_params(ref), _params(g)), "a NaN batch must not reach the weights"
    assert tr.global_step == 2 and tr.batch == 2  # counters name the failing batch
    sd, ref_sd = tr.optimizer.state_dict(), ref_tr.optimizer.state_dict()
    assert all(torch.equal(sd["state"][0][k], ref_sd["state"][0][k]) for k in ref_sd["state"][0])
    assert all(p.isfinite().all() for p in g.parameters())
    with pytest.raises(ft.TrainingError, match=r"non-finite loss \(inf\)"):  # step(x, y) too
        Trainer(_model(), Adam(_model().parameters(), 0.01)).step(x[:8], torch.full((8, 3), float("inf")))


def test_nonfinite_gradient_with_finite_loss_raises_before_the_update():
    g = _model()

    def loss(pred, target):  # finite value, NaN gradient: d sqrt(x)/dx at 0 times 0
        return torch.sqrt(torch.zeros_like(pred) + 0 * pred).sum() + F.mse_loss(pred, target)

    tr = Trainer(g, SGD(g.parameters(), 0.1), loss=loss)
    x, y = _data(8)
    before = _params(g)
    with pytest.raises(ft.TrainingError, match="non-finite gradient at step 0"):
        tr.step(x, y)
    assert _same(before, _params(g)) and tr.global_step == 0


class _Inject(torch.autograd.Function):
    """A zero loss whose gradient for ``p`` is exactly ``grad``."""

    @staticmethod
    def forward(ctx, p, grad):
        ctx.grad = grad
        return p.sum() * 0

    @staticmethod
    def backward(ctx, _):
        return ctx.grad, None


def _step_with_grads(dtype, bad):
    """One ``step_loss`` whose gradients are zero except ``bad``:
    {(param index, flat index): value}."""
    g = _model()
    g.to(dtype)
    tr = Trainer(g, SGD(g.parameters(), 0.1))
    params = list(g.parameters())
    grads = [torch.zeros_like(p) for p in params]
    for (i, j), v in bad.items():
        grads[i].view(-1)[j] = v
    loss = sum(_Inject.apply(p, gr) for p, gr in zip(params, grads))
    return tr, g, lambda: tr.step_loss(loss)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), -float("nan")])
@pytest.mark.parametrize("where", [(0, 0), (0, -1), (-1, 0), (-1, -1)])
def test_every_nonfinite_gradient_value_is_caught_wherever_it_is(dtype, value, where):
    n = len(list(_model().parameters()))
    i, j = where
    i = i % n
    tr, g, step = _step_with_grads(dtype, {(i, j): value})
    before = _params(g)
    with pytest.raises(ft.TrainingError, match="non-finite gradient at step 0"):
        step()
    assert _same(before, _params(g)) and tr.global_step == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_extreme_finite_gradients_are_not_flagged(dtype):
    info = torch.finfo(dtype)
    extremes = {(0, 0): info.max, (0, 1): -info.max, (1, 0): info.tiny, (1, 1): info.smallest_normal / 4}
    tr, g, step = _step_with_grads(dtype, extremes)
    step()
    assert tr.global_step == 1 and tr.skipped_steps == 0


class _InfGrad(torch.autograd.Function):
    """Identity forward; an all-inf gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return torch.full_like(g, float("inf"))


def test_sparse_cpu_gradients_are_checked_too():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    tr = Trainer(emb, torch.optim.SGD(emb.parameters(), 0.1))
    idx = torch.tensor([1, 4, 4])
    assert emb.weight.grad is None
    tr.step_loss(emb(idx).sum())  # finite: one update
    assert emb.weight.grad.is_sparse  # the check's non-scan branch
    before = emb.weight.detach().clone()
    with pytest.raises(ft.TrainingError, match="non-finite gradient at step 1"):
        tr.step_loss(_InfGrad.apply(emb(idx)).sum())
    assert torch.equal(before, emb.weight.detach()) and tr.global_step == 1


def test_on_nonfinite_skip_skips_and_counts():
    g = _model()
    tr = Trainer(g, SGD(g.parameters(), 0.1), on_nonfinite="skip")
    x, y = _data(32)
    y[8:16] = float("inf")  # batch 1
    ref = _model()
    ref_tr = Trainer(ref, SGD(ref.parameters(), 0.1))
    h = tr.fit(DataLoader((x, y), 8, shuffle=False), epochs=1)
    for b in (0, 2, 3):  # the same run without the bad batch
        ref_tr.step(x[8 * b : 8 * b + 8], y[8 * b : 8 * b + 8])
    assert _same(_params(g), _params(ref))
    assert h.steps == 4 and h.skipped == 1 and tr.skipped_steps == 1 and tr.global_step == 4
    assert h.losses[0] == pytest.approx(sum(h.step_losses[i] for i in (0, 2, 3)) / 3)
    with pytest.raises(ft.ConfigError, match="on_nonfinite"):
        Trainer(g, SGD(g.parameters(), 0.1), on_nonfinite="ignore")
    # "off" is floDl's behaviour: no check, the NaN reaches the weights
    g3 = _model()
    h3 = Trainer(g3, SGD(g3.parameters(), 0.1), on_nonfinite="off").fit(
        DataLoader((x, y), 8, shuffle=False), epochs=1
    )
    assert h3.steps == 4 and h3.skipped == 0
    assert not all(p.isfinite().all() for p in g3.parameters())


def test_graph_step_refuses_nonfinite_gradients():
    g = FlowBuilder.from_(Linear(3, 1)).build()
    Trainer.setup(g, None, lambda p: SGD(p, 0.1), verbose=False)
    before = _params(g)
    (g(torch.ones(2, 3)).sum() * float("nan")).backward()
    with pytest.raises(ft.TrainingError, match="Graph.step: non-finite gradient"):
        g.step()
    assert _same(before, _params(g)) and g.training_step() == 0


# --- 2. gradient accumulation as Lightning counts it ----------------------------------


@pytest.mark.parametrize("path", ["fit", "step"])
def test_accumulation_counts_updates_and_equals_torch(path):
    g = _model()
    ref = _ref(g)
    tr = Trainer(g, SGD(g.parameters(), 0.1, 0.9), grad_accumulation=2)
    x, y = _data(64)
    if path == "fit":
        seen = []
        h = tr.fit(
            DataLoader((x, y), 8, shuffle=False),
            steps=3,
            log_every=1,
            report=lambda k, loss: seen.append(k),
        )
        assert h.steps == 3 and seen == [1, 2, 3] and tr.batch == 6
    else:
        for b in range(6):
            tr.step(x[8 * b : 8 * b + 8], y[8 * b : 8 * b + 8])
    assert tr.global_step == 3
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for s in range(3):
        opt.zero_grad()
        for b in (2 * s, 2 * s + 1):
            (F.mse_loss(ref(x[8 * b : 8 * b + 8]), y[8 * b : 8 * b + 8]) / 2).backward()
        opt.step()
    for a, b in zip(g.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_partial_window_updates_at_epoch_end():
    g = _model()
    tr = Trainer(g, SGD(g.parameters(), 0.1), grad_accumulation=2)
    x, y = _data(40)  # 5 batches: windows of 2, 2, 1
    h = tr.fit(DataLoader((x, y), 8, shuffle=False), epochs=2)
    assert h.steps == 6 and tr.global_step == 6 and tr.epoch == 2 and tr.batch == 0


def test_resumed_steps_count_from_the_original_start(tmp_path):
    x, y = _data(64)
    g = _model()
    Trainer(g, Adam(g.parameters(), 0.01), grad_accumulation=2).fit(
        DataLoader((x, y), 8), steps=7, checkpoint_dir=str(tmp_path)
    )
    g2 = _model()
    tr2 = Trainer(g2, Adam(g2.parameters(), 0.01), grad_accumulation=2)
    h = tr2.fit(DataLoader((x, y), 8), steps=20, checkpoint_dir=str(tmp_path), resume=True)
    assert tr2.global_step == 20 and h.steps == 20
    # the same 20 steps uninterrupted
    g3 = _model()
    Trainer(g3, Adam(g3.parameters(), 0.01), grad_accumulation=2).fit(DataLoader((x, y), 8), steps=20)
    assert _same(_params(g2), _params(g3))


def test_state_saved_mid_accumulation_resumes_bit_exact(tmp_path):
    x, y = _data(64)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)]
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01), grad_accumulation=3)
    for b in batches[:4]:  # one update, then one micro-batch into the next window
        tr.step(*b)
    tr.save_state(str(tmp_path / "mid.pt"))
    for b in batches[4:]:
        tr.step(*b)
    g2 = _model(seed=5)
    tr2 = Trainer(g2, Adam(g2.parameters(), 0.01), grad_accumulation=3)
    tr2.load_state(str(tmp_path / "mid.pt"))
    assert tr2._engine.state["micro"] == 1
    for b in batches[4:]:
        tr2.step(*b)
    assert _same(_params(g), _params(g2)) and tr2.global_step == tr.global_step == 2


# --- 4. load_state validates every part before applying any ---------------------------


def _trained(tmp_path):
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01), scheduler=ft.sched.StepDecay(0.01, 2, 0.5))
    tr.fit(DataLoader(_data(32), 8), epochs=1)
    path = str(tmp_path / "state.pt")
    tr.save_state(path)
    return path


@pytest.mark.parametrize(
    "part, corrupt",
    [
        (
            "optimizer",
            lambda st: st["optimizer"]["param_groups"].append(dict(st["optimizer"]["param_groups"][0])),
        ),
        ("model", lambda st: st["model"].pop(next(iter(st["model"])))),
        ("model", lambda st: st["model"].update({k: torch.zeros(7) for k in list(st["model"])[:1]})),
        ("rng_cpu", lambda st: st.update(rng_cpu=torch.zeros(3, dtype=torch.uint8))),
        ("counters", lambda st: st["engine"].update(step=-4)),
        ("counters", lambda st: st["engine"].pop("epoch")),
        ("grads", lambda st: st.update(grads=[torch.zeros(1)])),
    ],
)
def test_load_state_validates_before_changing_anything(tmp_path, part, corrupt):
    path = _trained(tmp_path)
    st = torch.load(path, weights_only=False)
    corrupt(st)
    bad = str(tmp_path / "bad.pt")
    torch.save(st, bad)
    g = _model(seed=3)
    tr = Trainer(g, Adam(g.parameters(), 0.01), scheduler=ft.sched.StepDecay(0.01, 2, 0.5))
    tr.fit(DataLoader(_data(16), 8), epochs=1)
    before, opt_before, counters = (
        _params(g),
        copy.deepcopy(tr.optimizer.state_dict()),
        dict(tr._engine.state),
    )
    rng = torch.get_rng_state()
    with pytest.raises(ft.CheckpointError, match=rf"bad\.pt.*{part}"):
        tr.load_state(bad)
    assert _same(before, _params(g)) and dict(tr._engine.state) == counters
    assert torch.equal(rng, torch.get_rng_state())
    assert tr.optimizer.state_dict()["state"][0]["step"] == opt_before["state"][0]["step"]


def test_load_state_file_errors_are_named(tmp_path):
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01))
    with pytest.raises(ft.FileError, match="nope.pt"):
        tr.load_state(str(tmp_path / "nope.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a zip at all")
    with pytest.raises(ft.CheckpointError, match="junk.pt"):
        tr.load_state(str(tmp_path / "junk.pt"))
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ft.CheckpointError, match="not a ferrotorch training state"):
        tr.load_state(str(tmp_path / "other.pt"))


# --- 6/7. devices and torch conventions ---------------------------------------------


def test_len_of_dataloader_is_batches_per_epoch():
    x, y = _data(320)
    dl = DataLoader((x, y), 32)
    assert len(dl) == 10 == dl.num_batches and dl.num_samples == 320
    assert len(DataLoader((x, y), 33)) == 10 and len(DataLoader((x, y), 33, drop_last=True)) == 9


def test_device_mismatch_is_a_device_error_naming_node_and_devices():
    g = _model()
    with pytest.raises(ft.DeviceError, match=r"node 'linear_1'.*input is on meta.*are on cpu"):
        g(torch.randn(2, 4, device="meta"))
    assert issubclass(ft.DeviceError, ValueError) and issubclass(ft.DeviceError, ft.Error)


@cuda
@needs_cuda
def test_cuda_placement_on_every_path():
    x, y = _data(64)
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01), device="cuda")
    loader = DataLoader((x, y), 16, device="cuda")
    assert all(t.is_cuda for b in loader.epoch(0) for t in b)
    assert all(t.is_cuda for b in loader for t in b)
    h = tr.fit(DataLoader((x, y), 16), epochs=2, val_data=loader)  # CPU loader, CUDA trainer
    assert h.epochs == 2 and "val_loss" in h.epochs_logs[-1]
    assert tr.evaluate(loader)["loss"] > 0 and tr.evaluate([(x, y)])["loss"] > 0
    assert tr.predict(x).is_cuda
    tr.step(x[:8], y[:8])
    tr.fit([(x[:8], y[:8])], epochs=1)
    from ferrotorch.styles import TrainConfig, kaun, train

    g2 = _model()
    assert train(g2, (x, y), TrainConfig(steps=3, batch_size=8), device="cuda").steps == 3
    g3 = _model()
    kt = kaun.make(model=g3, optimizer=SGD(g3.parameters(), 0.1), device="cuda")
    kaun.fit(kt, kaun.init(kt), [(x, lambda p: F.mse_loss(p, y.cuda()))])
    assert next(g3.parameters()).is_cuda
    with pytest.raises(ft.DeviceError, match="node 'linear_1'"):
        g(x)  # the model is on CUDA, the input on the CPU


# --- 8. Kaun ---------------------------------------------------------------------------


def test_kaun_fit_over_input_lossfn_pairs_reports_every_step():
    from ferrotorch.data import Data
    from ferrotorch.styles import kaun

    x, y = _data(16)
    g = _model()
    t = kaun.make(model=g, optimizer=SGD(g.parameters(), 0.1))
    st = kaun.init(t)
    seen = []

    def loss_fn(pred):
        return F.mse_loss(pred, y)

    st = kaun.fit(t, st, Data.repeat(5, (x, loss_fn)), report=lambda step, loss, s: seen.append((step, loss)))
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5] and seen[-1][1] < seen[0][1]
    ref = _ref(_model())
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        F.mse_loss(ref(x), y).backward()
        opt.step()
    for a, b in zip(g.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # EarlyStop inside report ends fit
    n = []

    def stop(step, loss, s):
        n.append(step)
        if step == 2:
            raise kaun.EarlyStop

    kaun.fit(t, st, Data.repeat(5, (x, loss_fn)), report=stop)
    assert n == [1, 2]  # Kaun numbers the steps of each fit call
    # Trainer.fit takes the same pairs directly, reporting per step
    steps = []
    Trainer(g, SGD(g.parameters(), 0.1)).fit(
        Data.repeat(3, (x, loss_fn)), report=lambda k, loss: steps.append(k)
    )
    assert steps == [1, 2, 3]
    assert kaun.predict(t, st, x).shape == (16, 3)


def test_kaun_schedules_see_one_based_steps_flodl_zero_based():
    x, y = _data(8)
    g = _model()
    opt = SGD(g.parameters(), 1.0)
    tr = Trainer(g, opt, scheduler=ft.schedule.warmup_linear(0.0, 1e-3, 10))
    tr.step(x, y)
    assert opt.lr == pytest.approx(1e-4)  # Kaun: the first update sees step 1
    tr.step(x, y)
    assert opt.lr == pytest.approx(2e-4)
    g2 = _model()
    opt2 = SGD(g2.parameters(), 1.0)
    tr2 = Trainer(g2, opt2, scheduler=ft.sched.StepDecay(0.1, 1, 0.5))
    tr2.step(x, y)
    assert opt2.lr == pytest.approx(0.1)  # floDl: the first update sees step 0


# --- 9. TorchLean -------------------------------------------------------------------


def test_torchlean_loader_config_schedules_per_epoch_and_logs(capsys):
    from ferrotorch.styles import LoaderConfig, OptimizerConfig, TrainConfig, train

    x, y = _data(64)
    g = _model()
    h = train(
        g,
        (x, y),
        LoaderConfig(
            epochs=3,
            batchSize=16,
            optimizer=OptimizerConfig.sgd(0.1),
            scheduler=ft.sched.StepDecay(0.1, 1, 0.5),
        ),
    )
    assert [e["lr"] for e in h.epochs_logs] == pytest.approx([0.1, 0.05, 0.025])
    train(_model(), (x, y), TrainConfig(steps=6, batch_size=8, logEvery=2))
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step ")]
    assert [ln.split(":")[0] for ln in lines] == ["step 2", "step 4", "step 6"]
    assert all(ln.split("loss=")[1].count(".") == 1 and len(ln.split(".")[-1]) == 6 for ln in lines)


def test_torchlean_stepper_counts_updates():
    from ferrotorch.styles import OptimizerConfig, Stepper

    x, y = _data(16)
    s = Stepper(_model(), OptimizerConfig.sgd(0.1))
    losses = s.epoch([(x[:8], y[:8]), (x[8:], y[8:])])
    assert len(losses) == 2 and s.steps == 2


def test_import_ferrotorch_loads_styles_and_callbacks():
    import subprocess
    import sys

    code = (
        "import sys, ferrotorch as ft; "
        "assert 'ferrotorch.callbacks' in sys.modules and hasattr(ft, 'styles'); "
        "from ferrotorch.styles import TrainConfig, LoaderConfig, Stepper; "
        "from ferrotorch.callbacks import EarlyStopping; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


# --- a torch-style manual loop on the engine ----------------------------------------


def test_manual_torch_loop_and_closure_drive_the_engine():
    x, y = _data(32)
    g = _model()
    ref = _ref(g)
    tr = Trainer(g, SGD(g.parameters(), 0.1), clip_grad_norm=0.5)
    topt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for i in range(0, 32, 8):
        xb, yb = x[i : i + 8], y[i : i + 8]
        if i < 16:
            tr.step_loss(F.mse_loss(g(xb), yb))
        else:
            tr.step(lambda xb=xb, yb=yb: F.mse_loss(g(xb), yb))
        topt.zero_grad()
        F.mse_loss(ref(xb), yb).backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
        topt.step()
    assert tr.global_step == 4
    for a, b in zip(g.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_flodl_builder_drives_the_engine():
    x, y = _data(32)

    def factory(device):
        ft.manual_seed(1)
        return FlowBuilder.from_(Linear(4, 3)).build()

    handle = (
        Trainer.builder(factory, lambda p: SGD(p, 0.1), lambda m, b: F.mse_loss(m(b[0]), b[1]))
        .dataset((x, y))
        .batch_size(8)
        .num_epochs(2)
        .run()
    )
    assert handle.trainer.global_step == 8 and handle.trainer.epoch == 2 and len(handle.losses) == 8


def test_fit_feeds_a_monitor_every_epoch_and_finishes_it():
    from urllib.request import urlopen

    m = ft.Monitor(3).serve(0)
    url = m.url
    assert urlopen(url, timeout=30).status == 200
    g = _model()
    Trainer(g, Adam(g.parameters(), 0.01)).fit(DataLoader(_data(32), 8), epochs=3, monitor=m)
    assert [r.epoch for r in m.history()] == [0, 1, 2]
    assert set(m.history()[-1].metrics) >= {"loss", "lr"}
    with pytest.raises(OSError):  # finish() stopped the dashboard and freed its port
        urlopen(url, timeout=5)
