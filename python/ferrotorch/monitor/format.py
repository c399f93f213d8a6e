"""floDl's text formats: numbers, durations, bytes, ETAs and the epoch line.

Every string the monitor, the progress bar, the log file and ``Trainer.fit``
print is built here, so each of floDl's formats has one source.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Tuple, Union

from ..errors import InputTypeError

Metrics = Union[Dict[str, float], Iterable[Tuple[str, float]]]


def format_number(v: float) -> str:
    """floDl's metric format: ``0``, ``1.23e-4`` (|v| < 1e-3), ``0.1234`` (|v| < 100), ``123.45``."""
    v = float(v)
    if math.isnan(v):
        return "NaN"  # Rust's spelling
    a = abs(v)
    if a == 0:
        return "0"
    if a < 1e-3:
        # Rust's {:.2e} writes the exponent bare: 1.23e-4, not 1.23e-04.
        mant, exp = f"{v:.2e}".split("e")
        return f"{mant}e{int(exp)}"
    if a < 100:
        return f"{v:.4f}"
    return f"{v:.2f}"  # inf / -inf fall here, as in Rust


def format_duration(secs: float) -> str:
    """floDl's duration / ETA format: ``42ms``, ``1.5s``, ``1s``, ``1m 30s``, ``1h 01m``.

    Like floDl's ``format_eta`` every unit is truncated (0.0429 s is "42ms",
    1.96 s is "1.9s"); a negative duration is "—".
    """
    secs = float(secs)
    if math.isnan(secs) or secs < 0:
        return "—"
    if math.isinf(secs):
        return "inf"
    if secs < 1:
        return f"{int(secs * 1000.0)}ms"
    if secs < 60:
        whole = int(secs)
        frac = int((secs - whole) * 10.0)  # same float ops as floDl, same digit
        return f"{whole}.{frac}s" if frac > 0 else f"{whole}s"
    total = int(secs)
    hours, mins, rem = total // 3600, (total % 3600) // 60, total % 60
    if hours > 0:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m {rem:02d}s"


format_eta = format_duration


def format_bytes(n: int) -> str:
    """floDl's byte format (binary units): ``512 B``, ``500 KB``, ``100 MB``, ``2.1 GB``."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 0:
        raise InputTypeError(f"format_bytes: n must be a non-negative number of bytes, got {n!r}")
    b = float(n)
    kb, mb, gb = 1024.0, 1024.0**2, 1024.0**3
    if b >= gb:
        return f"{b / gb:.1f} GB"
    if b >= mb:
        return f"{b / mb:.0f} MB"
    if b >= kb:
        return f"{b / kb:.0f} KB"
    return f"{int(n)} B"


def rust_fixed(v: float, digits: int) -> str:
    """Rust's ``{:.N}`` for floats (Python spells NaN "nan")."""
    if math.isnan(v):
        return "NaN"
    return f"{v:.{digits}f}"


def eta_secs(epoch: int, total_epochs: Optional[int], elapsed: float) -> Optional[float]:
    """floDl's ETA after epoch ``epoch`` (from 0): ``elapsed/(e+1)*(T-e-1)``; None on the last epoch
    or when the total is unknown."""
    done = epoch + 1
    if not total_epochs or done >= total_epochs:
        return None
    return elapsed / done * (total_epochs - done)


def epoch_counter(epoch: int, total_epochs: Optional[int]) -> str:
    """``"epoch  3/10"`` for epoch 2 (from 0) of 10, right-aligned to the total's digits; ``"epoch 3/?"``
    when the total is unknown."""
    if not total_epochs:
        return f"epoch {epoch + 1}/?"
    return f"epoch {epoch + 1:>{len(str(total_epochs))}}/{total_epochs}"


def metric_items(metrics: Metrics) -> str:
    """``"  k=v  k=v"``: each metric with floDl's number format, two spaces before each."""
    items = metrics.items() if isinstance(metrics, dict) else metrics
    return "".join(f"  {name}={format_number(val)}" for name, val in items)


def epoch_line(
    epoch: int,
    total_epochs: Optional[int],
    duration: float,
    metrics: Metrics,
    elapsed: Optional[float] = None,
) -> str:
    """floDl's epoch line, without printing it.

    ``epoch`` counts from 0; ``duration`` is this epoch's seconds; ``elapsed``
    is the seconds since training started (default: ``duration * (epoch+1)``),
    from which the ETA ``elapsed/(epoch+1)*(total-epoch-1)`` is derived. The ETA
    is left out on the last epoch, and when ``total_epochs`` is None (a run
    counted in steps: the total shows as ``?``)::

        "  epoch  3/10  loss=0.1234  acc=0.9100  [1.5s  ETA 10.5s]"
    """
    line = f"  {epoch_counter(epoch, total_epochs)}{metric_items(metrics)}  [{format_duration(duration)}"
    eta = eta_secs(epoch, total_epochs, duration * (epoch + 1) if elapsed is None else elapsed)
    if eta is not None:
        line += f"  ETA {format_duration(eta)}"
    return line + "]"


def vram_line(alloc: float, spill: int, gpu_pct: Optional[float]) -> str:
    """floDl's second line: ``"  VRAM: 2.1 GB / 0 B (82%)"`` (the utilization only when known)."""
    line = f"  VRAM: {format_bytes(int(alloc))} / {format_bytes(spill)}"
    return line if gpu_pct is None else line + f" ({gpu_pct:.0f}%)"
