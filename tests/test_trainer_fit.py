"""Trainer options and fit: schedules, clipping, accumulation, GradScaler,
validation, callbacks, checkpoints, exact resume, Ctrl-C, non-finite loss."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from _mlp import mlp as _model
from _mlp import torch_twin as _ref
from ferrotorch import EarlyStop, Trainer
from ferrotorch.callbacks import CSVLogger, EarlyStopping, LambdaCallback, ModelCheckpoint
from ferrotorch.data import DataLoader
from ferrotorch.optim import SGD, Adam


def _batches(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 4, generator=g), torch.randn(8, 3, generator=g)) for _ in range(n)]


def _close(g, ref, atol=1e-6):
    for a, b in zip(g.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=atol)


def test_schedule_sets_lr_before_each_step():
    g = _model()
    ref = _ref(g)
    sched = ft.sched.StepDecay(0.1, 2, 0.5)
    tr = Trainer(g, SGD(g.parameters(), 0.1), scheduler=sched)
    topt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for step, (x, y) in enumerate(_batches()):
        tr.step(x, y)
        for grp in topt.param_groups:
            grp["lr"] = sched(step)
        topt.zero_grad()
        F.mse_loss(ref(x), y).backward()
        topt.step()
        assert tr.optimizer.lr == pytest.approx(sched(step))
    _close(g, ref)
    assert tr.global_step == 6
    # a plain callable works too
    tr2 = Trainer(g, SGD(g.parameters(), 0.1), scheduler=lambda s: 0.01 * (s + 1))
    tr2.step(*_batches()[0])
    tr2.step(*_batches()[0])
    assert tr2.optimizer.lr == pytest.approx(0.02)


def test_torch_style_scheduler_steps_per_epoch():
    g = _model()
    opt = SGD(g.parameters(), 0.1)
    sched = ft.sched.StepLR(opt, step_size=1, gamma=0.5)
    tr = Trainer(g, opt, scheduler=sched)
    hist = tr.fit(_batches(), epochs=3)
    assert [e["lr"] for e in hist.epochs_logs] == pytest.approx([0.1, 0.05, 0.025])
    assert opt.lr == pytest.approx(0.0125)


@pytest.mark.parametrize("clip", [("clip_grad_value", 0.01), ("clip_grad_norm", 0.05)])
def test_clipping_matches_torch(clip):
    g = _model()
    ref = _ref(g)
    tr = Trainer(g, Adam(g.parameters(), 0.01), **{clip[0]: clip[1]})
    topt = torch.optim.Adam(ref.parameters(), lr=0.01)
    for x, y in _batches():
        tr.step(x, y)
        topt.zero_grad()
        F.mse_loss(ref(x), y).backward()
        if clip[0] == "clip_grad_value":
            torch.nn.utils.clip_grad_value_(ref.parameters(), clip[1])
        else:
            torch.nn.utils.clip_grad_norm_(ref.parameters(), clip[1])
        topt.step()
    _close(g, ref)


def test_grad_scaler_in_the_step_matches_torch():
    g = _model()
    ref = _ref(g)
    scaler = ft.GradScaler(init_scale=2.0**10, growth_interval=2)
    tr = Trainer(g, Adam(g.parameters(), 0.01), scaler=scaler, clip_grad_norm=1.0)
    topt = torch.optim.Adam(ref.parameters(), lr=0.01, fused=True)
    tscaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
    for x, y in _batches():
        tr.step(x, y)
        topt.zero_grad()
        tscaler.scale(F.mse_loss(ref(x), y)).backward()
        tscaler.unscale_(topt)
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        tscaler.step(topt)
        tscaler.update()
    _close(g, ref)
    assert scaler.get_scale() == tscaler.get_scale()


def test_bf16_autocast_trains():
    # As torch's autocast loop, and not as the float32 run: the forward ran in bfloat16.
    data = _batches(4) * 10
    g = _model()
    ref = _ref(g)
    tr = Trainer(g, Adam(g.parameters(), 0.01), amp=torch.bfloat16)
    losses = [tr.step(x, y) for x, y in data]
    topt = torch.optim.Adam(ref.parameters(), 0.01)
    ref_losses = []
    for x, y in data:
        topt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = ref(x)
        loss = F.mse_loss(out.float(), y)
        loss.backward()
        topt.step()
        ref_losses.append(loss.item())
    assert losses == pytest.approx(ref_losses, rel=1e-6, abs=1e-7)
    _close(g, ref)
    g32 = _model()
    fp32 = Trainer(g32, Adam(g32.parameters(), 0.01))
    assert abs(fp32.step(*data[0]) - losses[0]) > 1e-5  # what bfloat16's rounding changes
    assert losses[-1] < losses[0] and all(p.dtype == torch.float32 for p in g.parameters())
    with pytest.raises(ft.ConfigError, match="amp"):
        Trainer(g, Adam(g.parameters(), 0.01), amp=torch.float64)


def test_val_data_metrics_and_evaluate():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.02), loss="cross_entropy", metrics=["accuracy"])
    dl = DataLoader((x, y), 16)
    hist = tr.fit(dl, epochs=3, val_data=DataLoader((x, y), 32, shuffle=False))
    logs = hist.epochs_logs[-1]
    assert {"loss", "val_loss", "val_accuracy", "lr"} <= set(logs)
    ev = tr.evaluate(DataLoader((x, y), 32, shuffle=False))
    pred = tr.predict(x)
    assert ev["accuracy"] == pytest.approx((pred.argmax(1) == y).float().mean().item())
    assert ev["loss"] == pytest.approx(F.cross_entropy(pred, y).item(), rel=1e-5)
    torch.testing.assert_close(
        tr.predict(x, batch_size=10), pred, rtol=1e-5, atol=1e-6
    )  # GEMM blocking may differ


def test_steps_budget_stops_mid_epoch():
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01))
    x, y = torch.randn(80, 4), torch.randn(80, 3)
    hist = tr.fit(DataLoader((x, y), 8), steps=13)
    assert hist.steps == 13 and tr.global_step == 13 and len(hist.step_losses) == 13


def test_log_every_report_gets_steps():
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01))
    seen = []
    tr.fit(
        DataLoader((torch.randn(64, 4), torch.randn(64, 3)), 8),
        epochs=2,
        log_every=5,
        report=lambda step, loss, trainer: seen.append(step),
    )
    assert seen == [5, 10, 15]


def test_early_stopping_both_exits_and_restore(tmp_path):
    g = _model()
    tr = Trainer(g, SGD(g.parameters(), 0.0))  # lr 0: the loss never improves after epoch 1
    es = EarlyStopping(monitor="loss", patience=2)
    hist = tr.fit(_batches(), epochs=20, callbacks=[es])
    assert hist.stopped_early and hist.epochs == 4 and es.stopped_epoch == 4
    # normal end with restore_best_weights: best epoch's weights come back
    g2 = _model()
    tr2 = Trainer(g2, SGD(g2.parameters(), 0.05))
    snapshots = []
    es2 = EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
    cb = LambdaCallback(
        on_epoch_end=lambda e, logs, t: snapshots.append(
            (logs["val_loss"], [p.clone() for p in g2.parameters()])
        )
    )
    val = _batches(2, seed=9)
    h2 = tr2.fit(_batches(), epochs=6, val_data=val, callbacks=[es2, cb])
    assert not h2.stopped_early
    best = min(snapshots, key=lambda s: s[0])[1]
    for a, b in zip(g2.parameters(), best):
        assert torch.equal(a, b)


def test_model_checkpoint_best_survives_restart(tmp_path):
    path = str(tmp_path / "best.pt")
    g = _model()
    tr = Trainer(g, SGD(g.parameters(), 0.05))
    mc = ModelCheckpoint(path, monitor="loss", save_best_only=True)
    tr.fit(_batches(), epochs=3, callbacks=[mc])
    best = mc.best
    assert os.path.exists(path) and json.load(open(path + ".best.json"))["best"] == best
    mc2 = ModelCheckpoint(path, monitor="loss", save_best_only=True)  # a new process would see the same
    assert mc2.best == best
    saved = torch.load(path)
    assert set(saved) == set(g.state_dict())


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    g = _model()
    Trainer(g, SGD(g.parameters(), 0.05)).fit(_batches(), epochs=3, callbacks=[CSVLogger(str(path))])
    lines = path.read_text().strip().splitlines()
    assert lines[0].split(",")[:2] == ["epoch", "duration"] and len(lines) == 4


def test_early_stop_raised_in_report_keeps_state():
    g = _model()
    tr = Trainer(g, SGD(g.parameters(), 0.05))

    def report(epoch, loss):
        if epoch == 2:
            raise EarlyStop()

    h = tr.fit(_batches(), epochs=5, report=report)
    assert h.stopped_early and h.epochs == 2 and tr.global_step == 12


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys, torch, ferrotorch as ft
    from ferrotorch import FlowBuilder, Trainer
    from ferrotorch.data import DataLoader
    from ferrotorch.nn import GELU, Linear
    from ferrotorch.optim import Adam
    ckpt, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ft.manual_seed(0)
    g = FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(Linear(8, 3)).build()
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(96, 4, generator=gen), torch.randn(96, 3, generator=gen)
    opt = Adam(g.parameters(), 0.01)
    tr = Trainer(g, opt, scheduler=ft.schedule.warmup_cosine(0.0, 0.01, 10, 100),
                 scaler=ft.GradScaler(init_scale=256.0, growth_interval=7))
    tr.fit(DataLoader((x, y), 8, seed=3), steps=steps, checkpoint_dir=ckpt, checkpoint_every=10, resume=True)
    torch.save({"params": [p.detach().clone() for p in g.parameters()], "opt": opt.state_dict(),
                "step": tr.global_step, "scale": tr.scaler.get_scale()}, out)
    """
)


def _run(script, *args):
    r = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return r


def test_resume_in_a_new_process_is_bit_exact(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    _run(RESUME_SCRIPT, full, 100, tmp_path / "a.pt")
    _run(RESUME_SCRIPT, part, 50, tmp_path / "b1.pt")  # stops after 50 steps (mid-epoch)
    _run(RESUME_SCRIPT, part, 100, tmp_path / "b.pt")  # a new process resumes to 100
    a, b = torch.load(tmp_path / "a.pt"), torch.load(tmp_path / "b.pt")
    assert a["step"] == b["step"] == 100 and a["scale"] == b["scale"]
    for p, q in zip(a["params"], b["params"]):
        assert torch.equal(p, q)
    for k, st in a["opt"]["state"].items():
        for name, t in st.items():
            assert torch.equal(t, b["opt"]["state"][k][name])


INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import sys, torch, ferrotorch as ft
    from ferrotorch import FlowBuilder, Trainer
    from ferrotorch.data import DataLoader
    from ferrotorch.nn import Linear
    from ferrotorch.optim import Adam
    g = FlowBuilder.from_(Linear(64, 64)).through(Linear(64, 64)).build()
    tr = Trainer(g, Adam(g.parameters(), 1e-3))
    dl = DataLoader((torch.randn(4096, 64), torch.randn(4096, 64)), 8)
    def ready(step, loss):  # training is under way: Ctrl-C now lands inside fit
        if step == 1:
            print("ready", flush=True)
    h = tr.fit(dl, epochs=1000, checkpoint_dir=sys.argv[1], log_every=1, report=ready)
    print("interrupted" if h.interrupted else "finished", tr.global_step, flush=True)
    """
)


def test_ctrl_c_stops_at_a_step_boundary_with_checkpoint(tmp_path):
    p = subprocess.Popen(
        [sys.executable, "-c", INTERRUPT_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    word, step = out.split()
    assert word == "interrupted" and int(step) > 0
    st = torch.load(tmp_path / "last.pt", weights_only=False)
    assert st["engine"]["step"] == int(step)
