"""Resume is bit-exact wherever a training state is saved: every batch of a
2-epoch run whose epochs (13 batches, the last partial) end inside an
accumulation window, for accumulation 1, 2 and 3, without a scaler and with
a GradScaler under float16 and bfloat16 autocast, with per-step and
per-epoch schedules, and in cuda_graph="_emulate" mode. Interrupt points are
enumerated, never timed."""

import os
import signal

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import ferrotorch as ft
from test_resume_torch_loader import _Limited

N, B = 200, 16  # 13 batches per epoch, the last one partial
BATCHES = 2 * 13
AMPS = {"none": (None, False), "fp16": (torch.float16, True), "bf16": (torch.bfloat16, True)}


def _xy():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, 4, generator=g), torch.randn(N, 2, generator=g)


def _torch_loader():
    return DataLoader(
        TensorDataset(*_xy()), batch_size=B, shuffle=True, generator=torch.Generator().manual_seed(5)
    )


def _trainer(amp, sched, acc, loss=F.mse_loss):
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    opt = ft.optim.Adam(net.parameters(), 1e-2, implementation="fused")
    schedule = (
        torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
        if sched == "epoch"
        else ft.schedule.cosine_decay(1e-2, 40)
    )
    dtype, scaled = AMPS[amp]
    scaler = ft.GradScaler(init_scale=2.0**8) if scaled else None
    return net, ft.Trainer(
        net, opt, loss=loss, scheduler=schedule, grad_accumulation=acc, amp=dtype, scaler=scaler
    )


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("acc", [1, 2, 3])
@pytest.mark.parametrize("sched", ["step", "epoch"])
@pytest.mark.parametrize("amp", sorted(AMPS))
def test_every_batch_of_a_run_resumes_bit_exact(amp, sched, acc, tmp_path):
    torch.manual_seed(11)
    ref, t = _trainer(amp, sched, acc)
    t.fit(_torch_loader(), epochs=2)
    bad = []
    for b in range(1, BATCHES):
        d = str(tmp_path / f"{b}")
        torch.manual_seed(11)
        _, t1 = _trainer(amp, sched, acc)
        assert t1.fit(_Limited(_torch_loader(), b), epochs=2, checkpoint_dir=d).interrupted
        torch.manual_seed(99)
        net, t2 = _trainer(amp, sched, acc)
        t2.fit(_torch_loader(), epochs=2, checkpoint_dir=d, resume=True)
        if not _same(net, ref):
            bad.append(b)
    assert not bad, f"resumes that differ from the uninterrupted run, by interrupted batch: {bad}"


@pytest.mark.parametrize("acc", [2, 3])
@pytest.mark.parametrize("amp", sorted(AMPS))
def test_sigint_inside_the_last_window_of_an_epoch_resumes(amp, acc, tmp_path):
    """The issue's crash: over a ferrotorch DataLoader a SIGINT is honoured
    at the chunk's end, after the epoch's last batch and before its window
    closes, so the state holds micro > 0 at batch 13; resuming it used to
    fail with 'GradScaler.step: no scale yet'."""
    x, y = _xy()
    kill = {"at": -1, "calls": 0}

    def loss(pred, target):
        kill["calls"] += 1
        if kill["calls"] == kill["at"]:
            os.kill(os.getpid(), signal.SIGINT)  # deferred by fit to its next boundary
        return F.mse_loss(pred.float(), target)

    def run(d):
        kill["calls"] = 0
        net, t = _trainer(amp, "epoch", acc, loss=loss)
        h = t.fit(
            ft.data.DataLoader((x, y), batch_size=B, drop_last=False), epochs=2, checkpoint_dir=d, resume=True
        )
        return net, h

    torch.manual_seed(11)
    ref, _ = run(str(tmp_path / "ref"))
    for at in (1, 13, 14, 26):
        d = str(tmp_path / f"k{at}")
        kill["at"] = at
        torch.manual_seed(11)
        _, h = run(d)
        assert h.interrupted
        saved = torch.load(os.path.join(d, "last.pt"), weights_only=False)["engine"]
        if at <= 13:
            assert (saved["micro"], saved["batch"]) == (13 % acc, 13)  # inside the epoch's last window
        kill["at"] = -1
        torch.manual_seed(99)
        net, h2 = run(d)
        assert not h2.interrupted and _same(net, ref), at


@pytest.mark.parametrize("scaled", [False, True], ids=["no_scaler", "grad_scaler"])
def test_emulated_graph_mode_resumes_from_every_update(scaled, tmp_path):
    """cuda_graph="_emulate" (the captured step's bookkeeping on the CPU; it
    captures one batch per update, so no accumulation): a state saved at
    every optimizer step resumes to the uninterrupted run."""
    x, y = _xy()

    def model():
        torch.manual_seed(3)
        return (
            ft.FlowBuilder.from_(ft.nn.Linear(4, 16))
            .through(ft.nn.Tanh())
            .through(ft.nn.Linear(16, 2))
            .build()
        )

    def trainer(g):
        opt = ft.optim.Adam(g.parameters(), 1e-2, implementation="fused")
        scaler = ft.GradScaler(init_scale=2.0**8) if scaled else None
        return ft.Trainer(g, opt, loss="mse", scaler=scaler, cuda_graph="_emulate")

    loader = lambda: ft.data.DataLoader((x, y), batch_size=B, drop_last=False)  # noqa: E731
    ref = model()
    t = trainer(ref)
    t.fit(loader(), epochs=2)
    for k in range(1, t.global_step):
        d = str(tmp_path / f"{k}")
        trainer(model()).fit(loader(), epochs=2, steps=k, checkpoint_dir=d, checkpoint_every=1)
        g = model()
        trainer(g).fit(loader(), epochs=2, checkpoint_dir=d, resume=True)
        assert _same(g, ref), k


@pytest.mark.parametrize("acc", [1, 2, 3])
@pytest.mark.parametrize("sched", ["step", "epoch"])
@pytest.mark.parametrize("amp", sorted(AMPS))
def test_every_save_point_of_a_ferrotorch_loader_run_resumes_bit_exact(amp, sched, acc, tmp_path):
    """Over a ferrotorch DataLoader fit saves at update points
    (checkpoint_every), at epoch ends and at a chunk's end on Ctrl-C (the
    SIGINT test above): every update point of the run, resumed."""
    x, y = _xy()
    loader = lambda: ft.data.DataLoader((x, y), batch_size=B, drop_last=False)  # noqa: E731
    torch.manual_seed(11)
    ref, t = _trainer(amp, sched, acc)
    t.fit(loader(), epochs=2)
    for k in range(1, t.global_step):
        d = str(tmp_path / f"{k}")
        torch.manual_seed(11)
        _trainer(amp, sched, acc)[1].fit(loader(), epochs=2, steps=k, checkpoint_dir=d, checkpoint_every=1)
        torch.manual_seed(99)
        net, t2 = _trainer(amp, sched, acc)
        t2.fit(loader(), epochs=2, checkpoint_dir=d, resume=True)
        assert _same(net, ref), k
