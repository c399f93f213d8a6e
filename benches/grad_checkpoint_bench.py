"""Gradient checkpointing: activation memory against step time.

A deep residual tower on CPU (float32): ``BLOCKS`` blocks ``x + GELU(Linear(x))``
with Linear(WIDTH, WIDTH), batch ``BATCH`` (48, 1024, 256 by default). One
step is a forward and a backward of ``(out * proj).sum()``; the gradients
stay allocated between steps, so what a step adds on top is activations and
temporaries. Variants:

* ferrotorch graph, plain: ``FlowBuilder.new().also(block)`` x BLOCKS.
* ferrotorch graph, ``.also(block).checkpoint()`` on every block.
* ferrotorch ``grad_checkpoint_sequential`` over the BLOCKS residual blocks in
  ``SEGMENTS`` segments (torch's split: every segment but the last is
  checkpointed).
* torch eager plain, ``torch.utils.checkpoint`` per block, and torch's
  ``checkpoint_sequential`` with the same segments, as reference points.

Peak memory is the CPU allocator's peak during a step beyond what was live
before it (``vs_pytorch.peak_bytes``: torch.profiler allocation events
replayed in time order). Step time is the median over interleaved rounds.
Nothing here is asserted; tests/test_grad_checkpoint.py checks correctness.

Run: ``.venv/bin/python benches/grad_checkpoint_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ferrotorch as ft  # noqa: E402
import vs_pytorch as vp  # noqa: E402  (peak_bytes, cpu_name)
from ferrotorch import FlowBuilder  # noqa: E402
from ferrotorch.nn import GELU, Linear  # noqa: E402

BLOCKS, WIDTH, BATCH, SEGMENTS = 48, 1024, 256, 8


def ft_block():
    return FlowBuilder.from_(Linear(WIDTH, WIDTH)).through(GELU()).build()


def ft_tower(mark: bool):
    b = FlowBuilder.new()
    for _ in range(BLOCKS):
        b = b.also(ft_block())
        if mark:
            b = b.checkpoint()
    return b.build()


def ft_residual_blocks():
    return [FlowBuilder.new().also(ft_block()).build() for _ in range(BLOCKS)]


class TorchResidual(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.gelu(self.lin(x))


def variants(x: torch.Tensor, proj: torch.Tensor) -> dict[str, Callable[[int], None]]:
    plain, marked, blocks = ft_tower(False), ft_tower(True), ft_residual_blocks()
    tower = torch.nn.Sequential(*[TorchResidual() for _ in range(BLOCKS)])

    def steps(forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                (forward(x) * proj).sum().backward()

        return run

    def torch_per_block(t: torch.Tensor) -> torch.Tensor:
        for m in tower:
            t = checkpoint(m, t, use_reentrant=False)
        return t

    return {
        "ferrotorch graph": steps(plain),
        "ferrotorch graph .checkpoint() per block": steps(marked),
        f"ferrotorch grad_checkpoint_sequential({SEGMENTS})": steps(
            lambda t: ft.grad_checkpoint_sequential(blocks, SEGMENTS, t)
        ),
        "torch eager": steps(tower),
        "torch checkpoint per block": steps(torch_per_block),
        f"torch checkpoint_sequential({SEGMENTS})": steps(
            lambda t: checkpoint_sequential(tower, SEGMENTS, t, use_reentrant=False)
        ),
    }


def main() -> None:
    global BLOCKS, BATCH
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16 blocks, batch 64, one round (a smoke run)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.quick:
        BLOCKS, BATCH, args.rounds = 16, 64, 1
    torch.manual_seed(0)
    x = torch.randn(BATCH, WIDTH, requires_grad=True)
    proj = torch.randn(BATCH, WIDTH)
    runs = variants(x, proj)
    print(f"grad checkpointing: {BLOCKS} x [x + GELU(Linear({WIDTH},{WIDTH})(x))], batch {BATCH}, float32")
    print(f"CPU: {vp.cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    peak = {name: vp.peak_bytes(run, steps=1) for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            runs[name](1)
            times[name].append(time.perf_counter() - t0)
    act = BATCH * WIDTH * 4
    print(f"(one {BATCH}x{WIDTH} float32 activation = {act / 2**20:.1f} MiB)")
    print(f"{'variant':<48} {'peak MiB':>9} {'per block':>10} {'step ms':>9}")
    for name in names:
        print(
            f"{name:<48} {peak[name] / 2**20:>9.1f} {peak[name] / BLOCKS / 2**20:>10.2f} "
            f"{statistics.median(times[name]) * 1e3:>9.0f}"
        )


if __name__ == "__main__":
    main()
