"""The monitor's self-contained HTML report: SVG curves per metric and the epoch table."""

from __future__ import annotations

import datetime as _dt
import html
import math
from typing import List

from .charts import PALETTE, chart_svg
from .format import format_bytes, format_duration, format_number
from .record import EpochRecord

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1f2937;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#6b7280;font-size:13px;margin-bottom:16px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{border:1px solid #e5e7eb;border-radius:6px;padding:8px;background:#fafafa}
svg text{font-size:11px;fill:#374151;font-family:inherit}
svg .title{font-size:13px;font-weight:600}
svg .grid{stroke:#e5e7eb;stroke-width:1}
svg .axis{stroke:#6b7280;stroke-width:1}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e5e7eb;padding:3px 10px;text-align:right}
th{background:#f3f4f6}
"""


def render_html(title: str, total_epochs: int, recs: List[EpochRecord], total_secs: float) -> str:
    """The report's page for ``recs``; ``total_secs`` is the run's time so far."""
    names: List[str] = []
    for r in recs:
        for n in r.metrics:
            if n not in names:
                names.append(n)
    xs = [r.epoch + 1 for r in recs]
    charts = [
        f'<div class="chart">{chart_svg(n, xs, [r.metrics.get(n, math.nan) for r in recs], PALETTE[i % len(PALETTE)])}</div>'
        for i, n in enumerate(names)
        if recs
    ]
    has_cpu = any(r.resources.get("cpu_pct") is not None for r in recs)
    has_ram = any(r.resources.get("ram_used") is not None for r in recs)
    has_vram = any(r.resources.get("vram_alloc") is not None for r in recs)
    head = ["epoch", "duration", *names]
    head += ["cpu %"] * has_cpu + ["ram"] * has_ram + ["vram"] * has_vram
    rows = []
    for r in recs:
        cells = [f"{r.epoch + 1}/{total_epochs}", format_duration(r.duration_secs)]
        cells += [format_number(r.metrics[n]) if n in r.metrics else "" for n in names]
        res = r.resources
        if has_cpu:
            cells.append("" if res.get("cpu_pct") is None else f"{res['cpu_pct']:.1f}")
        if has_ram:
            ram = res.get("ram_used")
            cells.append("" if ram is None else format_bytes(int(ram)))
        if has_vram:
            vram = res.get("vram_alloc")
            cells.append("" if vram is None else format_bytes(int(vram)))
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    total = format_duration(total_secs)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    final = ""
    if recs:
        final = "  |  ".join(f"{html.escape(k)}: {format_number(v)}" for k, v in recs[-1].metrics.items())
    title = html.escape(title)
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<div class="meta">{len(recs)} of {total_epochs} epochs &middot; '
        f'total time <span id="total-time">{html.escape(total)}</span> &middot; generated {stamp}'
        + (f"<br>final: {final}" if final else "")
        + "</div>",
        "<h2>Curves</h2>",
        '<div class="charts">' + ("\n".join(charts) if charts else "<p>no epochs logged</p>") + "</div>",
        "<h2>Epochs</h2>",
        '<table id="epochs"><thead><tr>'
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "\n".join(rows)
        + "</tbody></table>",
        "</body></html>",
    ]
    return "\n".join(body) + "\n"
