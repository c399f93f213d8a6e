"""``vs_pytorch.py --device cuda``: the GPU side-by-side (issue 17).

Models: floDl's dispatch-bound set at full size (mlp 1024->2048 b256,
residual_tower 1024 b256, gated_routing 512 b256, feedback_fixed 512 b128
for_n 10, iterative_refine 1024 b256) and at the CPU size (width 64, b32).

Variants, all from the same weights, Adam lr=1e-3, MSE, the loss read back
every step:

* ``torch_default`` / ``torch_fused``: torch eager, foreach / fused Adam;
* ``torch_graph``: a torch whole-step CUDA graph (capturable fused Adam,
  static input/target buffers, 3 warm-up steps on a side stream, replay);
* ``torch_compile``: ``torch.compile(mode="reduce-overhead")`` on the model
  with the fused optimizer eager, dropped when compiling takes over 60 s;
* ``ft_eager`` / ``ft_graph``: ``Trainer(device="cuda", cuda_graph=False /
  True)``, the loss read every step like the torch variants;
* ``ft_eager_lazy`` / ``ft_graph_lazy``: the same with batched loss reads
  (``loss_reads="batched"``, ``step(x, y, lazy=True)``; ``on_nonfinite="off"``
  eager, ``"skip"`` in graph mode): no host sync inside the timed steps
  (the losses are read after them), what ``fit`` does.

Also the summed CUDA kernel time per step of torch_fused (profiler): the
floor a whole-step graph approaches. Timing: interleaved rounds, median
us/step; ratios are against torch_fused within this one run. Peak memory:
``torch.cuda.max_memory_allocated`` over a few steps of each variant built
alone (weights, optimizer state and the step's temporaries).
"""

from __future__ import annotations

import gc
import signal
import statistics
import time
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

import ferrotorch as ft
from ferrotorch import FlowBuilder, SoftmaxRouter, Trainer
from ferrotorch.nn import GELU, LayerNorm, Linear
from ferrotorch.optim import Adam

DEV = "cuda"
LR = 1e-3
COMPILE_BUDGET_S = 60
# (model, width, batch): floDl's full size, then the CPU size.
FULL = [
    ("mlp", 1024, 256),
    ("residual_tower", 1024, 256),
    ("gated_routing", 512, 256),
    ("feedback_fixed", 512, 128),
    ("iterative_refine", 1024, 256),
]
SMALL = [(name, 64, 32) for name, _, _ in FULL]

# One training step on (x, y); the loss it returns (a float, or a device
# tensor for the lazy variants) is not used by the timing.
Step = Callable[[torch.Tensor, torch.Tensor], object]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- models


def _ft_block(d: int):
    return FlowBuilder.from_(Linear(d, d)).through(GELU()).through(LayerNorm(d)).build()


def ft_model(name: str, d: int):
    if name == "mlp":
        h = 2 * d if d >= 1024 else d  # full size: 1024 -> 2048 hidden
        b = FlowBuilder.from_(Linear(d, h)).through(GELU()).through(LayerNorm(h))
        for _ in range(3):
            b.through(Linear(h, h)).through(GELU()).through(LayerNorm(h))
        return b.through(Linear(h, d)).build()
    if name == "residual_tower":
        b = FlowBuilder.from_(Linear(d, d))
        for _ in range(12):
            b.also(_ft_block(d))
        return b.through(Linear(d, d)).build()
    if name == "gated_routing":
        experts = [_ft_block(d) for _ in range(8)]
        return (
            FlowBuilder.from_(Linear(d, d))
            .through(GELU())
            .gate(SoftmaxRouter(d, 8), experts)
            .through(Linear(d, d))
            .build()
        )
    iters = 10 if name == "feedback_fixed" else 8
    return (
        FlowBuilder.from_(Linear(d, d))
        .through(GELU())
        .through(LayerNorm(d))
        .loop_body(FlowBuilder.new().also(_ft_block(d)).build())
        .for_n(iters)
        .through(Linear(d, d))
        .build()
    )


def _t_block(d: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))


class _Residual(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.block = _t_block(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class _Refine(nn.Module):
    def __init__(self, d: int, iters: int) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.body = _Residual(d)
        self.out = nn.Linear(d, d)
        self.iters = iters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        for _ in range(self.iters):
            x = self.body(x)
        return self.out(x)


class _Gated(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.inp = nn.Linear(d, d)
        self.router = nn.Linear(d, 8)
        self.experts = nn.ModuleList(_t_block(d) for _ in range(8))
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.inp(x))
        w = torch.softmax(self.router(h), -1)
        outs = torch.stack([e(h) for e in self.experts], -1)
        return self.out((outs * w.unsqueeze(-2)).sum(-1))


def torch_model(name: str, d: int) -> nn.Module:
    if name == "mlp":
        h = 2 * d if d >= 1024 else d
        layers: list[nn.Module] = [nn.Linear(d, h), nn.GELU(), nn.LayerNorm(h)]
        for _ in range(3):
            layers += [nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h)]
        return nn.Sequential(*layers, nn.Linear(h, d))
    if name == "residual_tower":
        return nn.Sequential(nn.Linear(d, d), *[_Residual(d) for _ in range(12)], nn.Linear(d, d))
    if name == "gated_routing":
        return _Gated(d)
    return _Refine(d, 10 if name == "feedback_fixed" else 8)


def _copy(graph, model: nn.Module) -> None:
    src, dst = list(graph.parameters()), list(model.parameters())
    assert len(src) == len(dst) and all(a.shape == b.shape for a, b in zip(src, dst)), "parameter layout"
    with torch.no_grad():
        for a, b in zip(src, dst):
            b.copy_(a)


# --------------------------------------------------------------------------- variants


def torch_eager(model: nn.Module, fused: bool, lr: float = LR, loss_fn: Loss = F.mse_loss) -> Step:
    """torch eager: fused Adam, or torch's default Adam implementation."""
    opt = torch.optim.Adam(model.parameters(), lr, fused=True if fused else None)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def torch_graph(model: nn.Module, x0: torch.Tensor, y0: torch.Tensor) -> Step:
    """torch's whole-network capture recipe: capturable fused Adam, static
    buffers, warm-up on a side stream, one graph, replay."""
    opt = torch.optim.Adam(model.parameters(), LR, fused=True, capturable=True)
    sx, sy = x0.clone(), y0.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            F.mse_loss(model(sx), sy).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = F.mse_loss(model(sx), sy)
        static_loss.backward()
        opt.step()

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        sx.copy_(x)
        sy.copy_(y)
        graph.replay()
        return static_loss.item()

    return step


class _Budget(Exception):
    pass


def within_budget(run: Callable[[], object], seconds: int) -> bool:
    """Runs ``run()``; False when it takes over ``seconds`` (SIGALRM)."""

    def expire(signum, frame):
        raise _Budget

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        run()
    except _Budget:
        return False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return True


def torch_compiled(
    model: nn.Module,
    data,
    mode: Optional[str] = "reduce-overhead",
    lr: float = LR,
    loss_fn: Loss = F.mse_loss,
    budget: int = COMPILE_BUDGET_S,
) -> Optional[Step]:
    """``torch.compile(model, mode=mode)`` (the optimizer eager, fused); None
    when compiling the first steps takes over ``budget`` seconds."""
    compiled = torch.compile(model, mode=mode)
    step = torch_eager(compiled, fused=True, lr=lr, loss_fn=loss_fn)

    def first() -> None:
        for i in range(3):
            step(*data[i % len(data)])

    return step if within_budget(first, budget) else None


def ferrotorch_step(name: str, d: int, graph_mode: bool, lazy: bool = False) -> Step:
    ft.manual_seed(0)
    g = ft_model(name, d)
    g.to(DEV)
    if not lazy:
        trainer = Trainer(g, Adam(g.parameters(), LR), loss="mse", device=DEV, cuda_graph=graph_mode)
        return trainer.step
    lazy_trainer = Trainer(
        g,
        Adam(g.parameters(), LR),
        loss="mse",
        device=DEV,
        cuda_graph=graph_mode,
        loss_reads="batched",
        on_nonfinite="skip" if graph_mode else "off",
    )
    return lambda x, y: lazy_trainer.step(x, y, lazy=True)


def build(name: str, d: int, data) -> tuple[dict[str, Step], list[str]]:
    """Every variant from the same (ferrotorch-initialised) weights."""
    notes: list[str] = []
    ft.manual_seed(0)
    ref = ft_model(name, d)

    def tm() -> nn.Module:
        m = torch_model(name, d)
        _copy(ref, m)
        return m.to(DEV)

    v: dict[str, Step] = {
        "torch_default": torch_eager(tm(), fused=False),
        "torch_fused": torch_eager(tm(), fused=True),
        "torch_graph": torch_graph(tm(), *data[0]),
    }
    try:
        c = torch_compiled(tm(), data)
        if c is None:
            notes.append(f"torch_compile: over the {COMPILE_BUDGET_S} s compile budget, left out")
        else:
            v["torch_compile"] = c
    except Exception as e:  # noqa: BLE001 - a compiler failure is reported, not fatal
        notes.append(f"torch_compile: failed ({type(e).__name__}: {str(e)[:120]})")
    v["ft_eager"] = ferrotorch_step(name, d, False)
    v["ft_eager_lazy"] = ferrotorch_step(name, d, False, lazy=True)
    for key, lazy in (("ft_graph", False), ("ft_graph_lazy", True)):
        try:
            v[key] = ferrotorch_step(name, d, True, lazy=lazy)
        except Exception as e:  # noqa: BLE001
            notes.append(f"{key}: {type(e).__name__}: {str(e)[:160]}")
    return v, notes


# --------------------------------------------------------------------------- measures


def kernel_us(step: Step, data, steps: int = 20) -> float:
    """Summed CUDA kernel time per step (profiler)."""
    from torch.profiler import ProfilerActivity, profile

    for i in range(5):
        step(*data[i % len(data)])
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(steps):
            step(*data[i % len(data)])
        torch.cuda.synchronize()
    total = sum(getattr(e, "self_device_time_total", 0.0) for e in prof.key_averages())
    return total / steps


def time_rounds(v: dict[str, Step], data, rounds: int, steps: int) -> dict[str, list[float]]:
    for f in v.values():
        for i in range(10):
            f(*data[i % len(data)])
    names = list(v)
    out: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for i in range(steps):
                v[k](*data[i % len(data)])
            torch.cuda.synchronize()
            out[k].append((time.perf_counter() - t0) / steps * 1e6)
    return out


def peak_mib(name: str, d: int, data, variant: str) -> Optional[float]:
    """max_memory_allocated over 10 steps of one variant built alone."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    try:
        v = build_one(name, d, data, variant)
    except Exception:  # noqa: BLE001 - a variant that cannot be built has no figure
        return None
    for i in range(10):
        v(*data[i % len(data)])
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del v
    return peak / 2**20


def build_one(name: str, d: int, data, variant: str) -> Step:
    if variant in ("ft_eager", "ft_graph"):
        return ferrotorch_step(name, d, variant == "ft_graph")
    ft.manual_seed(0)
    ref = ft_model(name, d)
    m = torch_model(name, d)
    _copy(ref, m)
    m = m.to(DEV)
    return torch_eager(m, fused=True) if variant == "torch_fused" else torch_graph(m, *data[0])


def _ratio(med: dict[str, float], k: str, base: float) -> str:
    return f"{med[k] / base:.2f}" if k in med else "-"


def main(quick: bool) -> None:
    if not torch.cuda.is_available():
        raise SystemExit(
            "vs_pytorch.py --device cuda: no CUDA device here (torch.cuda.is_available() is False); "
            "run it on a GPU host, or without --device for the CPU benchmark"
        )
    rounds, steps = (3, 20) if quick else (7, 60)
    print("ferrotorch vs PyTorch on CUDA (Adam lr=1e-3, MSE, loss read every step)")
    print(
        f"  device  : {torch.cuda.get_device_name(0)}, torch {torch.__version__}, ferrotorch {ft.__version__}"
    )
    print(f"  timing  : {rounds} interleaved rounds x {steps} steps after 10 warm-up; median us/step")
    print()
    cols = [
        "torch_default",
        "torch_fused",
        "torch_graph",
        "torch_compile",
        "ft_eager",
        "ft_graph",
        "ft_eager_lazy",
        "ft_graph_lazy",
    ]
    print(
        f"  {'model':<16} {'D':>5} {'B':>4} | "
        + " ".join(f"{c:>13}" for c in cols)
        + f" {'kernels':>8} | {'ftG/fused':>9} {'ftE/fused':>9} {'ftG/kern':>8} {'tG/fused':>8}"
        + f" {'ftGL/fused':>10} {'ftGL/kern':>9}"
    )
    mem_rows = []
    for name, d, b in FULL + SMALL:
        torch.manual_seed(0)
        data = [(torch.randn(b, d, device=DEV), torch.randn(b, d, device=DEV)) for _ in range(8)]
        try:
            v, notes = build(name, d, data)
            kt = kernel_us(v["torch_fused"], data)
            t = time_rounds(v, data, rounds, steps)
        except Exception as e:  # noqa: BLE001
            print(f"  {name:<16} {d:>5} {b:>4} | FAILED {type(e).__name__}: {str(e)[:200]}")
            continue
        med = {k: statistics.median(x) for k, x in t.items()}
        cells = " ".join(f"{med[c]:>13.0f}" if c in med else f"{'-':>13}" for c in cols)
        fu = med["torch_fused"]
        print(
            f"  {name:<16} {d:>5} {b:>4} | {cells} {kt:>8.0f} | {_ratio(med, 'ft_graph', fu):>9} "
            f"{_ratio(med, 'ft_eager', fu):>9} {_ratio(med, 'ft_graph', kt):>8} {_ratio(med, 'torch_graph', fu):>8}"
            f" {_ratio(med, 'ft_graph_lazy', fu):>10} {_ratio(med, 'ft_graph_lazy', kt):>9}"
        )
        for n in notes:
            print(f"      note: {n}")
        del v
        mem_rows.append(
            (
                name,
                d,
                b,
                {
                    k: peak_mib(name, d, data, k)
                    for k in ("torch_fused", "torch_graph", "ft_eager", "ft_graph")
                },
            )
        )
    print()
    print("Peak CUDA memory over 10 steps, each variant built alone (MiB; torch.cuda.max_memory_allocated)")
    print(
        f"  {'model':<16} {'D':>5} {'B':>4} | {'torch_fused':>11} {'torch_graph':>11} {'ft_eager':>9} {'ft_graph':>9}"
    )
    for name, d, b, m in mem_rows:
        cells = " ".join(
            f"{m[k]:>{w}.1f}" if m[k] is not None else f"{'-':>{w}}"
            for k, w in (("torch_fused", 11), ("torch_graph", 11), ("ft_eager", 9), ("ft_graph", 9))
        )
        print(f"  {name:<16} {d:>5} {b:>4} | {cells}")
