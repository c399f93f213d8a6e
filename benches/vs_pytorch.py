"""ferrotorch ``Trainer.step`` against a PyTorch eager training loop.

Five of floDl's benchmark models at a CPU size (width D=64, batch 32):

* ``mlp``: Linear, GELU, LayerNorm, 3 x [Linear, GELU, LayerNorm], Linear.
* ``residual_tower``: Linear, 12 x ``x + block(x)`` (block = Linear, GELU,
  LayerNorm, each with its own weights), Linear.
* ``gated_routing``: Linear, GELU, ``gate(SoftmaxRouter(D, 8), 8 blocks)``,
  Linear.
* ``feedback_fixed`` / ``iterative_refine``: Linear, GELU, LayerNorm, a loop
  node ``for_n(10)`` / ``for_n(8)`` over ``x + block(x)`` with ONE block
  shared by the iterations, Linear.

Both sides start from the same weights (ferrotorch's, copied into the torch
model), use Adam(lr=1e-3) and the MSE loss, and read the loss back to the host
every step (``trainer.step`` returns a float; torch calls ``loss.item()``).
The torch side runs twice: ``torch.optim.Adam`` with its default (foreach)
implementation and with ``fused=True``.

Before timing, each model is checked numerically: five ferrotorch steps and
five torch steps (fused Adam) from identical weights must give the same losses
and parameters.

Variants are warmed up, then timed in interleaved rounds (the order rotates
each round) so that drifts in machine load hit every variant alike; the
figure reported is the median microseconds per step over the rounds.

Run: ``.venv/bin/python benches/vs_pytorch.py [--quick] [--threads N]``.
``--device cuda`` runs the GPU comparison instead (``_vs_pytorch_cuda.py``:
full-size and CPU-size models, torch eager / whole-step CUDA graph /
torch.compile against ferrotorch eager and graph mode, kernel-time floor,
peak memory); without a CUDA device it exits with a message.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import ferrotorch as ft
from ferrotorch import FlowBuilder, SoftmaxRouter, Trainer
from ferrotorch.nn import GELU, LayerNorm, Linear
from ferrotorch.optim import Adam

D = 64
BATCH = 32
N_BATCHES = 4
LR = 1e-3
CHECK_STEPS = 5
# A variant whose slowest round is this many times its fastest is flagged as noisy.
NOISY = 1.5


# --------------------------------------------------------------------------- models


def ft_block():
    """A fresh ferrotorch Linear, GELU, LayerNorm chain (as a nested graph)."""
    return FlowBuilder.from_(Linear(D, D)).through(GELU()).through(LayerNorm(D)).build()


def ft_mlp():
    b = FlowBuilder.from_(Linear(D, D)).through(GELU()).through(LayerNorm(D))
    for _ in range(3):
        b.through(Linear(D, D)).through(GELU()).through(LayerNorm(D))
    return b.through(Linear(D, D)).build()


def ft_residual_tower():
    b = FlowBuilder.from_(Linear(D, D))
    for _ in range(12):
        b.also(ft_block())
    return b.through(Linear(D, D)).build()


def ft_refine(iters: int):
    """floDl's feedback_fixed / iterative_refine: a loop node whose body is a
    residual over one block (weights shared by every iteration)."""
    body = FlowBuilder.new().also(ft_block()).build()
    return (
        FlowBuilder.from_(Linear(D, D))
        .through(GELU())
        .through(LayerNorm(D))
        .loop_body(body)
        .for_n(iters)
        .through(Linear(D, D))
        .build()
    )


def ft_feedback_fixed():
    return ft_refine(10)


def ft_iterative_refine():
    return ft_refine(8)


def ft_gated_routing():
    experts = [ft_block() for _ in range(8)]
    return (
        FlowBuilder.from_(Linear(D, D))
        .through(GELU())
        .gate(SoftmaxRouter(D, 8), experts)
        .through(Linear(D, D))
        .build()
    )


def torch_block() -> nn.Module:
    return nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.LayerNorm(D))


class TorchResidualTower(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(D, D)
        self.blocks = nn.ModuleList(torch_block() for _ in range(12))
        self.out = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        for blk in self.blocks:
            x = x + blk(x)
        return self.out(x)


class TorchRefine(nn.Module):
    def __init__(self, iters: int) -> None:
        super().__init__()
        self.iters = iters
        self.head = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.LayerNorm(D))
        self.block = torch_block()
        self.out = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        for _ in range(self.iters):
            x = x + self.block(x)
        return self.out(x)


class TorchGatedRouting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(D, D)
        self.router = nn.Linear(D, 8)
        self.experts = nn.ModuleList(torch_block() for _ in range(8))
        self.out = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.inp(x))
        w = torch.softmax(self.router(h), -1)
        outs = torch.stack([e(h) for e in self.experts], -1)
        return self.out((outs * w.unsqueeze(-2)).sum(-1))


def torch_mlp() -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(D, D), nn.GELU(), nn.LayerNorm(D)]
    for _ in range(3):
        layers += [nn.Linear(D, D), nn.GELU(), nn.LayerNorm(D)]
    layers.append(nn.Linear(D, D))
    return nn.Sequential(*layers)


MODELS: dict[str, tuple[Callable[[], object], Callable[[], nn.Module]]] = {
    "mlp": (ft_mlp, torch_mlp),
    "residual_tower": (ft_residual_tower, TorchResidualTower),
    "gated_routing": (ft_gated_routing, TorchGatedRouting),
    "feedback_fixed": (ft_feedback_fixed, lambda: TorchRefine(10)),
    "iterative_refine": (ft_iterative_refine, lambda: TorchRefine(8)),
}


# --------------------------------------------------------------------------- setup


def copy_weights(graph, model: nn.Module) -> None:
    """Copies the ferrotorch graph's parameters into the torch model, in order."""
    src = list(graph.parameters())
    dst = list(model.parameters())
    assert len(src) == len(dst), f"parameter count: ferrotorch {len(src)}, torch {len(dst)}"
    for i, (pf, pt) in enumerate(zip(src, dst)):
        assert pf.shape == pt.shape, f"parameter {i}: ferrotorch {tuple(pf.shape)}, torch {tuple(pt.shape)}"
        with torch.no_grad():
            pt.copy_(pf)
    n_f = sum(p.numel() for p in src)
    n_t = sum(p.numel() for p in dst)
    assert n_f == n_t, f"parameter numel: ferrotorch {n_f}, torch {n_t}"


def make_ft(name: str):
    """A fresh ferrotorch graph and its Trainer."""
    graph = MODELS[name][0]()
    trainer = Trainer(graph, Adam(graph.parameters(), LR), loss="mse")
    return graph, trainer


def make_torch(name: str, graph, fused: bool):
    """A torch model holding the graph's weights, and its Adam."""
    model = MODELS[name][1]()
    copy_weights(graph, model)
    opt = (
        torch.optim.Adam(model.parameters(), lr=LR, fused=True)
        if fused
        else torch.optim.Adam(model.parameters(), lr=LR)
    )
    return model, opt


def torch_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    opt.zero_grad()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def check(name: str, xs: list[torch.Tensor], ys: list[torch.Tensor]) -> tuple[float, float, float, int]:
    """Max abs loss diff, param diff and param change after CHECK_STEPS steps; param numel."""
    graph, trainer = make_ft(name)
    model, opt = make_torch(name, graph, fused=True)
    init = [p.detach().clone() for p in model.parameters()]
    loss_diff = 0.0
    for i in range(CHECK_STEPS):
        x, y = xs[i % N_BATCHES], ys[i % N_BATCHES]
        lf = trainer.step(x, y)
        lt = torch_step(model, opt, x, y)
        loss_diff = max(loss_diff, abs(lf - lt))
    param_diff = max((pf - pt).abs().max().item() for pf, pt in zip(graph.parameters(), model.parameters()))
    moved = max((pt.detach() - p0).abs().max().item() for pt, p0 in zip(model.parameters(), init))
    assert moved > 0.0, "the parameters did not change: the check is vacuous"
    numel = sum(p.numel() for p in model.parameters())
    return loss_diff, param_diff, moved, numel


# --------------------------------------------------------------------------- timing


def variants(name: str, xs, ys) -> dict[str, Callable[[int], None]]:
    """Runs of n steps for ferrotorch and both torch Adam paths, from the same weights."""
    graph, trainer = make_ft(name)
    m_def, o_def = make_torch(name, graph, fused=False)
    m_fus, o_fus = make_torch(name, graph, fused=True)

    def run_ft(n: int) -> None:
        for i in range(n):
            trainer.step(xs[i % N_BATCHES], ys[i % N_BATCHES])

    def run_torch(model, opt):
        def run(n: int) -> None:
            for i in range(n):
                torch_step(model, opt, xs[i % N_BATCHES], ys[i % N_BATCHES])

        return run

    return {
        "ferrotorch": run_ft,
        "torch_default": run_torch(m_def, o_def),
        "torch_fused": run_torch(m_fus, o_fus),
    }


def bench(name: str, xs, ys, warmup: int, rounds: int, steps: int) -> dict[str, list[float]]:
    """Per-step microseconds of each variant, one figure per round."""
    variants_ = variants(name, xs, ys)
    for run in variants_.values():
        run(warmup)
    names = list(variants_)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            variants_[k](steps)
            times[k].append((time.perf_counter() - t0) / steps * 1e6)
    return times


def ops_per_step(run: Callable[[int], None], steps: int = 20) -> tuple[float, float]:
    """ATen ops per step from torch.profiler: (all of them, top-level only)."""
    from torch.profiler import ProfilerActivity, profile

    run(5)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(steps)
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    return len(events) / steps, len(top) / steps


def peak_bytes(run: Callable[[int], None], steps: int = 3) -> int:
    """Peak bytes the CPU allocator held during ``steps`` steps beyond what
    was live when they began (activations, gradients, temporaries), from
    the profiler's allocation events, replayed in time order."""
    from torch.profiler import ProfilerActivity, profile

    run(3)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run(steps)
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    live = top = 0
    for e in events:
        live += e.nbytes()
        top = max(top, live)
    return top


def op_counts(name: str, xs, ys) -> dict[str, tuple[float, float]]:
    return {k: ops_per_step(run) for k, run in variants(name, xs, ys).items()}


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and steps (a smoke run)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads(N) for both sides (default: torch's own choice); 1 is steadier on a busy machine",
    )
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: the GPU comparison")
    args = ap.parse_args()
    if args.device == "cuda":
        import _vs_pytorch_cuda

        _vs_pytorch_cuda.main(args.quick)
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    warmup, rounds, steps = (10, 3, 30) if args.quick else (50, 10, 200)

    print("ferrotorch Trainer.step vs PyTorch eager (Adam lr=1e-3, MSE loss)")
    print(f"  machine : {cpu_name()} ({platform.machine()}), {torch.get_num_threads()} torch threads")
    print(
        f"  versions: torch {torch.__version__}, ferrotorch {ft.__version__}, Python {platform.python_version()}"
    )
    print(f"  size    : D={D}, batch={BATCH}, {N_BATCHES} fixed batches, f32, CPU")
    print(f"  timing  : {warmup} warm-up steps, {rounds} interleaved rounds x {steps} steps; median us/step")
    print()

    torch.manual_seed(0)
    ft.manual_seed(0)
    xs = [torch.randn(BATCH, D) for _ in range(N_BATCHES)]
    ys = [torch.randn(BATCH, D) for _ in range(N_BATCHES)]

    print(f"Numerical check: {CHECK_STEPS} steps from identical weights, ferrotorch vs torch (fused Adam)")
    print(f"  {'model':<16} {'params':>8} {'max |dloss|':>12} {'max |dparam|':>13} {'max |update|':>13}")
    for name in MODELS:
        loss_diff, param_diff, moved, numel = check(name, xs, ys)
        print(f"  {name:<16} {numel:>8} {loss_diff:>12.2e} {param_diff:>13.2e} {moved:>13.2e}")
    print()

    results = {}
    for name in MODELS:
        results[name] = bench(name, xs, ys, warmup, rounds, steps)

    hdr = (
        f"  {'model':<16} {'ferrotorch':>11} {'torch':>11} {'torch':>11} {'ft/torch':>9} {'ft/torch':>9}"
        f"   {'ft spread':>9}"
    )
    print("Median us/step (lower is better); ratios < 1 mean ferrotorch is faster")
    print(hdr)
    print(f"  {'':<16} {'':>11} {'default':>11} {'fused':>11} {'default':>9} {'fused':>9}   {'min..max':>9}")
    for name, times in results.items():
        med = {k: statistics.median(v) for k, v in times.items()}
        f, d, u = med["ferrotorch"], med["torch_default"], med["torch_fused"]
        spread = f"{min(times['ferrotorch']):.0f}..{max(times['ferrotorch']):.0f}"
        print(f"  {name:<16} {f:>11.1f} {d:>11.1f} {u:>11.1f} {f / d:>9.3f} {f / u:>9.3f}   {spread:>9}")
    print()
    print("ATen ops per step (torch.profiler; all ops / top-level ops)")
    print(f"  {'model':<16} {'ferrotorch':>14} {'torch default':>14} {'torch fused':>14}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in MODELS:
            c = op_counts(name, xs, ys)
            cells = [f"{c[k][0]:.0f} / {c[k][1]:.0f}" for k in ("ferrotorch", "torch_default", "torch_fused")]
            print(f"  {name:<16} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14}")
    print()
    print("Peak CPU memory during a step beyond what was live before it (KiB; profiler allocation events)")
    print(f"  {'model':<16} {'ferrotorch':>11} {'torch default':>14} {'torch fused':>12} {'ft/fused':>9}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in MODELS:
            pk = {k: peak_bytes(run) for k, run in variants(name, xs, ys).items()}
            f, d, u = pk["ferrotorch"], pk["torch_default"], pk["torch_fused"]
            print(f"  {name:<16} {f / 1024:>11.1f} {d / 1024:>14.1f} {u / 1024:>12.1f} {f / u:>9.2f}")
    print()
    print("Per-round spread (min..max us/step) of the torch variants:")
    for name, times in results.items():
        d, u = times["torch_default"], times["torch_fused"]
        print(f"  {name:<16} default {min(d):.0f}..{max(d):.0f}   fused {min(u):.0f}..{max(u):.0f}")
    noisy = [
        f"{name}/{k}" for name, times in results.items() for k, v in times.items() if max(v) > NOISY * min(v)
    ]
    if noisy:
        print()
        print(
            f"WARNING: some rounds took over {NOISY}x the fastest ({', '.join(noisy)}). Other work was probably "
            "running: libtorch's intra-op threads slow down sharply when the cores are shared. Rerun on an "
            "idle machine; the medians above are suspect if many rounds were hit."
        )


if __name__ == "__main__":
    main()
