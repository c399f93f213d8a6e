"""floDl's training monitor: per-epoch lines, history, logs, CSV and an HTML report.

Python is enough here: this module is presentation, none of it is math.

    monitor = Monitor(total_epochs=10)
    monitor.save_html("report.html")          # written by finish()
    for epoch in range(10):
        t0 = time.perf_counter()
        ...                                    # train
        monitor.log(epoch, time.perf_counter() - t0, {"loss": loss, "acc": acc})
    monitor.finish()
    monitor.write_log("train.log")
    monitor.export_csv("train.csv")

Formats follow floDl's ``flodl::monitor`` exactly:

* epoch line: ``"  epoch {e+1:>w}/{T}  k=v ...  [dur  ETA x]"`` (``w`` is the
  digit count of ``T``; the ETA, ``elapsed/(e+1)*(T-e-1)``, is left out on the
  last epoch), followed when a CUDA context exists by
  ``"  VRAM: {alloc} / {spill}"`` (and `` ({gpu}%)`` when the utilization is
  readable);
* numbers (:func:`format_number`): ``0``, ``1.23e-4`` below 1e-3, ``0.1234``
  below 100, ``123.45`` above;
* durations (:func:`format_duration`, alias :func:`format_eta`): ``42ms``,
  ``1.5s`` / ``1s``, ``1m 30s``, ``1h 01m`` (truncated, not rounded);
* bytes (:func:`format_bytes`): ``512 B``, ``500 KB``, ``100 MB``, ``2.1 GB``.

``Monitor(10).serve(8050)`` adds floDl's live dashboard: an HTTP server on a
daemon thread (:mod:`ferrotorch.dashboard`) whose page updates as ``log`` is
called and which ``finish`` stops.

Output goes to stdout and is silenced by the environment variable
``FLODL_VERBOSITY=0`` (or ``quiet``), read at each print.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import io
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from ._io import atomic_write
from .dashboard import DashboardServer, epoch_json
from .errors import ConfigError, FileError, InputTypeError

__all__ = [
    "Monitor",
    "EpochRecord",
    "epoch_line",
    "format_number",
    "format_duration",
    "format_eta",
    "format_bytes",
    "verbosity",
]


# ---------------------------------------------------------------- formats


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


def _rust_fixed(v: float, digits: int) -> str:
    """Rust's ``{:.N}`` for floats (Python spells NaN "nan")."""
    if math.isnan(v):
        return "NaN"
    return f"{v:.{digits}f}"


def verbosity() -> int:
    """floDl's output level from ``FLODL_VERBOSITY`` (0-4 or quiet/normal/verbose/debug/trace; default 1)."""
    raw = os.environ.get("FLODL_VERBOSITY", "").strip().lower()
    names = {"quiet": 0, "normal": 1, "verbose": 2, "debug": 3, "trace": 4}
    if raw in names:
        return names[raw]
    try:
        return max(0, min(4, int(raw)))
    except ValueError:
        return 1


def _emit(line: str) -> None:
    if verbosity() > 0:
        print(line, file=sys.stdout, flush=True)


def epoch_line(
    epoch: int,
    total_epochs: int,
    duration: float,
    metrics: Union[Dict[str, float], Iterable[Tuple[str, float]]],
    elapsed: Optional[float] = None,
) -> str:
    """floDl's epoch line, without printing it.

    ``epoch`` counts from 0; ``duration`` is this epoch's seconds; ``elapsed``
    is the seconds since training started (default: ``duration * (epoch+1)``),
    from which the ETA ``elapsed/(epoch+1)*(total-epoch-1)`` is derived. The ETA
    is left out on the last epoch::

        "  epoch  3/10  loss=0.1234  acc=0.9100  [1.5s  ETA 10.5s]"
    """
    items = metrics.items() if isinstance(metrics, dict) else metrics
    width = len(str(total_epochs))
    line = f"  epoch {epoch + 1:>{width}}/{total_epochs}"
    for name, val in items:
        line += f"  {name}={format_number(val)}"
    line += f"  [{format_duration(duration)}"
    if epoch + 1 < total_epochs:
        if elapsed is None:
            elapsed = duration * (epoch + 1)
        eta = elapsed / (epoch + 1) * (total_epochs - epoch - 1)
        line += f"  ETA {format_duration(eta)}"
    return line + "]"


# ---------------------------------------------------------------- resources


class _ResourceSampler:
    """CPU% (delta of /proc/stat), RAM (/proc/meminfo) and CUDA allocator bytes.

    GPU fields are read only when torch has already created a CUDA context,
    so a monitor never initializes CUDA by itself (floDl's rule too).
    """

    def __init__(self) -> None:
        self._prev = self._cpu_times()

    @staticmethod
    def _cpu_times() -> Optional[Tuple[int, int]]:
        try:
            with open("/proc/stat") as f:
                first = f.readline().split()
        except OSError:
            return None
        if not first or first[0] != "cpu" or len(first) < 5:
            return None
        vals = [int(x) for x in first[1:] if x.isdigit()]
        return sum(vals), vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait

    @staticmethod
    def _meminfo() -> Tuple[Optional[int], Optional[int]]:
        total = avail = None
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        total = int(line.split()[1]) * 1024
                    elif line.startswith("MemAvailable:"):
                        avail = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None, None
        if total is None or avail is None:
            return None, None
        return max(total - avail, 0), total

    def sample(self) -> Dict[str, Optional[float]]:
        res: Dict[str, Optional[float]] = dict.fromkeys(
            ("cpu_pct", "ram_used", "ram_total", "gpu_pct", "vram_alloc", "vram_total")
        )
        cur = self._cpu_times()
        if cur is not None and self._prev is not None:
            d_total = cur[0] - self._prev[0]
            d_idle = cur[1] - self._prev[1]
            if d_total > 0:
                res["cpu_pct"] = max(d_total - d_idle, 0) / d_total * 100.0
        if cur is not None:
            self._prev = cur
        res["ram_used"], res["ram_total"] = self._meminfo()
        torch = sys.modules.get("torch")
        try:
            if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
                dev = torch.cuda.current_device()
                res["vram_alloc"] = int(torch.cuda.memory_reserved(dev))
                res["vram_total"] = int(torch.cuda.get_device_properties(dev).total_memory)
                try:  # needs NVML (pynvml); absent is fine
                    res["gpu_pct"] = float(torch.cuda.utilization(dev))
                except Exception:
                    pass
        except Exception:  # a broken CUDA setup must not break training
            pass
        return res


# ---------------------------------------------------------------- records


@dataclass
class EpochRecord:
    """One logged epoch: ``epoch`` counts from 0 (as floDl's), ``metrics`` keeps logging order.

    ``resources`` has ``cpu_pct``, ``ram_used``, ``ram_total``, ``gpu_pct``,
    ``vram_alloc``, ``vram_total``; each is ``None`` when unavailable.
    """

    epoch: int
    duration_secs: float
    metrics: Dict[str, float] = field(default_factory=dict)
    resources: Dict[str, Optional[float]] = field(default_factory=dict)


def _to_metrics(metrics: Any) -> Dict[str, float]:
    """dict | [(k, v), ...] | object with latest_metrics() | (that object, extras)."""
    if isinstance(metrics, tuple) and len(metrics) == 2 and hasattr(metrics[0], "latest_metrics"):
        base = _to_metrics(metrics[0])
        base.update(_to_metrics(metrics[1]))
        return base
    if hasattr(metrics, "latest_metrics"):
        metrics = metrics.latest_metrics()
    if metrics is None:
        return {}
    if isinstance(metrics, dict):
        pairs: Iterable[Any] = metrics.items()
    elif isinstance(metrics, (str, bytes)):
        raise InputTypeError(f"Monitor.log: metrics must be a dict or (name, value) pairs, got {metrics!r}")
    else:
        try:
            pairs = list(metrics)
        except TypeError:
            raise InputTypeError(
                "Monitor.log: metrics must be a dict, a list of (name, value) pairs or an object "
                f"with latest_metrics(), got {type(metrics).__name__}"
            ) from None
    out: Dict[str, float] = {}
    for item in pairs:
        try:
            name, val = item
        except (TypeError, ValueError):
            raise InputTypeError(
                f"Monitor.log: each metric must be a (name, value) pair, got {item!r}"
            ) from None
        try:
            out[str(name)] = float(val)
        except (TypeError, ValueError):
            raise InputTypeError(
                f"Monitor.log: metric {name!r} must be a number, got {type(val).__name__}"
            ) from None
    return out


def _write_atomic(path: Union[str, os.PathLike], text: str) -> None:
    """Text written atomically (see ``_io.atomic_write``)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ---------------------------------------------------------------- monitor


class Monitor:
    """floDl's ``Monitor``: prints one line per epoch and keeps the run's history.

    ``Monitor(total_epochs)``; ``log(epoch, duration, metrics)`` with ``epoch``
    counted from 0, ``duration`` in seconds (float or ``datetime.timedelta``)
    and ``metrics`` a dict, a list of ``(name, value)`` pairs, an object with a
    ``latest_metrics()`` method (a ferrotorch ``Graph``) or a tuple
    ``(graph, extras)``. ``finish()`` prints the summary and writes the HTML
    report set by ``save_html``; ``history()``, ``write_log``, ``export_csv``
    and ``write_html`` give the record back. All files are written atomically.
    ``serve(port)`` / ``watch(graph)`` add the live dashboard; ``log`` feeds it
    and ``finish`` (or ``stop``, or leaving a ``with`` block) shuts it down.
    """

    def __init__(self, total_epochs: int) -> None:
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int):
            raise InputTypeError(f"Monitor: total_epochs must be an int, got {type(total_epochs).__name__}")
        if total_epochs < 1:
            raise ConfigError(f"Monitor: total_epochs must be at least 1, got {total_epochs}")
        self.total_epochs = total_epochs
        self._epochs: List[EpochRecord] = []
        self._start = time.perf_counter()
        self._finished_secs: Optional[float] = None
        self._sampler = _ResourceSampler()
        self._html_path: Optional[str] = None
        self.title = "ferrotorch training report"
        self._server: Optional[DashboardServer] = None
        self._svg: Optional[str] = None
        self._identity = ""

    # -- logging

    def log(self, epoch: int, duration: Union[float, _dt.timedelta], metrics: Any = None) -> EpochRecord:
        """Records epoch ``epoch`` (from 0) and prints floDl's epoch line; returns the record."""
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise InputTypeError(f"Monitor.log: epoch must be an int, got {type(epoch).__name__}")
        if epoch < 0:
            raise ConfigError(f"Monitor.log: epoch counts from 0, got {epoch}")
        secs = duration.total_seconds() if isinstance(duration, _dt.timedelta) else duration
        try:
            secs = float(secs)
        except (TypeError, ValueError):
            raise InputTypeError(
                f"Monitor.log: duration must be seconds or a timedelta, got {type(duration).__name__}"
            ) from None
        if not secs >= 0:
            raise ConfigError(f"Monitor.log: duration must be a non-negative number of seconds, got {secs}")
        record = EpochRecord(epoch, secs, _to_metrics(metrics), self._sampler.sample())
        self._epochs.append(record)
        elapsed = time.perf_counter() - self._start
        if self._server is not None:
            self._server.push(self._event(record, elapsed))
        _emit(epoch_line(epoch, self.total_epochs, secs, record.metrics, elapsed))
        alloc = record.resources.get("vram_alloc")
        if alloc is not None:
            total = record.resources.get("vram_total")
            spill = alloc - total if total is not None and alloc > total else 0
            vram = f"  VRAM: {format_bytes(int(alloc))} / {format_bytes(int(spill))}"
            gpu = record.resources.get("gpu_pct")
            if gpu is not None:
                vram += f" ({gpu:.0f}%)"
            _emit(vram)
        return record

    def finish(self) -> None:
        """Prints ``"  training complete in X  | k: v ..."`` and writes the report set by :meth:`save_html`."""
        total = time.perf_counter() - self._start
        self._finished_secs = total
        line = f"  training complete in {format_duration(total)}"
        if self._epochs:
            for name, val in self._epochs[-1].metrics.items():
                line += f"  | {name}: {format_number(val)}"
        _emit(line)
        if self._html_path is not None:
            self.write_html(self._html_path)
            _emit(f"  saved: {self._html_path}")
        self.stop()

    # -- live dashboard

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> "Monitor":
        """Serves floDl's live dashboard at ``http://host:port/`` from a daemon thread.

        ``GET /`` is the page (curves per metric, epoch table, ETA, resources
        and the graph given to :meth:`watch`); ``GET /events`` streams each
        logged epoch as a Server-Sent Event (JSON), replaying the history to a
        late joiner first. Binds 127.0.0.1 unless ``host`` says otherwise
        (``"0.0.0.0"`` exposes it to the network, as floDl does). ``port=0``
        picks a free port: :attr:`port` and :attr:`url` tell which.
        :meth:`log` is all it needs per epoch; :meth:`finish` (or :meth:`stop`,
        or leaving a ``with`` block) ends the streams and frees the port.
        Returns the monitor, so ``Monitor(10).serve(8050)`` chains.
        """
        if isinstance(port, bool) or not isinstance(port, int):
            raise InputTypeError(f"Monitor.serve: port must be an int, got {type(port).__name__}")
        if not 0 <= port <= 65535:
            raise ConfigError(f"Monitor.serve: port must be in 0..65535, got {port}")
        if not isinstance(host, str) or not host:
            raise InputTypeError(f"Monitor.serve: host must be a non-empty string, got {host!r}")
        if self._server is not None:
            raise ConfigError(f"Monitor.serve: already serving at {self.url}")
        try:
            server = DashboardServer(host, port, self.title)
        except OSError as e:
            raise FileError(f"Monitor.serve: cannot listen on {host}:{port}: {e.strerror or e}") from e
        server.set_svg(self._svg, self._identity)
        for i, record in enumerate(self._epochs):  # epochs logged before serve() are history too
            server.push(self._event(record, None if i + 1 < len(self._epochs) else self._total_secs()))
        self._server = server
        _emit(f"  dashboard: {self.url}")
        return self

    @property
    def port(self) -> Optional[int]:
        """The port the dashboard listens on, or None when not serving."""
        return None if self._server is None else self._server.port

    @property
    def url(self) -> Optional[str]:
        """``http://host:port/`` of the dashboard (localhost for 0.0.0.0), or None when not serving."""
        if self._server is None:
            return None
        host = self._server.host
        shown = "localhost" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{self._server.port}/"

    def stop(self) -> None:
        """Ends the dashboard's streams (``complete``), stops serving and frees the port; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()

    def watch(self, graph: Any) -> "Monitor":
        """Shows ``graph``'s SVG (``graph.svg()``, needs Graphviz's ``dot``) and hash on the dashboard.

        Without ``dot`` the page shows the graph's DOT source instead.
        """
        if not hasattr(graph, "dot"):
            raise InputTypeError(f"Monitor.watch: expected a ferrotorch Graph, got {type(graph).__name__}")
        try:
            svg = graph.svg().decode("utf-8", "replace")
            start = svg.find("<svg")
            svg = svg[start:] if start >= 0 else svg
        except Exception:  # no Graphviz: the DOT text still shows the structure
            svg = f"<pre>{html.escape(graph.dot())}</pre>"
        self._identity = f"graph {graph.short_hash()}" if hasattr(graph, "short_hash") else ""
        self.set_svg(svg)
        return self

    def set_svg(self, svg: str) -> None:
        """Sets the graph picture the dashboard shows (an ``<svg>`` document as text)."""
        if not isinstance(svg, str):
            raise InputTypeError(f"Monitor.set_svg: svg must be a str, got {type(svg).__name__}")
        self._svg = svg
        if self._server is not None:
            self._server.set_svg(svg, self._identity)

    def _event(self, record: EpochRecord, elapsed: Optional[float]) -> str:
        done = record.epoch + 1
        eta = None
        if elapsed is not None and 0 < done < self.total_epochs:
            eta = elapsed / done * (self.total_epochs - done)
        return epoch_json(record, self.total_epochs, eta)

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            try:
                server.close()
            except Exception:
                pass

    def history(self) -> List[EpochRecord]:
        """Every logged epoch, in logging order (a copy of the list)."""
        return list(self._epochs)

    def _total_secs(self) -> float:
        if self._finished_secs is not None:
            return self._finished_secs
        return time.perf_counter() - self._start

    # -- files

    def write_log(self, path: Union[str, os.PathLike]) -> None:
        """A text log: ``# flodl training log``, ``epoch n/T  k=v  [dur]`` per epoch, ``# total: X``."""
        width = len(str(self.total_epochs))
        lines = ["# flodl training log"]
        for r in self._epochs:
            line = f"epoch {r.epoch + 1:>{width}}/{self.total_epochs}"
            for name, val in r.metrics.items():
                line += f"  {name}={format_number(val)}"
            lines.append(line + f"  [{format_duration(r.duration_secs)}]")
        if self._epochs:
            lines.append(f"# total: {format_duration(self._total_secs())}")
        _write_atomic(path, "\n".join(lines) + "\n")

    def export_csv(self, path: Union[str, os.PathLike]) -> None:
        """CSV: ``epoch,duration_s,<first epoch's metrics>,cpu_pct,ram_used,gpu_pct,vram_alloc,vram_spill``.

        Epoch is 1-based, duration ``{:.3}``, metrics ``{:.8}``, cpu/gpu ``{:.1}``,
        bytes as integers; unavailable values (and metrics an epoch lacks) are
        empty. Like floDl, nothing is written before the first ``log``.
        """
        if not self._epochs:
            return
        names = list(self._epochs[0].metrics)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            ["epoch", "duration_s", *names, "cpu_pct", "ram_used", "gpu_pct", "vram_alloc", "vram_spill"]
        )
        for r in self._epochs:
            res = r.resources
            alloc, total = res.get("vram_alloc"), res.get("vram_total")
            spill = (
                str(int(alloc - total)) if alloc is not None and total is not None and alloc > total else ""
            )
            row = [str(r.epoch + 1), f"{r.duration_secs:.3f}"]
            row += ["" if n not in r.metrics else _rust_fixed(r.metrics[n], 8) for n in names]
            cpu, ram, gpu, vram = (res.get(k) for k in ("cpu_pct", "ram_used", "gpu_pct", "vram_alloc"))
            row += [
                "" if cpu is None else _rust_fixed(cpu, 1),
                "" if ram is None else str(int(ram)),
                "" if gpu is None else _rust_fixed(gpu, 1),
                "" if vram is None else str(int(vram)),
                spill,
            ]
            w.writerow(row)
        _write_atomic(path, buf.getvalue())

    def save_html(self, path: Union[str, os.PathLike]) -> None:
        """Asks :meth:`finish` to write the HTML report to ``path`` (floDl's semantics)."""
        self._html_path = os.fspath(path)

    def write_html(self, path: Union[str, os.PathLike]) -> None:
        """Writes the HTML report to ``path`` now."""
        _write_atomic(path, self.report_html())

    def report_html(self) -> str:
        """The self-contained HTML report (inline SVG charts, no script, no external asset)."""
        return _render_html(self)


# ---------------------------------------------------------------- HTML report

_PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]

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


def _chart_svg(name: str, xs: List[int], ys: List[float], color: str) -> str:
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


def _render_html(mon: Monitor) -> str:
    recs = mon._epochs
    names: List[str] = []
    for r in recs:
        for n in r.metrics:
            if n not in names:
                names.append(n)
    xs = [r.epoch + 1 for r in recs]
    charts = [
        f'<div class="chart">{_chart_svg(n, xs, [r.metrics.get(n, math.nan) for r in recs], _PALETTE[i % len(_PALETTE)])}</div>'
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
        cells = [f"{r.epoch + 1}/{mon.total_epochs}", format_duration(r.duration_secs)]
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
    total = format_duration(mon._total_secs())
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    final = ""
    if recs:
        final = "  |  ".join(f"{html.escape(k)}: {format_number(v)}" for k, v in recs[-1].metrics.items())
    title = html.escape(mon.title)
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<div class="meta">{len(recs)} of {mon.total_epochs} epochs &middot; '
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
