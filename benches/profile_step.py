"""One training step of each side under ``torch.profiler``: what a step runs.

For a model of suite.py at a size, each side's step is built by
``suite.make_step`` (the same weights, data, loss and lr as the suite) and
profiled over ``--steps`` steps after a warm-up, CPU activities with
``profile_memory=True``. The profiler sees the ATen ops ferrotorch's Rust
engine dispatches too (the same libtorch in the same process). Per side:

* ATen calls per step: every ``aten::`` event, and the top-level ones (not
  inside another ``aten::`` op: what the framework itself dispatches);
* inductor kernels per step (compiled sides; ``torch._inductor.config.cpp
  .enable_kernel_profile`` names each generated C++ kernel in the trace);
* autograd nodes per step (``autograd::engine::evaluate_function: ...``),
  and the engine's own time around them;
* allocations per step and bytes (the profiler's ``[memory]`` events);
* time per step: unprofiled (median of short rounds; noisy on a shared VM),
  under the profiler, the part inside top-level events and the part outside
  any event (the framework's own code between ops: Python for torch eager,
  Rust engine + binding for ferrotorch);
* minor page faults per step (``getrusage`` over the unprofiled rounds);
* the top ops by self CPU time.

Sides: ``ferrotorch`` (``Trainer.step``), ``torch_fused`` (eager, fused
Adam), ``compile_step`` (the whole step in one ``torch.compile``d function),
optionally ``compile_model`` and ``torch_default`` (``--sides``).

``--callgrind`` also counts the instructions of a step of the
``--cg-sides`` (default ferrotorch) under callgrind: one run of this script's child mode under ``valgrind
--instr-atstart=no``, instrumented only around its ``--cg-steps`` steps
(after the warm-up; a two-function C library built with ``cc`` makes
callgrind's client requests), and groups each function's own instructions:
ATen kernels, dispatcher/TensorImpl/c10, autograd, allocator (malloc/free/
new/delete), oneDNN (convolutions; ATen's GELU sets up a oneDNN primitive per call),
ferrotorch (the Rust engine and its C++ shim), the non-finite
scan (``any_nonfinite``), Python (the interpreter and torch's bindings),
libc, other. About a minute per model on a 2-core VM.

Run::

    .venv/bin/python benches/profile_step.py --model gru_seq [--model ...] [--callgrind] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import suite  # noqa: E402  (make_step, device_data: the suite's sides)
import suite_models as sm  # noqa: E402

EVAL = "autograd::engine::evaluate_function: "
SIDES = ["ferrotorch", "torch_fused", "compile_step"]
INDUCTOR_KERNEL = re.compile(r"^(graph_\d+_)?cpp_")


# --------------------------------------------------------------------------- torch.profiler


def _step_runner(step, data):
    def run(n: int) -> None:
        for i in range(n):
            step(*data[i % len(data)])

    run.step = step  # type: ignore[attr-defined]
    return run


def _steps(runs: dict) -> dict:
    return {k: r.step for k, r in runs.items()}


def profile_run(run, steps: int, top: int) -> dict:
    """Counts and times per step of ``run(steps)`` under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        t0 = time.perf_counter()
        run(steps)
        wall = time.perf_counter() - t0
    events = [e for e in prof.events() if e.name != "[memory]"]
    aten = [e for e in events if e.name.startswith("aten::")]
    aten_top = [e for e in aten if not _inside(e, "aten::")]
    kernels = [e for e in events if INDUCTOR_KERNEL.match(e.name)]
    nodes = [e for e in events if e.name.startswith(EVAL)]
    roots = [e for e in events if e.cpu_parent is None]
    in_roots = sum(e.cpu_time_total for e in roots)  # us
    mem = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    allocs = [e.nbytes() for e in mem if e.nbytes() > 0]
    node_names: Dict[str, int] = defaultdict(int)
    for e in nodes:
        node_names[e.name[len(EVAL) :]] += 1
    rows = []
    for a in sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[:top]:
        rows.append({"name": a.key, "calls": a.count / steps, "self_us": a.self_cpu_time_total / steps})
    # Time by kind, from each event's own (self) time.
    kinds: Dict[str, float] = defaultdict(float)
    for e in events:
        kinds[_kind(e)] += e.self_cpu_time_total / steps
    return {
        "aten_calls": len(aten) / steps,
        "aten_top_calls": len(aten_top) / steps,
        "inductor_kernels": len(kernels) / steps,
        "autograd_nodes": len(nodes) / steps,
        "node_types": {k: v / steps for k, v in sorted(node_names.items(), key=lambda kv: -kv[1])},
        "engine_self_us": sum(e.self_cpu_time_total for e in nodes) / steps,
        "allocs": len(allocs) / steps,
        "alloc_bytes": sum(allocs) / steps,
        "profiled_us": wall / steps * 1e6,
        "in_events_us": in_roots / steps,
        "outside_events_us": max(0.0, wall * 1e6 - in_roots) / steps,
        "self_by_kind_us": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        "top": rows,
    }


def _inside(e, prefix: str) -> bool:
    p = e.cpu_parent
    while p is not None:
        if p.name.startswith(prefix):
            return True
        p = p.cpu_parent
    return False


def _kind(e) -> str:
    n = e.name
    if INDUCTOR_KERNEL.match(n):
        return "inductor kernels"
    if n.startswith(EVAL):
        return "autograd engine (evaluate_function self)"
    if n.startswith("aten::"):
        return "aten ops (self)"
    if n.endswith("Backward0") or n.endswith("Backward1") or "Backward" in n:
        return "backward nodes (self)"
    if n.startswith("Optimizer") or "adam" in n.lower():
        return "optimizer wrappers"
    return "other events (self)"


def profile_model(
    name: str, size: str, sides: List[str], steps: int, warmup: int, top: int, rounds: int = 7
) -> dict:
    """Builds every side (suite.make_step), times them unprofiled in
    interleaved rounds (the order rotating, as suite.py does), then profiles
    each one."""
    torch._dynamo.reset()
    torch._inductor.config.cpp.enable_kernel_profile = True
    data = suite.device_data(name, size, "cpu")
    out: dict = {"size": sm.size_text(name, size), "sides": {}}
    runs = {}
    for side in sides:
        step = suite.make_step(name, size, side, data)
        out["sides"][side] = None
        if step is not None:
            runs[side] = _step_runner(step, data)
            runs[side](warmup)
    timed = {k: suite.runner(st, data, lambda: None) for k, st in _steps(runs).items()}
    per = next(iter(timed.values()))(3) / 3
    n = max(3, int(0.05 / max(per, 1e-9)))
    names = list(timed)
    us: Dict[str, List[float]] = {k: [] for k in names}
    faults: Dict[str, int] = {k: 0 for k in names}
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            us[k].append(timed[k](n) / n * 1e6)
            faults[k] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    for side, run in runs.items():
        res = profile_run(run, steps, top)
        res["unprofiled_us"] = statistics.median(us[side])
        res["unprofiled_spread_us"] = [min(us[side]), max(us[side])]
        res["page_faults"] = faults[side] / (rounds * n)
        out["sides"][side] = res
    return out


# --------------------------------------------------------------------------- callgrind

GROUPS = [
    "ATen kernels",
    "dispatcher / TensorImpl / c10",
    "autograd",
    "oneDNN (primitive setup, JIT kernels)",
    "allocator",
    "ferrotorch (Rust + shim)",
    "non-finite scan",
    "Python",
    "libc other (memcpy, ...)",
    "other",
]
ALLOC = re.compile(
    r"^(malloc|free|cfree|calloc|realloc|posix_memalign|memalign|aligned_alloc|_int_malloc|_int_free"
    r"|_int_memalign|_int_realloc|malloc_consolidate|unlink_chunk|tcache_\w+|__libc_\w*(alloc|free)\w*"
    r"|operator new|operator delete|c10::alloc_cpu|c10::free_cpu|c10::\w*CPUAllocator|sysmalloc|systrim"
    r"|__default_morecore|brk|sbrk|mmap|munmap|madvise|_mid_memalign|__mmap|__munmap|__madvise|alloc_perturb)"
)


def group_of(ob: str, fn: str) -> str:
    base = os.path.basename(ob)
    if "nonfinite" in fn:
        return "non-finite scan"
    if ALLOC.match(fn) or "DefaultCPUAllocator" in fn or "c10::alloc_cpu" in fn or "c10::free_cpu" in fn:
        return "allocator"
    if "dnnl" in fn or "ideep::" in fn or re.match(r"^0x[0-9a-f]+$", fn):
        return "oneDNN (primitive setup, JIT kernels)"
    if base.startswith("_core") or "ferrotorch" in fn:
        return "ferrotorch (Rust + shim)"
    if base.startswith(("python", "libpython", "libtorch_python", "_ctypes", "libffi")):
        return "Python"
    if base.startswith(("libc.", "libc-", "ld-linux", "libm.")):
        return "libc other (memcpy, ...)"
    if base.startswith(("libtorch", "libc10", "libgomp")) or "mkl" in base:
        if "at::native" in fn or "mkl_" in fn or "sgemm" in fn:
            return "ATen kernels"
        if (
            "autograd" in fn
            or "VariableType" in fn
            or "ADInplaceOrView" in fn
            or "ThreadLocalState" in fn
            or "LocalCallbackManager" in fn
            or "set_record_function_tls" in fn
        ):
            return "autograd"
        if (
            fn.startswith(("c10::", "at::_ops::", "std::", "at::TensorBase", "at::Tensor::"))
            or "Dispatcher" in fn
            or "OperatorHandle" in fn
            or "TensorImpl" in fn
            or "intrusive_ptr" in fn
            or "BoxedKernel" in fn
            or "wrap_kernel_functor" in fn
            or "make_boxed_from_unboxed_functor" in fn
            or "RecordFunction" in fn
        ):
            return "dispatcher / TensorImpl / c10"
        return "ATen kernels"
    return "other"


def parse_callgrind(path: str) -> Dict[str, Dict[str, int]]:
    """Each function's own (exclusive) Ir from a callgrind out file, by group: {group: {fn: Ir}}."""
    names: Dict[str, Dict[str, str]] = {"ob": {}, "fn": {}}
    ref = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def name(kind: str, val: str) -> str:
        m = ref.match(val)
        if not m:
            return val
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
            return m.group(2)
        return names[kind].get(m.group(1), val)

    own: Dict[tuple, int] = defaultdict(int)
    ob = fn = ""
    skip_next = False
    with open(path, errors="replace") as f:
        for line in f:
            if not line or line[0] == "\n":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    own[(ob, fn)] += int(parts[1])
                continue
            key, _, val = line.rstrip("\n").partition("=")
            if key == "ob":
                ob = name("ob", val)
            elif key == "fn":
                fn = name("fn", val)
            elif key == "cob":
                name("ob", val)
            elif key == "cfn":
                name("fn", val)
            elif key == "calls":
                skip_next = True
    grouped: Dict[str, Dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (o, f_), ir in own.items():
        grouped[group_of(o, f_)][f_] += ir
    return grouped


CG_C = """
#include <valgrind/callgrind.h>
void ft_cg_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void ft_cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


def _cg_lib(tmp: str) -> str:
    """A two-function C library (callgrind's client requests): instrument
    only the timed steps, so neither the start-up nor the warm-up is counted
    and valgrind runs the rest uninstrumented (fast)."""
    src, lib = f"{tmp}/cg.c", f"{tmp}/libftcg.so"
    Path(src).write_text(CG_C)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", lib, src], check=True)
    return lib


def callgrind_side(
    name: str, size: str, steps: int, warmup: int, keep: Optional[Path] = None, side: str = "ferrotorch"
) -> dict:
    """Instructions per step of ``side`` by group: the child instruments only
    its ``steps`` steps (after ``warmup``); with ``keep`` the callgrind file
    stays there and one already there is reused."""
    for tool in ("valgrind", "cc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"--callgrind needs {tool} (apt-get install valgrind gcc)")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory() as tmp:
        tag = "" if side == "ferrotorch" else f".{side}"
        out = str(keep / f"cg.{name}.{size}.{warmup}.{steps}{tag}") if keep else f"{tmp}/cg.out"
        if not (keep and os.path.exists(out)):
            if keep:
                keep.mkdir(parents=True, exist_ok=True)
            env["FT_CG_LIB"] = _cg_lib(tmp)
            cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
            cmd += [sys.executable, str(Path(__file__).resolve()), "--child", name, "--size", size]
            cmd += ["--child-steps", str(steps), "--warmup", str(warmup), "--child-side", side]
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                Path(out).unlink(missing_ok=True)
                # Inductor's AVX-512 kernels are beyond valgrind (SIGILL): ft and eager sides only.
                raise SystemExit(f"callgrind failed ({side}):\n{p.stderr[-2000:]}")
        own = parse_callgrind(out)
    groups = {g: sum(own.get(g, {}).values()) / steps for g in GROUPS}
    fns = {g: sorted(((v / steps, f_) for f_, v in own.get(g, {}).items()), reverse=True)[:6] for g in GROUPS}
    return {
        "total": sum(groups.values()),
        "steps": steps,
        "groups": groups,
        "top_fns": {g: [[f_, v] for v, f_ in fns[g]] for g in GROUPS},
    }


def child_main(name: str, size: str, steps: int, warmup: int, side: str) -> None:
    import ctypes

    torch.set_num_threads(1)
    data = suite.device_data(name, size, "cpu")
    run = _step_runner(suite.make_step(name, size, side, data), data)
    run(warmup)
    lib = ctypes.CDLL(os.environ["FT_CG_LIB"]) if os.environ.get("FT_CG_LIB") else None
    if lib:
        lib.ft_cg_start()
    run(steps)
    if lib:
        lib.ft_cg_stop()


# --------------------------------------------------------------------------- report


def report(name: str, res: dict, cg: Optional[dict], top: int) -> str:
    sides = [s for s, r in res["sides"].items() if r is not None]
    r = res["sides"]
    lines = [f"### {name} ({res['size']})", ""]
    lines.append("| per step | " + " | ".join(sides) + " |")
    lines.append("|---|" + "---|" * len(sides))
    rows = [
        ("us, unprofiled (noisy)", "unprofiled_us", "{:.0f}"),
        ("us, under the profiler", "profiled_us", "{:.0f}"),
        ("us outside any profiled event", "outside_events_us", "{:.0f}"),
        ("ATen calls (all)", "aten_calls", "{:.0f}"),
        ("ATen calls (top-level)", "aten_top_calls", "{:.0f}"),
        ("inductor kernels", "inductor_kernels", "{:.0f}"),
        ("autograd nodes", "autograd_nodes", "{:.0f}"),
        ("autograd engine self us", "engine_self_us", "{:.0f}"),
        ("allocations", "allocs", "{:.0f}"),
        ("KiB allocated", "alloc_bytes", "{:.0f}"),
        ("minor page faults (unprofiled)", "page_faults", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        vals = [r[s][key] / (1024 if key == "alloc_bytes" else 1) for s in sides]
        lines.append(f"| {label} | " + " | ".join(fmt.format(v) for v in vals) + " |")
    lines.append("")
    for s in sides:
        kinds = ", ".join(f"{k} {v:.0f}" for k, v in r[s]["self_by_kind_us"].items() if v >= 1)
        lines.append(f"- {s}: self us by kind: {kinds}")
        nodes = ", ".join(f"{k} {v:g}" for k, v in list(r[s]["node_types"].items())[:8])
        if nodes:
            lines.append(f"  - autograd nodes: {nodes}")
        tops = ", ".join(f"`{t['name']}` {t['self_us']:.0f} us ({t['calls']:g})" for t in r[s]["top"][:top])
        lines.append(f"  - top self CPU (us/step, calls/step): {tops}")
    if cg:
        sides_cg = list(cg)
        lines.append("")
        lines.append("Instructions per step (callgrind; each function's own instructions, by group):")
        lines.append("")
        lines.append("| group | " + " | ".join(sides_cg) + f" | top functions ({sides_cg[0]}) |")
        lines.append("|---|" + "---|" * (len(sides_cg) + 1))
        for g in GROUPS + ["total"]:
            cells = []
            for s in sides_cg:
                v = cg[s]["total"] if g == "total" else cg[s]["groups"][g]
                cells.append(f"{v:,.0f}" + ("" if g == "total" else f" ({v / cg[s]['total']:.0%})"))
            fns = [] if g == "total" else cg[sides_cg[0]]["top_fns"][g][:3]
            fn_text = "; ".join(f"`{f_[:50]}` {n:,.0f}" for f_, n in fns)
            lines.append(f"| {g} | " + " | ".join(cells) + f" | {fn_text} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", choices=sm.NAMES, help="repeatable; default: gru_seq")
    ap.add_argument("--size", choices=("cpu", "full", "tiny"), default="cpu")
    ap.add_argument("--sides", default=",".join(SIDES), help=f"comma list (default {','.join(SIDES)})")
    ap.add_argument("--steps", type=int, default=20, help="profiled steps")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--top", type=int, default=8, help="top ops by self CPU time")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--callgrind", action="store_true", help="also count the ft step under callgrind (slow)")
    ap.add_argument("--cg-steps", type=int, default=20, help="steps counted under callgrind")
    ap.add_argument("--cg-sides", default="ferrotorch", help="comma list of sides counted under callgrind")
    ap.add_argument("--keep", type=Path, help="keep the callgrind files here (reused when present)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    ap.add_argument("--child-steps", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--child-side", default="ferrotorch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args.child, args.size, args.child_steps, args.warmup, args.child_side)
        return
    torch.set_num_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore", message=".*TF32.*")
    everything = {}
    for name in args.model or ["gru_seq"]:
        res = profile_model(name, args.size, args.sides.split(","), args.steps, args.warmup, args.top)
        cg = {
            side: callgrind_side(name, args.size, args.cg_steps, args.warmup, args.keep, side)
            for side in (args.cg_sides.split(",") if args.callgrind else [])
        }
        res["callgrind"] = cg
        everything[name] = res
        print(report(name, res, cg, args.top), flush=True)
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
