"""floDl's ten benchmark models: ferrotorch ``Trainer.step`` against its peers.

Models (``suite_models.py``; floDl's architectures, FLODL_FACTS section 9):
mlp, convnet, gru_seq, lstm_seq, conv_autoenc, transformer, residual_tower,
gated_routing, iterative_refine, feedback_fixed. Adam (lr 1e-3; 1e-4 for the
transformer), MSE (cross entropy over [B*S, vocab] for the transformer), 4
fixed synthetic batches, f32, the loss read to the host every step.

CPU sizes (the default; floDl's full sizes with ``--size full``, the default
under ``--device cuda``). The five dispatch-bound models keep vs_pytorch.py's
width 64 / batch 32, which floDl's program in benches/flodl_models also uses:

    mlp              d=64 batch=32 (hidden = d; floDl's full size has 1024 -> 2048)
    convnet          c=8 (channels 3-8-16-32-64-64) image=32 classes=100 batch=16
    gru_seq          f=32 h=64 t=16 batch=32
    lstm_seq         f=32 h=64 t=16 batch=32 (2 layers)
    conv_autoenc     c=8 (channels 3-8-16-32-64 and back) image=32 batch=16
    transformer      vocab=512 d=64 heads=4 ff=256 seq=32 layers=4 batch=8
    residual_tower, gated_routing, iterative_refine, feedback_fixed: d=64 batch=32

Peers on the CPU (all from the same weights, ferrotorch's init copied into
the torch twin; one intra-op thread unless ``--threads``):

* ``ferrotorch``: ``Trainer(graph, ferrotorch.optim.Adam, loss=...).step``;
* ``torch_default`` / ``torch_fused``: torch eager, ``torch.optim.Adam`` with
  its default implementation and with ``fused=True``;
* ``compile_model``: ``torch.compile(model)`` (inductor), fused Adam eager
  (dynamo leaves ``nn.LSTM`` eager: ``torch._dynamo.config.allow_rnn`` is off);
* ``compile_step``: the whole step (zero_grad, forward, loss, backward,
  ``opt.step()``) in one ``torch.compile``d function, torch's documented way
  to compile an optimizer step (dynamo breaks the graph at ``backward``; the
  forward, its AOT backward and the Adam update are inductor code);
* ``flodl``: floDl's own Rust loop (``benches/flodl_models``, served as in
  vs_flodl.py) when its binary is found (FLODL_BENCH_BIN), CPU size only;
  the program has mlp, residual_tower, gated_routing, feedback_fixed and
  iterative_refine (not convnet, gru_seq, lstm_seq, conv_autoenc, transformer).

Under ``--device cuda``: ``ft_eager`` and ``ft_graph`` (``Trainer(...,
cuda_graph=True)``, the whole step in one CUDA graph) against
``torch_fused`` and ``torch_compile`` (``mode="reduce-overhead"``).

Timing: each side is warmed up, then timed in interleaved rounds (the order
rotates each round) of about ``--round-ms`` per side; the figure is the
median us/step over the rounds. Compile time (the first 3 steps, compiling
included; inductor's on-disk caches make later runs' figures smaller) is
reported apart; dynamo is reset before each model. Peak memory: a fresh
subprocess per side and model runs ``--memory-steps`` steps; on CPU it
reports the RSS high-water mark (VmHWM, what ``ru_maxrss`` reads) before
building the model and after the steps, on CUDA
``torch.cuda.max_memory_allocated``. ``--instructions`` counts instructions
per step under callgrind (step_instructions.py's counter; slow: four callgrind
runs per model, two at a time, each 3-4 minutes on a 2-core VM since it counts
the Python and torch start-up, which the short/long difference cancels).

Writes ``benches/results/suite.md``, ``suite.json`` and ``suite.svg`` (the
ratios per model and peer). Run::

    .venv/bin/python benches/suite.py [--model NAME ...] [--threads 1,default] [--quick]
    .venv/bin/python benches/suite.py --device cuda     # make bench-gpu
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _vs_pytorch_cuda as cuda_side  # noqa: E402  (torch eager / compiled steps, the compile budget)
import suite_models as sm  # noqa: E402
import suite_report  # noqa: E402
import vs_flodl  # noqa: E402  (the floDl binary and its serving loop)
from ferrotorch import Trainer  # noqa: E402
from ferrotorch.optim import Adam  # noqa: E402

N_BATCHES = 4
FLODL_MODELS = ("mlp", "residual_tower", "gated_routing", "feedback_fixed", "iterative_refine")
CPU_SIDES = ["ferrotorch", "torch_default", "torch_fused", "compile_model", "compile_step"]
CUDA_SIDES = ["ft_eager", "ft_graph", "torch_fused", "torch_compile"]
# Compiled sides are measured with --memory-sides all (each child compiles again).
MEMORY_SIDES = {
    "cpu": ["ferrotorch", "torch_default", "torch_fused"],
    "cuda": ["ft_eager", "ft_graph", "torch_fused"],
}
# A side whose slowest round is this many times its fastest is flagged as noisy.
NOISY = 1.5
COMPILED = ("compile_model", "compile_step", "torch_compile")
CHILD_TAG = "SUITE_CHILD"

Step = cuda_side.Step
# n steps -> seconds they took.
Runner = Callable[[int], float]


# --------------------------------------------------------------------------- sides


def torch_compiled_step(model: torch.nn.Module, data, lr: float, loss_fn, budget: int) -> Optional[Step]:
    """The whole step in one ``torch.compile``d function; None over budget."""
    opt = torch.optim.Adam(model.parameters(), lr)

    @torch.compile
    def whole(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        return whole(x, y).item()

    def first() -> None:
        for i in range(3):
            step(*data[i % len(data)])

    return step if cuda_side.within_budget(first, budget) else None


def make_step(
    name: str, size: str, side: str, data, device: str = "cpu", budget: int = 300
) -> Optional[Step]:
    """One side's training step on ``name`` at ``size``, from ferrotorch's
    seeded init (every side gets the same weights); None when a compiled
    side is over its compile budget. The bench, its memory children and the
    tests all build their steps here."""
    spec = sm.SPECS[name]
    graph = sm.build_ft(name, size)
    if side in ("ferrotorch", "ft_eager", "ft_graph"):
        if device != "cpu":
            graph.to(device)
        kw = {"device": device, "cuda_graph": side == "ft_graph"} if device != "cpu" else {}
        return Trainer(graph, Adam(graph.parameters(), spec.lr), loss=spec.loss, **kw).step
    model = sm.twin(name, size, graph).to(device)
    if side in ("torch_default", "torch_fused"):
        return cuda_side.torch_eager(model, side == "torch_fused", spec.lr, spec.torch_loss)
    if side == "compile_model":
        return cuda_side.torch_compiled(model, data, None, spec.lr, spec.torch_loss, budget)
    if side == "torch_compile":
        return cuda_side.torch_compiled(model, data, "reduce-overhead", spec.lr, spec.torch_loss, budget)
    if side == "compile_step":
        return torch_compiled_step(model, data, spec.lr, spec.torch_loss, budget)
    raise ValueError(f"unknown side {side!r}")


def device_data(name: str, size: str, device: str) -> list:
    return [(x.to(device), y.to(device)) for x, y in sm.batches(name, size, N_BATCHES)]


def runner(step: Step, data, sync: Callable[[], None]) -> Runner:
    def run(n: int) -> float:
        sync()
        t0 = time.perf_counter()
        for i in range(n):
            step(*data[i % len(data)])
        sync()
        return time.perf_counter() - t0

    return run


def flodl_runner(server: vs_flodl.FlodlServer) -> Runner:
    return lambda n: server.chunk(n) * n / 1e6


# --------------------------------------------------------------------------- one model


def bench_model(name: str, args, threads: int, binary: Optional[Path]) -> dict:
    """Times every side of one model in interleaved rounds."""
    size, device = args.size, args.device
    # A fresh dynamo per model: the compiled step function (one code object)
    # and the shared module classes would otherwise reach dynamo's recompile
    # limit across models, after which dynamo silently runs them eagerly.
    torch._dynamo.reset()
    data = device_data(name, size, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sides = CUDA_SIDES if device == "cuda" else CPU_SIDES
    if args.no_compile:
        sides = [s for s in sides if s not in COMPILED]
    runs: Dict[str, Runner] = {}
    out: dict = {"size": sm.size_text(name, size), "compile_s": {}, "notes": [], "first_loss": {}}
    out["params"] = sm.param_count(sm.build_ft(name, size))
    for side in sides:
        t0 = time.perf_counter()
        try:
            step = make_step(name, size, side, data, device, args.compile_budget)
        except Exception as e:  # noqa: BLE001 - a side that fails is reported, not fatal
            out["notes"].append(f"{side}: failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
            continue
        if step is None:
            out["notes"].append(f"{side}: over the {args.compile_budget} s compile budget, left out")
            continue
        if side in COMPILED:
            out["compile_s"][side] = time.perf_counter() - t0
        else:
            out["first_loss"][side] = float(step(*data[0]))  # type: ignore[arg-type]
        runs[side] = runner(step, data, sync)
    server = None
    if binary is not None and device == "cpu" and size == "cpu" and name in FLODL_MODELS:
        env = dict(vs_flodl.flodl_env(), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        server = vs_flodl.FlodlServer(binary, name, args.warmup, env)
        if server.params != out["params"]:
            out["notes"].append(f"flodl: {server.params} parameters, ferrotorch {out['params']}")
        runs["flodl"] = flodl_runner(server)
    losses = set(out["first_loss"].values())
    if len(losses) > 1:
        out["notes"].append(f"first-step losses differ across sides: {out['first_loss']}")
    try:
        for side, run in list(runs.items()):
            try:
                run(args.warmup)  # a CUDA graph is captured here, at the 4th step
            except Exception as e:  # noqa: BLE001 - a side that fails is reported, not fatal
                out["notes"].append(f"{side}: failed in warm-up ({type(e).__name__}: {str(e)[:160]})")
                del runs[side]
        # Steps per round: about --round-ms of the first side.
        first = next(iter(runs.values()))
        per = first(5) / 5
        steps = max(3, int(args.round_ms / 1e3 / max(per, 1e-9)))
        names = list(runs)
        times: Dict[str, List[float]] = {k: [] for k in names}
        for r in range(args.rounds):
            for k in names[r % len(names) :] + names[: r % len(names)]:
                times[k].append(runs[k](steps) / steps * 1e6)
    finally:
        if server is not None:
            server.close()
    noisy = [f"{k} {max(v) / min(v):.1f}x" for k, v in times.items() if max(v) > NOISY * min(v)]
    if noisy:
        out["notes"].append(
            f"noisy rounds (slowest/fastest over {NOISY}x: {', '.join(noisy)}): other work was running"
        )
    out["steps_per_round"] = steps
    out["us"] = {k: statistics.median(v) for k, v in times.items()}
    out["spread"] = {k: [min(v), max(v)] for k, v in times.items()}
    return out


# --------------------------------------------------------------------------- subprocesses


def child_cmd(name: str, side: str, args, steps: int, threads: int) -> List[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        side,
        "--size",
        args.size,
        "--device",
        args.device,
        "--child-steps",
        str(steps),
        "--warmup",
        str(args.child_warmup),
        "--compile-budget",
        str(args.compile_budget),
        "--threads",
        str(threads),
    ]


def rss_high_water_kib() -> int:
    """This process's peak RSS in KiB: VmHWM, the high-water mark that
    ``getrusage(RUSAGE_SELF).ru_maxrss`` reads, but of this process's own
    memory map; ru_maxrss also keeps the pre-exec figure of the forked
    parent (the bench itself), which would hide the child's own peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_main(name: str, side: str, args) -> None:
    """A fresh process: one side, warm-up + --child-steps steps; prints the
    memory baseline (before building the model) and peak: RSS high-water
    mark in KiB on CPU, max_memory_allocated bytes on CUDA."""
    torch.set_num_threads(int(args.threads))
    data = device_data(name, args.size, args.device)
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = rss_high_water_kib()
    step = make_step(name, args.size, side, data, args.device, args.compile_budget)
    if step is None:
        raise SystemExit(f"{side}: over the compile budget")
    for i in range(args.warmup + args.child_steps):
        step(*data[i % len(data)])
    if args.device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = rss_high_water_kib()
    print(f"{CHILD_TAG} {base} {peak}")


def child_env(threads: int) -> Dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONHASHSEED="0")


def memory(name: str, side: str, args, threads: int) -> Optional[dict]:
    """Baseline and peak memory of one side in a fresh process (MiB)."""
    cmd = child_cmd(name, side, args, args.memory_steps, threads)
    p = subprocess.run(cmd, capture_output=True, text=True, env=child_env(threads))
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith(CHILD_TAG)), None)
    if p.returncode != 0 or line is None:
        print(f"  memory {name}/{side} failed: {(p.stderr or p.stdout).strip()[-300:]}", file=sys.stderr)
        return None
    base, peak = (int(v) for v in line.split()[1:])
    unit = 2**20 if args.device == "cuda" else 1024  # bytes / KiB to MiB
    return {"base_mib": base / unit, "peak_mib": peak / unit, "delta_mib": (peak - base) / unit}


def instructions(name: str, sides: List[str], args) -> Dict[str, Optional[float]]:
    """Instructions per step of each side (callgrind; the difference of two
    step counts). Counts do not depend on load, so the runs go two at a time."""
    from concurrent.futures import ThreadPoolExecutor

    import step_instructions

    short, long_ = args.instructions_steps

    def count(side: str, n: int) -> Optional[int]:
        try:
            return step_instructions.callgrind(child_cmd(name, side, args, n, 1), child_env(1))
        except SystemExit as e:
            print(f"  instructions {name}/{side} failed: {str(e)[-300:]}", file=sys.stderr)
            return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {(s, n): pool.submit(count, s, n) for s in sides for n in (short, long_)}
    out: Dict[str, Optional[float]] = {}
    for s in sides:
        lo, hi = jobs[(s, short)].result(), jobs[(s, long_)].result()
        out[s] = None if lo is None or hi is None else (hi - lo) / (long_ - short)
    return out


# --------------------------------------------------------------------------- main


def memory_sides(args) -> List[str]:
    if not args.memory_sides:
        return MEMORY_SIDES[args.device]
    if args.memory_sides == "all":
        return CUDA_SIDES if args.device == "cuda" else CPU_SIDES
    return args.memory_sides.split(",")


def parse_threads(spec: str) -> List[int]:
    default = torch.get_num_threads()
    return [default if t.strip() == "default" else int(t) for t in spec.split(",")]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument(
        "--size", choices=("cpu", "full", "tiny"), default=None, help="default: cpu; full on cuda"
    )
    ap.add_argument("--model", action="append", choices=sm.NAMES, help="repeatable; default: all ten")
    ap.add_argument(
        "--threads",
        default="1",
        help="comma list of intra-op thread counts, 'default' for torch's own (e.g. 1,default)",
    )
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--round-ms", type=float, default=100.0, help="time per side per round")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--compile-budget", type=int, default=300, help="seconds per compiled side")
    ap.add_argument("--no-compile", action="store_true", help="leave out the torch.compile sides")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--memory-steps", type=int, default=10)
    ap.add_argument(
        "--memory-sides", default=None, help="comma list (default: the eager sides; 'all' adds compiled)"
    )
    ap.add_argument("--instructions", action="store_true", help="callgrind instructions/step (slow)")
    ap.add_argument("--instructions-steps", type=int, nargs=2, default=[10, 40], metavar=("SHORT", "LONG"))
    ap.add_argument("--instructions-sides", default="ferrotorch,torch_fused")
    ap.add_argument("--quick", action="store_true", help="3 rounds of 30 ms: a smoke run")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="folder for suite.md/.json/.svg")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "SIDE"), help=argparse.SUPPRESS)
    ap.add_argument("--child-steps", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--child-warmup", type=int, default=3, help=argparse.SUPPRESS)
    return ap


def main() -> None:
    args = build_parser().parse_args()
    args.size = args.size or ("full" if args.device == "cuda" else "cpu")
    if args.child:
        args.warmup = args.child_warmup
        child_main(*args.child, args)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "suite.py --device cuda: no CUDA device here (torch.cuda.is_available() is False); "
            "run it on a GPU host, or without --device for the CPU suite"
        )
    if args.quick:
        args.rounds, args.round_ms, args.warmup = 3, 30.0, 5
    names = args.model or sm.NAMES
    binary, _ = vs_flodl.find_binary() if args.device == "cpu" else (None, [])
    meta = suite_report.machine(args.device)
    meta.update(
        size=args.size,
        sizes={n: sm.size_text(n, args.size) for n in names},
        rounds=args.rounds,
        round_ms=args.round_ms,
        warmup=args.warmup,
        flodl=str(binary) if binary else None,
        flodl_missing=[n for n in names if n not in FLODL_MODELS],
    )
    print(suite_report.header(meta))
    runs = []
    warnings.filterwarnings("ignore", message=".*TF32.*")
    for threads in parse_threads(args.threads):
        torch.set_num_threads(threads)
        models: Dict[str, dict] = {}
        for name in names:
            t0 = time.perf_counter()
            models[name] = bench_model(name, args, threads, binary)
            if not args.no_memory:
                mem_sides = memory_sides(args)
                models[name]["memory"] = {s: memory(name, s, args, threads) for s in mem_sides}
            if args.instructions and args.device == "cpu" and threads == 1:
                models[name]["instructions"] = instructions(name, args.instructions_sides.split(","), args)
            print(
                suite_report.model_line(name, models[name], args.device),
                f"({time.perf_counter() - t0:.0f} s)",
            )
        runs.append({"threads": threads, "models": models})
    suite_report.write(args.out, meta, runs)
    print()
    print(suite_report.markdown(meta, runs))
    print(f"wrote {args.out / 'suite.md'}, suite.json, suite.svg")


if __name__ == "__main__":
    main()
