"""1 vs 2 data-parallel processes on this machine's CPU (torchrun, gloo).

Each configuration trains the same MLP (width 256, per-rank batch 64 and 512) for a
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

STEPS = 200
WORKER = """
import sys, time, torch, ferrotorch as ft
from ferrotorch import FlowBuilder, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.nn import GELU, LayerNorm, Linear
from ferrotorch.optim import Adam
torch.set_num_threads(1)
ft.distributed.init()
world = ft.distributed.world_size()
steps, batch = int(sys.argv[1]), int(sys.argv[2])
ft.manual_seed(0)
b = FlowBuilder.from_(Linear(256, 256)).through(GELU()).through(LayerNorm(256))
for _ in range(3):
    b.through(Linear(256, 256)).through(GELU()).through(LayerNorm(256))
g = b.through(Linear(256, 256)).build()
x, y = torch.randn(batch * world * steps, 256), torch.randn(batch * world * steps, 256)
tr = Trainer(g, Adam(g.parameters(), 1e-3))
loader = DataLoader((x, y), batch, shuffle=False)
tr.fit(loader, steps=20)  # warm-up
t0 = time.perf_counter()
tr.fit(loader, steps=steps)
dt = time.perf_counter() - t0
if tr.is_main:
    print(f"RESULT {batch * world * steps / dt:.1f}", flush=True)
"""


def run(nproc: int, batch: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-c", WORKER, str(STEPS), str(batch)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        with open("/tmp/ferrotorch_ddp_bench_worker.py", "w") as f:
            f.write(WORKER)
        cmd += ["/tmp/ferrotorch_ddp_bench_worker.py", str(STEPS), str(batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("RESULT")))


def main() -> None:
    rounds = 3
    print(
        f"data-parallel CPU training, {os.cpu_count()} cores, MLP width 256 (5 Linear + GELU + LayerNorm), {STEPS} steps"
    )
    for batch in (64, 512):
        res: dict[int, list[float]] = {1: [], 2: []}
        t0 = time.time()
        for r in range(rounds):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                res[n].append(run(n, batch))
        print(f"  per-rank batch {batch}:")
        for n, v in res.items():
            rs = ", ".join(f"{x:.0f}" for x in v)
            print(f"    {n} process(es): {statistics.median(v):9.0f} samples/s  (rounds: {rs})")
        ratio = statistics.median(res[2]) / statistics.median(res[1])
        print(f"    2 / 1 throughput: {ratio:.2f}  ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
