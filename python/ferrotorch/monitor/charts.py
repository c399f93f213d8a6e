"""SVG line charts (one metric per epoch) for the HTML report: no script, no external asset."""

from __future__ import annotations

import html
import math
from typing import List, Tuple

#: Curve colours, one per metric in logging order.
PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _ticks(lo: float, hi: float, target: int = 5) -> Tuple[List[float], float]:
    """Round tick values covering [lo, hi] (the first at or below lo, the last at or above hi)."""
    step = _nice_step(hi - lo, target)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [0.0 if k == 0 else k * step for k in range(first, last + 1)], step


def _tick_label(v: float, step: float) -> str:
    """As few decimals as the tick step needs: 0.5, 1.0, 1.5 rather than 0.5000."""
    if v == 0:
        return "0"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if step * 10**decimals % 1 > 1e-6:  # steps like 0.25
        decimals += 1
    if decimals > 5 or abs(v) >= 1e7:
        return f"{v:.2e}"
    return f"{v:.{decimals}f}"


def chart_svg(name: str, xs: List[int], ys: List[float], color: str) -> str:
    """One metric's curve over the epochs ``xs`` (NaN and inf points are left out), as an ``<svg>``."""
    w, h = 440, 260
    left, right, top, bottom = 64, 16, 28, 40
    pw, ph = w - left - right, h - top - bottom
    pts = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if pts:
        y_lo, y_hi = min(p[1] for p in pts), max(p[1] for p in pts)
    else:
        y_lo, y_hi = 0.0, 1.0
    if y_hi == y_lo:
        pad = abs(y_lo) * 0.1 or 1.0
        y_lo, y_hi = y_lo - pad, y_hi + pad
    yt, ystep = _ticks(y_lo, y_hi)
    y_lo, y_hi = yt[0], yt[-1]
    xstep = max(1, math.ceil(_nice_step(x_hi - x_lo, 6)))  # epochs are integers
    xt = [k * xstep for k in range(math.ceil(x_lo / xstep), math.floor(x_hi / xstep) + 1)]

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def sy(y: float) -> float:
        return top + (y_hi - y) / (y_hi - y_lo) * ph

    e = html.escape(name)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'class="metric-chart" data-metric="{e}" role="img" aria-label="{e} per epoch">',
        f'<text class="title" x="{left}" y="18">{e}</text>',
    ]
    for t in yt:
        y = sy(t)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{html.escape(_tick_label(t, ystep))}</text>'
        )
    for t in xt:
        x = sx(t)
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="{top + ph}" x2="{x:.1f}" y2="{top + ph + 4}"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{int(t)}</text>')
    parts.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}"/>')
    parts.append(f'<line class="axis" x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}"/>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{h - 6}" text-anchor="middle">epoch</text>')
    parts.append(
        f'<text x="14" y="{top + ph / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2:.1f})">{e}</text>'
    )
    coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    parts.append(
        f'<polyline data-metric="{e}" fill="none" stroke="{color}" stroke-width="2" '
        f'stroke-linejoin="round" points="{coords}"/>'
    )
    if len(pts) <= 60:  # markers, so a single epoch still shows
        for x, y in pts:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"/>')
    parts.append("</svg>")
    return "\n".join(parts)
