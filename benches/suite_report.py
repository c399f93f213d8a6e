"""suite.py's results as a user reads them: the run's header, a Markdown
table, the JSON record and a hand-drawn SVG of the ratios per model and peer
(no plotting dependency)."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

import ferrotorch as ft

# (label, the ferrotorch side, the peer sides: the fastest of them is the denominator)
RATIOS: Dict[str, List[Tuple[str, str, List[str]]]] = {
    "cpu": [
        ("ft/default", "ferrotorch", ["torch_default"]),
        ("ft/fused", "ferrotorch", ["torch_fused"]),
        ("ft/compile", "ferrotorch", ["compile_model", "compile_step"]),
        ("ft/floDl", "ferrotorch", ["flodl"]),
    ],
    "cuda": [
        ("eager/fused", "ft_eager", ["torch_fused"]),
        ("graph/fused", "ft_graph", ["torch_fused"]),
        ("graph/compile", "ft_graph", ["torch_compile"]),
    ],
}
COLUMNS = {
    "cpu": ["ferrotorch", "torch_default", "torch_fused", "compile_model", "compile_step", "flodl"],
    "cuda": ["ft_eager", "ft_graph", "torch_fused", "torch_compile"],
}
# The memory ratio: ferrotorch's side over torch eager's.
MEMORY_RATIO = {"cpu": ("ferrotorch", "torch_fused"), "cuda": ("ft_eager", "torch_fused")}
COLOURS = ["#4878a8", "#e08a3c", "#5aa05a", "#b05a9a"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": cores,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__,
        "ferrotorch": ft.__version__,
        "python": platform.python_version(),
        "device": device,
    }
    if device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(0)
    return meta


def ratio(m: dict, num: str, dens: List[str]) -> Optional[float]:
    us = m.get("us", {})
    have = [us[d] for d in dens if d in us]
    return us[num] / min(have) if num in us and have else None


def memory_ratio(m: dict, device: str) -> Optional[float]:
    a, b = MEMORY_RATIO[device]
    mem = m.get("memory") or {}
    # Below 0.1 MiB the RSS figure is the allocator's slack, not the model.
    if mem.get(a) and mem.get(b) and mem[b]["delta_mib"] >= 0.1:
        return mem[a]["delta_mib"] / mem[b]["delta_mib"]
    return None


def _f(v: Optional[float], fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def header(meta: dict) -> str:
    lines = [
        f"floDl's ten models: ferrotorch Trainer.step against its peers ({meta['device']}, size {meta['size']})",
        f"  date    : {meta['date']}",
        f"  machine : {meta['cpu']}, {meta['cores']} cores usable, load average "
        + " ".join(str(v) for v in meta["load_average"])
        + (f", GPU {meta['gpu']}" if "gpu" in meta else ""),
        f"  platform: {meta['platform']}",
        f"  versions: torch {meta['torch']}, ferrotorch {meta['ferrotorch']}, Python {meta['python']}",
        f"  timing  : {meta['warmup']} warm-up steps, {meta['rounds']} interleaved rounds of about "
        f"{meta['round_ms']:.0f} ms per side; median us/step",
        f"  floDl   : {meta['flodl'] or 'no binary (FLODL_BENCH_BIN unset)'}; its program lacks: "
        + (", ".join(meta["flodl_missing"]) or "none of these models"),
        "  sizes   :",
    ]
    lines += [f"    {n:<17} {s}" for n, s in meta["sizes"].items()]
    return "\n".join(lines)


def model_line(name: str, m: dict, device: str) -> str:
    cells = " ".join(f"{k}={v:.0f}" for k, v in m.get("us", {}).items())
    rats = " ".join(f"{lab}={_f(ratio(m, n, d))}" for lab, n, d in RATIOS[device] if ratio(m, n, d))
    return f"  {name:<17} {cells} | {rats}" + "".join(f"\n      note: {n}" for n in m["notes"])


def markdown(meta: dict, runs: List[dict]) -> str:
    dev = meta["device"]
    cols, rats = COLUMNS[dev], RATIOS[dev]
    out = [
        f"### floDl's ten models, {dev}, size `{meta['size']}`",
        "",
        f"{meta['date']}; {meta['cpu']} ({meta['cores']} cores usable, load average "
        + " ".join(str(v) for v in meta["load_average"])
        + ")"
        + (f", {meta['gpu']}" if "gpu" in meta else "")
        + f"; {meta['platform']}; torch {meta['torch']}, ferrotorch {meta['ferrotorch']}. "
        f"Median us/step over {meta['rounds']} interleaved rounds; ratio < 1: ferrotorch is faster.",
        "",
    ]
    for run in runs:
        models = run["models"]
        used = [c for c in cols if any(c in m.get("us", {}) for m in models.values())]
        used_r = [r for r in rats if any(ratio(m, r[1], r[2]) for m in models.values())]
        out += [f"**{run['threads']} thread(s)**", ""]
        head = ["model", "params"] + used + [r[0] for r in used_r] + ["mem ft/eager"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for name, m in models.items():
            row = [name, f"{m['params']:,}"]
            row += [_f(m["us"].get(c), ".0f") for c in used]
            row += [_f(ratio(m, n, d)) for _, n, d in used_r]
            row.append(_f(memory_ratio(m, dev)))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        comp = [(n, m["compile_s"]) for n, m in models.items() if m.get("compile_s")]
        if comp:
            out.append(
                "Compile time (first 3 steps, compiling included), s: "
                + "; ".join(f"{n} " + ", ".join(f"{k} {v:.1f}" for k, v in c.items()) for n, c in comp)
            )
            out.append("")
        mem = [(n, m["memory"]) for n, m in models.items() if m.get("memory")]
        if mem:
            sides = list(mem[0][1])
            unit = "RSS high-water mark" if dev == "cpu" else "torch.cuda.max_memory_allocated"
            out.append(
                f"Peak memory, MiB ({unit}, fresh process per side: peak - baseline before the model, "
                "baseline in brackets)"
            )
            out.append("")
            out.append("| model | " + " | ".join(sides) + " |")
            out.append("|---|" + "---|" * len(sides))
            for n, mm in mem:
                cells = [
                    "-" if mm.get(s) is None else f"{mm[s]['delta_mib']:.2f} ({mm[s]['base_mib']:.0f})"
                    for s in sides
                ]
                out.append(f"| {n} | " + " | ".join(cells) + " |")
            out.append("")
        ins = [(n, m["instructions"]) for n, m in models.items() if m.get("instructions")]
        if ins:
            out.append(
                "Instructions per step (callgrind): "
                + "; ".join(f"{n} " + ", ".join(f"{k} {_f(v, ',.0f')}" for k, v in c.items()) for n, c in ins)
            )
            out.append("")
        notes = [f"- {n}: {note}" for n, m in models.items() for note in m["notes"]]
        if notes:
            out += ["Notes:", ""] + notes + [""]
    out.append("Sizes: " + "; ".join(f"{n} {s}" for n, s in meta["sizes"].items()) + ".")
    if meta.get("flodl_missing"):
        out.append(f"floDl's program (benches/flodl_models) lacks: {', '.join(meta['flodl_missing'])}.")
    return "\n".join(out) + "\n"


def svg(meta: dict, run: dict) -> str:
    """Horizontal bars of ferrotorch / peer per model on a log axis; left of
    the 1.0 line ferrotorch is faster."""
    rats = RATIOS[meta["device"]]
    models = run["models"]
    rows = [(n, [ratio(m, num, d) for _, num, d in rats]) for n, m in models.items()]
    present = [i for i in range(len(rats)) if any(r[i] for _, r in rows)]
    vals = [r[i] for _, r in rows for i in present if r[i]]
    lo = min([0.5] + vals) / 1.2
    hi = max([2.0] + vals) * 1.2
    left, width, bar = 140, 520, 12
    group = bar * len(present) + 10
    top = 50
    height = top + group * len(rows) + 60

    def x(v: float) -> float:
        return left + width * (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 40}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="18" font-size="13">ferrotorch time / peer time per model '
        f"({meta['device']}, size {meta['size']}, {run['threads']} thread(s), {meta['date']}); "
        "left of 1: ferrotorch faster</text>",
    ]
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16) if lo <= t <= hi]
    for t in ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top - 8}" x2="{x(t):.1f}" y2="{height - 50}" '
            f'stroke="{"#000" if t == 1 else "#ddd"}"/>'
        )
        parts.append(f'<text x="{x(t):.1f}" y="{height - 38}" text-anchor="middle">{t:g}</text>')
    for gi, (name, r) in enumerate(rows):
        y0 = top + gi * group
        parts.append(f'<text x="{left - 6}" y="{y0 + group / 2:.1f}" text-anchor="end">{name}</text>')
        for bi, i in enumerate(present):
            if not r[i]:
                continue
            y, x1, xv = y0 + bi * bar, x(1.0), x(r[i])
            parts.append(
                f'<rect x="{min(x1, xv):.1f}" y="{y}" width="{abs(xv - x1):.1f}" height="{bar - 2}" '
                f'fill="{COLOURS[bi % len(COLOURS)]}"><title>{name} {rats[i][0]} {r[i]:.3f}</title></rect>'
            )
            anchor, dx = ("start", 3) if xv >= x1 else ("end", -3)
            parts.append(
                f'<text x="{xv + dx:.1f}" y="{y + bar - 3}" text-anchor="{anchor}" font-size="9">{r[i]:.2f}</text>'
            )
    for bi, i in enumerate(present):
        lx = left + bi * 130
        parts.append(
            f'<rect x="{lx}" y="{height - 24}" width="10" height="10" fill="{COLOURS[bi % len(COLOURS)]}"/>'
        )
        parts.append(f'<text x="{lx + 14}" y="{height - 15}">{rats[i][0]}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write(out: Path, meta: dict, runs: List[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    (out / "suite.md").write_text(markdown(meta, runs))
    (out / "suite.svg").write_text(svg(meta, runs[0]))
