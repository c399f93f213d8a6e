"""The monitor's files as text: floDl's training log and CSV, written atomically."""

from __future__ import annotations

import csv
import io
import os
from typing import List, Union

from .._io import atomic_write
from .format import epoch_counter, format_duration, metric_items, rust_fixed
from .record import EpochRecord
from .resources import vram_spill


def write_text(path: Union[str, os.PathLike], text: str) -> None:
    """Text written atomically (see ``_io.atomic_write``)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def log_text(records: List[EpochRecord], total_epochs: int, total_secs: float) -> str:
    """``# flodl training log``, ``epoch n/T  k=v  [dur]`` per epoch, ``# total: X`` (when any epoch)."""
    lines = ["# flodl training log"]
    for r in records:
        line = epoch_counter(r.epoch, total_epochs) + metric_items(r.metrics)
        lines.append(line + f"  [{format_duration(r.duration_secs)}]")
    if records:
        lines.append(f"# total: {format_duration(total_secs)}")
    return "\n".join(lines) + "\n"


def csv_text(records: List[EpochRecord]) -> str:
    """floDl's CSV: ``epoch,duration_s,<first epoch's metrics>,cpu_pct,ram_used,gpu_pct,vram_alloc,vram_spill``.

    Epoch is 1-based, duration ``{:.3}``, metrics ``{:.8}``, cpu/gpu ``{:.1}``,
    bytes as integers; unavailable values (and metrics an epoch lacks) are empty.
    """
    names = list(records[0].metrics) if records else []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["epoch", "duration_s", *names, "cpu_pct", "ram_used", "gpu_pct", "vram_alloc", "vram_spill"])
    for r in records:
        res = r.resources
        row = [str(r.epoch + 1), f"{r.duration_secs:.3f}"]
        row += ["" if n not in r.metrics else rust_fixed(r.metrics[n], 8) for n in names]
        cpu, ram, gpu, vram = (res.get(k) for k in ("cpu_pct", "ram_used", "gpu_pct", "vram_alloc"))
        spill = vram_spill(res)
        row += [
            "" if cpu is None else rust_fixed(cpu, 1),
            "" if ram is None else str(int(ram)),
            "" if gpu is None else rust_fixed(gpu, 1),
            "" if vram is None else str(int(vram)),
            str(spill) if spill else "",
        ]
        w.writerow(row)
    return buf.getvalue()
