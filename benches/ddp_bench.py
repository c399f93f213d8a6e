"""1 vs 2 data-parallel processes on this machine's CPU (torchrun, gloo).

Each configuration trains the same MLP (width 256, per-rank batch 64) for a
fixed number of optimizer steps; the figure is samples per second over the
whole run (global batch x steps / wall time), median of interleaved rounds.
On a 2-core machine two processes share the cores that one process's
kernels could use: read the ratio as the cost of the all-reduce path, not as
a scaling promise. Run: ``.venv/bin/python benches/ddp_bench.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

STEPS = 300
WORKER = """
import sys, time, torch, ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.nn import GELU, LayerNorm, Linear
from ferrotorch.optim import Adam
torch.set_num_threads(1)
ft.distributed.init()
world = ft.distributed.world_size()
steps = int(sys.argv[1])
ft.manual_seed(0)
b = FlowBuilder.from_(Linear(256, 256)).through(GELU()).through(LayerNorm(256))
for _ in range(3):
    b.through(Linear(256, 256)).through(GELU()).through(LayerNorm(256))
g = b.through(Linear(256, 256)).build()
x, y = torch.randn(64 * world * steps, 256), torch.randn(64 * world * steps, 256)
tr = Trainer(g, Adam(g.parameters(), 1e-3))
loader = DataLoader((x, y), 64, shuffle=False)
tr.fit(loader, steps=20)  # warm-up
t0 = time.perf_counter()
tr.fit(loader, steps=steps)
dt = time.perf_counter() - t0
if tr.is_main:
    print(f"RESULT {64 * world * steps / dt:.1f}", flush=True)
"""


def run(nproc: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-c", WORKER, str(STEPS)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        with open("/tmp/ferrotorch_ddp_bench_worker.py", "w") as f:
            f.write(WORKER)
        cmd += ["/tmp/ferrotorch_ddp_bench_worker.py", str(STEPS)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("RESULT")))


def main() -> None:
    rounds = 3
    res: dict[int, list[float]] = {1: [], 2: []}
    t0 = time.time()
    for r in range(rounds):
        for n in (1, 2) if r % 2 == 0 else (2, 1):
            res[n].append(run(n))
    print(
        f"data-parallel CPU training, {os.cpu_count()} cores, MLP width 256, per-rank batch 64, {STEPS} steps"
    )
    for n, v in res.items():
        print(
            f"  {n} process(es): {statistics.median(v):9.0f} samples/s  (rounds: {', '.join(f'{x:.0f}' for x in v)})"
        )
    print(
        f"  2 / 1 throughput: {statistics.median(res[2]) / statistics.median(res[1]):.2f}  ({time.time() - t0:.0f}s)"
    )


if __name__ == "__main__":
    main()
