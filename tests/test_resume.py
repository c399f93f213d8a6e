"""Exact resume in a new process after SIGINT or SIGKILL at any moment.

Each case trains in a subprocess with a shuffling loader, dropout, a
schedule, mixed precision and gradient accumulation, checkpointing as it
goes; it is stopped at a random moment, resumed in a fresh process, and must
end bit-equal to an uninterrupted run. The result does not depend on when
the signal lands (before the first checkpoint, mid-epoch, mid-window or
after the end): every moment must give the same weights.
"""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import sys, torch, ferrotorch as ft
    from ferrotorch import FlowBuilder, Trainer
    from ferrotorch.data import DataLoader
    from ferrotorch.nn import Dropout, GELU, Linear
    from ferrotorch.optim import Adam
    torch.set_num_threads(1)
    case, ckpt, out = sys.argv[1], sys.argv[2], sys.argv[3]
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
    print("ready", flush=True)
    tr.fit(DataLoader((x, y), 8, seed=7), epochs=4, checkpoint_dir=ckpt, checkpoint_every=1,
           resume=True)
    torch.save([p.detach().clone() for p in g.parameters()] + [torch.tensor(tr.global_step)], out)
    print("done", flush=True)
    """
)


def _run(case, ckpt, out, env):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, case, str(ckpt), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize(
    "case, sig",
    [("step_bf16", signal.SIGINT), ("epoch_fp16", signal.SIGKILL), ("kaun_schedule", signal.SIGKILL)],
)
def test_resume_after_a_signal_is_bit_exact(tmp_path, case, sig):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    full = _run(case, tmp_path / "full", tmp_path / "full.pt", env)
    assert full.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    out, err = full.communicate(timeout=300)
    duration = time.perf_counter() - t0
    assert full.returncode == 0, err
    expected = torch.load(tmp_path / "full.pt")

    ckpt = tmp_path / "cut"
    p = _run(case, ckpt, tmp_path / "cut.pt", env)
    assert p.stdout.readline().strip() == "ready"
    # any moment must do: before the first checkpoint, mid-window, or after the end
    time.sleep(duration * random.Random(case).uniform(0.2, 0.8))
    p.send_signal(sig)
    p.communicate(timeout=300)
    resumed = _run(case, ckpt, tmp_path / "cut.pt", env)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and "done" in out, err
    got = torch.load(tmp_path / "cut.pt")
    assert int(got[-1]) == int(expected[-1])
    for a, b in zip(got[:-1], expected[:-1]):
        assert torch.equal(a, b)
    leftovers = [f for f in os.listdir(ckpt) if f.endswith(".tmp")] if ckpt.exists() else []
    assert len(leftovers) <= 1  # at most the file a SIGKILL interrupted
