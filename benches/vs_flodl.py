"""ferrotorch ``Trainer.step`` against floDl's own Rust training loop (CPU).

The five models of ``benches/vs_pytorch.py`` (mlp, residual_tower,
gated_routing, feedback_fixed, iterative_refine; width D=64, batch 32, 4 fixed
random batches, Adam lr 1e-3, MSE loss, loss read to the host every step),
with ONE intra-op thread on both sides:

* ferrotorch: the ``ft_*`` builders of vs_pytorch.py and ``Trainer.step``,
  in this process, ``torch.set_num_threads(1)``.
* floDl 0.5.3: ``benches/flodl_models`` (a small cargo program using floDl from
  crates.io; the same architectures built with floDl's FlowBuilder and its
  benchmark loop: forward, mse_loss, zero_grad, backward, Adam step,
  loss.item()), run as a subprocess with OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
  (floDl has no set_num_threads).

Rounds are interleaved. By default (``--chunk 20``) each model's floDl loop
runs in one long-lived subprocess (``flodl_models --serve``: built and warmed
up once, then asked over a pipe for chunks of steps, each timed inside the
binary) and the two sides alternate chunks of ``--chunk`` steps, a few
milliseconds each, in an order that alternates between rounds: on a shared
machine whose speed drifts from second to second, both sides of a pair meet
the same speed. ``--chunk 0`` instead runs, per round and model, one fresh
floDl subprocess (build, ``--warmup`` steps, ``--steps`` timed steps) and
``--steps`` ferrotorch steps back to back. The figures are the median us/step
over the rounds and the median of the per-round ratios. Weights differ (each
side's own init); the work per step does not.

Build floDl's program once (the first build compiles floDl's C++ shim against
the pip libtorch; 10-20 minutes on 2 cores)::

    LIBTORCH_PATH=$PWD/.venv/lib/python3.11/site-packages/torch \\
    CARGO_TARGET_DIR=$PWD/benches/flodl_models/target \\
        cargo build --release --manifest-path benches/flodl_models/Cargo.toml

(flodl-sys's build script needs only LIBTORCH_PATH: the folder holding
``include/torch/csrc/api/include/torch/torch.h`` and ``lib/libtorch.so``; the
pip wheel's torch package folder is one. Any CARGO_TARGET_DIR works; then point
FLODL_BENCH_BIN at ``$CARGO_TARGET_DIR/release/flodl_models``.)

Run::

    .venv/bin/python benches/vs_flodl.py [--chunk 20] [--rounds N] [--steps 200] [--warmup 50] [--model NAME ...]

The binary is looked up in FLODL_BENCH_BIN, else
``$CARGO_TARGET_DIR/release/flodl_models``, else
``benches/flodl_models/target/release/flodl_models``. This script puts the
torch package's lib/ on LD_LIBRARY_PATH for the subprocess (the binary has no
rpath); that torch must be the one the binary was built against.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ferrotorch as ft  # noqa: E402
import vs_pytorch as vp  # noqa: E402  (the ft_* builders and sizes)

NOISY = 1.5
BUILD_HINT = """floDl benchmark binary not found (looked in: {looked}).

Build it (first build compiles floDl's C++ shim; 10-20 minutes on 2 cores):

  LIBTORCH_PATH={torch_dir} \\
  CARGO_TARGET_DIR={repo}/benches/flodl_models/target \\
      cargo build --release --manifest-path {repo}/benches/flodl_models/Cargo.toml

then rerun this script, or set FLODL_BENCH_BIN=/path/to/flodl_models."""


def torch_dir() -> Path:
    return Path(torch.__file__).resolve().parent


def find_binary() -> tuple[Path | None, list[str]]:
    cands: list[Path] = []
    if os.environ.get("FLODL_BENCH_BIN"):
        cands.append(Path(os.environ["FLODL_BENCH_BIN"]))
    if os.environ.get("CARGO_TARGET_DIR"):
        cands.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "flodl_models")
    cands.append(HERE / "flodl_models" / "target" / "release" / "flodl_models")
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return c, [str(c) for c in cands]
    return None, [str(c) for c in cands]


def flodl_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    lib = str(torch_dir() / "lib")
    env["LD_LIBRARY_PATH"] = lib + (os.pathsep + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def flodl_round(
    binary: Path, name: str, warmup: int, steps: int, env: dict[str, str]
) -> tuple[float, int | None]:
    """One floDl round in a fresh process: (us/step, parameter count it reported)."""
    cmd = [str(binary), "--model", name, "--rounds", "1", "--steps", str(steps), "--warmup", str(warmup)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"floDl run failed ({' '.join(cmd)}), exit {p.returncode}:\n{p.stderr}{p.stdout}")
    us = None
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == "FLODL" and f[1] == name:
            us = float(f[2])
    if us is None:
        raise SystemExit(f"no 'FLODL {name} ...' line from {' '.join(cmd)}:\n{p.stdout}{p.stderr}")
    params = None
    for line in p.stderr.splitlines():
        if f": {name}: " in line and " params" in line:
            params = int(line.split(f": {name}: ", 1)[1].split()[0])
    return us, params


class FlodlServer:
    """One model's floDl loop in a long-lived ``flodl_models --serve`` process."""

    def __init__(self, binary: Path, name: str, warmup: int, env: dict[str, str]):
        cmd = [str(binary), "--serve", "--model", name, "--warmup", str(warmup)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.out, self.inp = self.proc.stdout, self.proc.stdin
        ready = self.out.readline().split()
        if len(ready) != 2 or ready[0] != "READY":
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise SystemExit(f"floDl server did not start ({' '.join(cmd)}); rebuild flodl_models:\n{err}")
        self.params = int(ready[1])

    def chunk(self, steps: int) -> float:
        """us/step over ``steps`` steps, timed inside the binary."""
        self.inp.write(f"{steps}\n")
        self.inp.flush()
        line = self.out.readline()
        if not line:
            raise SystemExit(f"floDl server exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
        return float(line) / steps

    def close(self) -> None:
        self.inp.write("quit\n")
        self.inp.flush()
        self.proc.wait(timeout=60)


def cpu_line() -> str:
    model, cores = vp.cpu_name(), os.cpu_count()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    load = ""
    try:
        load = ", load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        pass
    return f"{model} ({platform.machine()}), {cores} cores usable{load}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--chunk", type=int, default=20, help="steps per alternating chunk; 0: fresh floDl rounds"
    )
    ap.add_argument("--rounds", type=int, default=None, help="default: 60 chunks, or 10 fresh rounds")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per round")
    ap.add_argument(
        "--warmup", type=int, default=50, help="warm-up steps (per floDl process; once per ferrotorch model)"
    )
    ap.add_argument("--model", action="append", choices=list(vp.MODELS), help="repeatable; default: all five")
    args = ap.parse_args()

    binary, looked = find_binary()
    if binary is None:
        repo = HERE.parent
        print(BUILD_HINT.format(looked=", ".join(looked), torch_dir=torch_dir(), repo=repo))
        return

    torch.set_num_threads(1)
    if args.rounds is None:
        args.rounds = 60 if args.chunk else 10
    names = args.model or list(vp.MODELS)
    env = flodl_env()

    print("ferrotorch Trainer.step vs floDl's Rust loop (Adam lr=1e-3, MSE loss, loss.item() every step)")
    print(f"  machine : {cpu_line()}")
    print(
        f"  versions: floDl 0.5.3 ({binary}), ferrotorch {ft.__version__}, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"  size    : D={vp.D}, batch={vp.BATCH}, {vp.N_BATCHES} fixed batches, f32, CPU, 1 intra-op thread"
    )
    if args.chunk:
        timing = (
            f"{args.rounds} alternating chunks of {args.chunk} steps per side (floDl: one serving process)"
        )
    else:
        timing = f"{args.rounds} interleaved rounds x {args.steps} steps (floDl: a fresh process each)"
    print(f"  timing  : {timing}, {args.warmup} warm-up steps; median us/step")
    print()

    torch.manual_seed(0)
    ft.manual_seed(0)
    xs = [torch.randn(vp.BATCH, vp.D) for _ in range(vp.N_BATCHES)]
    ys = [torch.randn(vp.BATCH, vp.D) for _ in range(vp.N_BATCHES)]

    trainers = {}
    numel = {}
    for name in names:
        graph, trainer = vp.make_ft(name)
        for i in range(args.warmup):
            trainer.step(xs[i % vp.N_BATCHES], ys[i % vp.N_BATCHES])
        trainers[name] = trainer
        numel[name] = sum(p.numel() for p in graph.parameters())

    def ft_round(name: str, steps: int) -> float:
        tr = trainers[name]
        t0 = time.perf_counter()
        for i in range(steps):
            tr.step(xs[i % vp.N_BATCHES], ys[i % vp.N_BATCHES])
        return (time.perf_counter() - t0) / steps * 1e6

    times = {n: {"flodl": [], "ferrotorch": []} for n in names}
    fl_params: dict[str, int | None] = {}
    t_start = time.perf_counter()

    def pair(r: int, name: str, flodl: Callable[[], float], ferro: Callable[[], float]) -> None:
        """One round of a model: both sides back to back, first side alternating."""
        order = ("flodl", "ferrotorch") if r % 2 == 0 else ("ferrotorch", "flodl")
        for side in order:
            times[name][side].append(flodl() if side == "flodl" else ferro())

    if args.chunk:
        for name in names:
            server = FlodlServer(binary, name, args.warmup, env)
            fl_params[name] = server.params
            for r in range(args.rounds):
                pair(r, name, partial(server.chunk, args.chunk), partial(ft_round, name, args.chunk))
            server.close()
            print(f"  {name} done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)
    else:

        def fresh(name: str) -> float:
            us, fl_params[name] = flodl_round(binary, name, args.warmup, args.steps, env)
            return us

        for r in range(args.rounds):
            for name in names:
                pair(r, name, partial(fresh, name), partial(ft_round, name, args.steps))
            print(
                f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr
            )

    print("Median us/step (lower is better); ratio < 1 means ferrotorch is faster.")
    print("'min ratio' compares each side's fastest round: the least disturbed figure on a busy machine.")
    print("'paired' is the median over rounds of ft/floDl within a round (the two sides ran back to back):")
    print("  slow drifts in the machine's speed cancel in each pair.")
    print(
        f"  {'model':<16} {'params':>7} {'floDl':>9} {'ferrotorch':>11} {'ft/floDl':>9}"
        f"   {'floDl min..max':>15} {'ft min..max':>13} {'min ratio':>9} {'paired':>7}"
    )
    for name in names:
        fl, fe = times[name]["flodl"], times[name]["ferrotorch"]
        mf, me = statistics.median(fl), statistics.median(fe)
        p = numel[name]
        if fl_params.get(name) is not None and fl_params[name] != p:
            print(f"  WARNING {name}: floDl reports {fl_params[name]} parameters, ferrotorch has {p}")
        print(
            f"  {name:<16} {p:>7} {mf:>9.1f} {me:>11.1f} {me / mf:>9.3f}"
            f"   {f'{min(fl):.0f}..{max(fl):.0f}':>15} {f'{min(fe):.0f}..{max(fe):.0f}':>13} {min(fe) / min(fl):>9.3f}"
            f" {statistics.median(e / f for e, f in zip(fe, fl)):>7.3f}"
        )
    noisy = [f"{n}/{s}" for n, t in times.items() for s, v in t.items() if max(v) > NOISY * min(v)]
    if noisy:
        print()
        print(
            f"WARNING: some rounds took over {NOISY}x the fastest ({', '.join(noisy)}): other work was probably "
            "running on the machine. Rerun on an idle machine; the medians above are suspect if many rounds were hit."
        )


if __name__ == "__main__":
    main()
