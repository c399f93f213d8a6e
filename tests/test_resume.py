"""Exact resume in a new process after SIGINT or SIGKILL.

Each case trains in a subprocess with a shuffling loader, dropout, a
schedule, mixed precision and gradient accumulation, checkpointing as it
goes; it signals itself at an enumerated point (before fit, at the first
update, mid-epoch, at an epoch's end, at the last update), is resumed in a
fresh process, and must end bit-equal to an uninterrupted run. Points are
counted in updates, never timed. (Every batch, mid-window included, is
enumerated in-process by test_resume_every_point.py.)
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import os, sys, torch, ferrotorch as ft
    from ferrotorch import FlowBuilder, Trainer
    from ferrotorch.data import DataLoader
    from ferrotorch.nn import Dropout, GELU, Linear
    from ferrotorch.optim import Adam
    torch.set_num_threads(1)
    case, ckpt, out = sys.argv[1], sys.argv[2], sys.argv[3]
    at, sig = int(sys.argv[4]), int(sys.argv[5])  # signal itself after update `at` (0: before fit)
    ft.manual_seed(0)
    g = (FlowBuilder.from_(Linear(16, 32)).through(GELU()).through(Dropout(0.2))
         .through(Linear(32, 4)).build())
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(384, 16, generator=gen), torch.randn(384, 4, generator=gen)
    opt = Adam(g.parameters(), 1e-2)
    if case == "step_bf16":
        tr = Trainer(g, opt, scheduler=ft.sched.CosineScheduler(1e-2, 1e-4, 200), amp=torch.bfloat16,
                     grad_accumulation=3, clip_grad_norm=1.0)
    elif case == "epoch_fp16":
        tr = Trainer(g, opt, scheduler=ft.sched.StepLR(opt, step_size=1, gamma=0.7), amp=torch.float16,
                     grad_accumulation=2)
    else:
        tr = Trainer(g, opt, scheduler=ft.schedule.warmup_linear(0.0, 1e-2, 20))
    def report(step, loss):
        if step == at:
            os.kill(os.getpid(), sig)  # SIGINT: honoured at the step's boundary; SIGKILL: dies here
    if at == 0:
        os.kill(os.getpid(), sig)
    h = tr.fit(DataLoader((x, y), 8, seed=7), epochs=4, checkpoint_dir=ckpt, checkpoint_every=1,
               resume=True, report=report, log_every=1)
    print("interrupted" if h.interrupted else "finished", flush=True)
    torch.save([p.detach().clone() for p in g.parameters()] + [torch.tensor(tr.global_step)], out)
    print("done", flush=True)
    """
)


def _run(case, ckpt, out, env, at=-1, sig=signal.SIGKILL):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, case, str(ckpt), str(out), str(at), str(int(sig))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


# updates per epoch: 48 batches / accumulation (3, 2, 1)
@pytest.mark.parametrize(
    "case, sig, points",
    [
        ("step_bf16", signal.SIGINT, (0, 7)),
        ("epoch_fp16", signal.SIGKILL, (24,)),
        ("kaun_schedule", signal.SIGKILL, (1, 192)),
    ],
)
def test_resume_after_a_signal_is_bit_exact(tmp_path, case, sig, points):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    full = _run(case, tmp_path / "full", tmp_path / "full.pt", env)
    out, err = full.communicate(timeout=300)
    assert full.returncode == 0 and "done" in out, err
    expected = torch.load(tmp_path / "full.pt")
    for at in points:
        ckpt = tmp_path / f"cut{at}"
        p = _run(case, ckpt, tmp_path / "cut.pt", env, at, sig)
        out, err = p.communicate(timeout=300)
        # the signal landed: killed, interrupted before fit (KeyboardInterrupt) or inside it
        landed = (
            p.returncode == -signal.SIGKILL
            if sig == signal.SIGKILL
            else (p.returncode == -signal.SIGINT or "interrupted" in out)
        )
        assert landed, (at, p.returncode, out, err[-2000:])
        resumed = _run(case, ckpt, tmp_path / "cut.pt", env)
        out, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0 and "done" in out, (at, err)
        got = torch.load(tmp_path / "cut.pt")
        assert int(got[-1]) == int(expected[-1]), at
        for a, b in zip(got[:-1], expected[:-1]):
            assert torch.equal(a, b), at
        # the signal lands between saves: no write was cut short
        assert not ckpt.exists() or not [f for f in os.listdir(ckpt) if f.endswith(".tmp")], at
