"""Data-parallel training under torchrun (CPU, gloo, 2 processes): equal to
one process with the global batch, one writer, exact resume, clean failures,
and floDl's styles unchanged."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.nn import GELU, LayerNorm, Linear
from ferrotorch.optim import SGD, Adam

WORKER = Path(__file__).parent / "ddp" / "worker.py"
PKG = str(Path(ft.__file__).resolve().parent.parent)

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")


def torchrun(mode, out, *args, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": PKG, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*cmd, str(WORKER), mode, str(out), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def data():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(96, 6, generator=g)
    return x, x @ torch.randn(6, 3, generator=g)


def model(width=16):
    return (
        FlowBuilder.from_(Linear(6, width))
        .through(GELU())
        .through(LayerNorm(width))
        .through(Linear(width, 3))
        .build()
    )


def load_into(g, tensors):
    with torch.no_grad():
        for p, t in zip(g.parameters(), tensors):
            p.copy_(t)


def test_two_ranks_equal_one_process_with_the_global_batch(tmp_path):
    r = torchrun("train", tmp_path, 3)
    assert r.returncode == 0, r.stderr[-3000:]
    start = [torch.load(tmp_path / f"start_{k}.pt") for k in (0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(*start)), "rank 0's weights are broadcast"
    p0, p1 = (torch.load(tmp_path / f"params_{k}.pt") for k in (0, 1))
    assert all(torch.equal(a, b) for a, b in zip(p0, p1)), "both ranks hold the same parameters"
    g = model()
    load_into(g, start[0])
    tr = Trainer(
        g, Adam(g.parameters(), 1e-2), clip_grad_norm=0.5, scheduler=ft.sched.CosineScheduler(1e-2, 1e-3, 40)
    )
    h = tr.fit(DataLoader(data(), 16, seed=3), epochs=3)
    for a, b in zip(g.parameters(), p0):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=1e-5)
    moved = max((a - s).abs().max().item() for a, s in zip(p0, start[0]))
    assert moved > 1e-3
    hist = torch.load(tmp_path / "hist_0.pt")
    assert hist["steps"] == h.steps == 18
    assert hist["losses"] == pytest.approx(h.losses, abs=1e-5)  # means over the ranks
    assert hist["step_losses"] == torch.load(tmp_path / "hist_1.pt")["step_losses"]
    # rank 0's .fdl is an ordinary file: same hash as the one-process graph, rank 0's weights
    single = model()
    single.load_checkpoint(str(tmp_path / "model.fdl"))
    assert all(torch.equal(a.detach(), b) for a, b in zip(single.parameters(), p0))
    # one writer: a single training state and one row per epoch in the CSV log
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["last.pt"]
    rows = (tmp_path / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 4 and rows[0].startswith("epoch")


def test_resume_under_torchrun_is_bit_exact(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert torchrun("resume", a, 4).returncode == 0
    r = torchrun("resume", b, 2)
    assert r.returncode == 0, r.stderr[-3000:]
    r = torchrun("resume", b, 4)
    assert r.returncode == 0, r.stderr[-3000:]
    for k in (0, 1):
        full, resumed = torch.load(a / f"params_e4_{k}.pt"), torch.load(b / f"params_e4_{k}.pt")
        assert all(torch.equal(x, y) for x, y in zip(full, resumed))


def test_a_failing_rank_ends_the_run_with_an_error(tmp_path):
    r = torchrun("fail", tmp_path, timeout=300)
    assert r.returncode != 0
    assert "rank 1 fails on purpose" in r.stdout + r.stderr


def test_mismatched_graphs_are_detected_at_start(tmp_path):
    r = torchrun("mismatch", tmp_path)
    assert r.returncode != 0
    assert "structural hash" in r.stdout + r.stderr


def test_flodl_styles_run_unchanged_under_torchrun(tmp_path):
    r = torchrun("flodl", tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    b0, b1 = (torch.load(tmp_path / f"builder_{k}.pt") for k in (0, 1))
    assert all(torch.equal(x, y) for x, y in zip(b0, b1))
    x, y = data()
    ft.manual_seed(100)  # rank 0's seed in the worker
    state = (
        Trainer.builder(lambda d: model(), lambda p: SGD(p, 0.1), lambda m, b: F.mse_loss(m(b[0]), b[1]))
        .dataset((x, y))
        .batch_size(16)
        .num_epochs(2)
        .run()
        .join()
    )
    for a, b in zip(state.params, b0):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    s0, s1 = (torch.load(tmp_path / f"params_setup_{k}.pt") for k in (0, 1))
    assert all(torch.equal(u, v) for u, v in zip(s0, s1))
    ft.manual_seed(100)
    g = model()
    Trainer.setup(g, None, lambda p: SGD(p, 0.1), verbose=False)
    for i in range(0, 96, 16):
        F.mse_loss(g(x[i : i + 16]), y[i : i + 16]).backward()
        g.step()
    for a, b in zip(g.parameters(), s0):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=1e-5)


def test_distributed_api_in_one_process():
    assert ft.distributed.rank() == 0 and ft.distributed.world_size() == 1 and ft.distributed.is_main()
    assert not ft.distributed.active()
    g = model()
    with pytest.raises(ft.ConfigError, match=r"Trainer\(distributed=True\) needs"):
        Trainer(g, SGD(g.parameters(), 0.1), distributed=True)
    assert Trainer(g, SGD(g.parameters(), 0.1)).distributed is False
    dl = DataLoader(data(), 8).shard(1, 2)
    assert dl.shard_of == (1, 2) and len(dl) == 6
    with pytest.raises(ft.ConfigError, match="rank must be in 0..world_size"):
        DataLoader(data(), 8).shard(2, 2)
