"""Instructions per training step: ferrotorch against floDl, load-independent.

Wall-clock ratios on a shared machine drift with the neighbours' load; the
number of instructions a step executes does not. This script runs each side
under ``valgrind --tool=callgrind`` twice, with ``--short`` and ``--long``
timed steps after the same warm-up, and reports the difference divided by
the extra steps: the instructions of one step, start-up and exit cancelled.

* ferrotorch: ``Trainer.step`` on the ``vs_pytorch.py`` models (width 64,
  batch 32, Adam 1e-3, MSE), one intra-op thread, counted inside the engine
  (``Engine::step_lazy``, callgrind's ``--toggle-collect``) and, with
  ``--whole``, with the Python call.
* floDl: ``benches/flodl_models`` (see ``vs_flodl.py`` for the build), the
  same models and loop in Rust.
* torch eager with fused Adam (``--torch``): ``vs_pytorch.py``'s torch twin
  and loop (zero_grad, forward, mse_loss, backward, step, loss.item()), the
  whole Python step counted, as ferrotorch's "whole" column.

Each model runs with ferrotorch's default ``on_nonfinite="raise"`` (a
per-step non-finite gradient check floDl does not make) and with ``"off"``
(floDl's behaviour); ``--on-nonfinite`` picks.

Run: ``.venv/bin/python benches/step_instructions.py [--model mlp ...]``
(needs ``valgrind``; each model takes a few minutes: callgrind runs the
Python start-up too).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import vs_flodl  # noqa: E402  (the floDl binary lookup and its environment)

DRIVER = """
import sys, torch
sys.path.insert(0, {here!r})
import vs_pytorch as vp
from ferrotorch import Trainer
from ferrotorch.optim import Adam
torch.set_num_threads(1)
name, steps, nonfinite = sys.argv[1], int(sys.argv[2]), sys.argv[3]
g = vp.MODELS[name][0]()
step = Trainer(g, Adam(g.parameters(), vp.LR), loss="mse", on_nonfinite=nonfinite).step
gen = torch.Generator().manual_seed(0)
xs = [torch.randn(vp.BATCH, vp.D, generator=gen) for _ in range(vp.N_BATCHES)]
ys = [torch.randn(vp.BATCH, vp.D, generator=gen) for _ in range(vp.N_BATCHES)]
for i in range({warmup} + steps):
    step(xs[i % len(xs)], ys[i % len(ys)])
"""

TORCH_DRIVER = """
import sys, torch
sys.path.insert(0, {here!r})
import vs_pytorch as vp
torch.set_num_threads(1)
name, steps = sys.argv[1], int(sys.argv[2])
graph, _ = vp.make_ft(name)
model, opt = vp.make_torch(name, graph, fused=True)
gen = torch.Generator().manual_seed(0)
xs = [torch.randn(vp.BATCH, vp.D, generator=gen) for _ in range(vp.N_BATCHES)]
ys = [torch.randn(vp.BATCH, vp.D, generator=gen) for _ in range(vp.N_BATCHES)]
for i in range({warmup} + steps):
    vp.torch_step(model, opt, xs[i % len(xs)], ys[i % len(ys)])
"""

WARMUP = 10
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def callgrind(cmd: list[str], env: dict[str, str], toggle: str | None = None) -> int:
    """Instructions callgrind collected for ``cmd``."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out"]
        if toggle:
            args.append(f"--toggle-collect={toggle}")
        p = subprocess.run(args + cmd, capture_output=True, text=True, env=env)
        m = COLLECTED.search(p.stderr)
        if p.returncode != 0 or m is None:
            raise SystemExit(f"callgrind failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
        return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="repeatable; default: mlp and residual_tower")
    ap.add_argument("--short", type=int, default=20)
    ap.add_argument("--long", type=int, default=120)
    ap.add_argument(
        "--on-nonfinite",
        action="append",
        choices=["raise", "skip", "off"],
        help="ferrotorch's setting, repeatable; default: raise (its default) and off (floDl's behaviour)",
    )
    ap.add_argument(
        "--whole", action="store_true", help="also count the whole ferrotorch step (Python call included)"
    )
    ap.add_argument(
        "--torch", action="store_true", help="also count torch eager with fused Adam (implies --whole)"
    )
    args = ap.parse_args()
    args.whole = args.whole or args.torch
    if shutil.which("valgrind") is None:
        raise SystemExit("step_instructions.py needs valgrind (apt-get install valgrind)")
    names = args.model or ["mlp", "residual_tower"]
    modes = args.on_nonfinite or ["raise", "off"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    binary, _looked = vs_flodl.find_binary()
    fl_env = vs_flodl.flodl_env()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(DRIVER.format(here=str(HERE), warmup=WARMUP))
        driver = f.name
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(TORCH_DRIVER.format(here=str(HERE), warmup=WARMUP))
        torch_driver = f.name

    def ft(name: str, n: int, mode: str, toggle: str | None) -> int:
        return callgrind([sys.executable, driver, name, str(n), mode], env, toggle)

    def torch_fused(name: str, n: int) -> int:
        return callgrind([sys.executable, torch_driver, name, str(n)], env)

    def flodl(name: str, n: int) -> int:
        cmd = [str(binary), "--model", name, "--rounds", "1", "--steps", str(n), "--warmup", str(WARMUP)]
        return callgrind(cmd, fl_env)

    try:
        print(f"Instructions per step (callgrind; {args.long} - {args.short} steps after {WARMUP} warm-up)")
        print(f"  machine : {vs_flodl.cpu_line()}")
        print("  engine  : ferrotorch inside Engine::step_lazy; whole: the Python call included")
        print(
            f"  {'model':<17} {'on_nonfinite':>12} {'ft engine':>10} {'ft whole':>10} {'floDl':>10} {'engine/floDl':>13}"
            + (f" {'torch fused':>11} {'whole/torch':>11}" if args.torch else "")
        )
        # Counts do not depend on load, so every run of a model goes at once.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for name in names:
                jobs = {}
                for mode in modes:
                    for n in (args.short, args.long):
                        jobs[("engine", mode, n)] = pool.submit(ft, name, n, mode, "*Engine*step_lazy*")
                        if args.whole:
                            jobs[("whole", mode, n)] = pool.submit(ft, name, n, mode, None)
                if binary:
                    for n in (args.short, args.long):
                        jobs[("flodl", "", n)] = pool.submit(flodl, name, n)
                if args.torch:
                    for n in (args.short, args.long):
                        jobs[("torch", "", n)] = pool.submit(torch_fused, name, n)

                def step(kind: str, mode: str, jobs: dict = jobs) -> float | None:
                    if (kind, mode, args.long) not in jobs:
                        return None
                    hi, lo = jobs[(kind, mode, args.long)].result(), jobs[(kind, mode, args.short)].result()
                    return (hi - lo) / (args.long - args.short)

                fl = step("flodl", "")
                tf = step("torch", "")
                for mode in modes:
                    eng, whole = step("engine", mode), step("whole", mode)
                    cells = [
                        f"{eng:>10.0f}",
                        f"{whole:>10.0f}" if whole else f"{'-':>10}",
                        f"{fl:>10.0f}" if fl else f"{'-':>10}",
                        f"{eng / fl:>13.3f}" if fl and eng else f"{'-':>13}",
                    ]
                    if args.torch:
                        cells += [
                            f"{tf:>11.0f}" if tf else f"{'-':>11}",
                            f"{whole / tf:>11.3f}" if tf and whole else f"{'-':>11}",
                        ]
                    print(f"  {name:<17} {mode:>12} " + " ".join(cells), flush=True)
        if not binary:
            print("  (no floDl binary: see benches/vs_flodl.py for the build, or set FLODL_BENCH_BIN)")
    finally:
        os.unlink(driver)
        os.unlink(torch_driver)


if __name__ == "__main__":
    main()
