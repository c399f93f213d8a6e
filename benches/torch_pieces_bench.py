"""Cost of the torch-pieces path in the Trainer: a torch.nn.Module model
and/or a torch.optim optimizer (driven through Python under the GIL) against
a ferrotorch graph and optimizer (the step in Rust, GIL released).

The same MLP (linear-gelu-linear-gelu-linear) either as a FlowBuilder graph or
as a torch.nn.Sequential; Adam (ferrotorch fused or torch's default); median
microseconds per Trainer.step over interleaved rounds. Run with `make bench`
or directly.
"""

import argparse
import statistics
import time

import torch

import ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.nn import GELU, Linear


def _graph(d, h):
    torch.manual_seed(0)
    return (
        FlowBuilder.from_(Linear(d, h))
        .through(GELU())
        .through(Linear(h, h))
        .through(GELU())
        .through(Linear(h, d))
        .build()
    )


def _torch(d, h):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(d, h), torch.nn.GELU(), torch.nn.Linear(h, h), torch.nn.GELU(), torch.nn.Linear(h, d)
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=100)
    a = ap.parse_args()
    torch.set_num_threads(1)
    x, y = torch.randn(a.batch, a.dim), torch.randn(a.batch, a.dim)
    combos = {
        "graph + ferrotorch Adam (Rust path)": (_graph, lambda ps: ft.optim.Adam(ps, 1e-3)),
        "graph + torch Adam": (_graph, lambda ps: torch.optim.Adam(ps, 1e-3)),
        "torch module + ferrotorch Adam": (_torch, lambda ps: ft.optim.Adam(ps, 1e-3)),
        "torch module + torch Adam": (_torch, lambda ps: torch.optim.Adam(ps, 1e-3)),
    }
    trainers = {}
    for name, (make_model, make_opt) in combos.items():
        m = make_model(a.dim, a.hidden)
        trainers[name] = Trainer(m, make_opt(list(m.parameters())), loss="mse")
        for _ in range(5):
            trainers[name].step(x, y)
    times = {n: [] for n in trainers}
    for _ in range(a.rounds):
        for n, t in trainers.items():
            t0 = time.perf_counter()
            for _ in range(a.steps):
                t.step(x, y)
            times[n].append((time.perf_counter() - t0) / a.steps * 1e6)

    def loop(model, opt):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    m = _torch(a.dim, a.hidden)
    o = torch.optim.Adam(m.parameters(), 1e-3)
    eager = []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            loop(m, o)
        eager.append((time.perf_counter() - t0) / a.steps * 1e6)
    base = statistics.median(times["graph + ferrotorch Adam (Rust path)"])
    print(
        f"Trainer.step, MLP {a.dim}-{a.hidden}-{a.hidden}-{a.dim}, batch {a.batch}, 1 thread (median us/step)"
    )
    for n, ts in times.items():
        med = statistics.median(ts)
        print(f"  {n:40s} {med:8.1f} us  ({med / base:4.2f}x the Rust path)")
    print(f"  {'hand-written torch eager loop':40s} {statistics.median(eager):8.1f} us")


if __name__ == "__main__":
    main()
