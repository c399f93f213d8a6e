"""torch.compile over a torch model that holds a ferrotorch graph: the graph
is one intended graph break (an opaque call into Rust), the torch code
around it is compiled by inductor. Interleaved rounds, median per-step time
(forward + backward), against the same model eager; compile time reported
separately. CPU, one thread unless --threads.

    python benches/compile_graph_bench.py [--steps 200] [--rounds 5] [--threads 1]
"""

import argparse
import statistics
import time

import torch

import ferrotorch as ft


def build(d: int) -> torch.nn.Module:
    torch.manual_seed(0)
    g = (
        ft.FlowBuilder.from_(ft.nn.Linear(d, d))
        .through(ft.nn.GELU())
        .through(ft.nn.LayerNorm(d))
        .also(ft.nn.Linear(d, d))
        .through(ft.nn.Linear(d, d))
        .build()
    )

    class Holder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.GELU(), torch.nn.LayerNorm(d))
            self.graph = g
            self.head = torch.nn.Linear(d, d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.graph(self.pre(x)))

    return Holder()


def step_time(model: torch.nn.Module, x: torch.Tensor, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        model(x).square().mean().backward()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dim", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    eager = build(a.dim)
    x = torch.randn(32, a.dim)
    t0 = time.perf_counter()
    compiled = torch.compile(build(a.dim))
    compiled(x).square().mean().backward()  # compile (forward and backward graphs)
    compile_s = time.perf_counter() - t0
    for m in (eager, compiled):  # warm-up
        step_time(m, x, 20)
    e, c = [], []
    for _ in range(a.rounds):
        e.append(step_time(eager, x, a.steps))
        c.append(step_time(compiled, x, a.steps))
    me, mc = statistics.median(e), statistics.median(c)
    print(f"torch.compile around a ferrotorch graph (d={a.dim}, batch 32, {a.threads} thread(s))")
    print(f"  compile time           {compile_s:8.2f} s")
    print(f"  eager step             {me * 1e6:8.1f} us")
    print(f"  compiled step          {mc * 1e6:8.1f} us")
    print(f"  compiled / eager       {mc / me:8.3f}")


if __name__ == "__main__":
    main()
