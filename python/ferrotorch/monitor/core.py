"""floDl's ``Monitor``: prints one line per epoch, keeps the history, writes the files and feeds the dashboard."""

from __future__ import annotations

import datetime as _dt
import html
import os
import time
from typing import Any, List, Optional, Union

from ..errors import ConfigError, FileError, InputTypeError
from .export import csv_text, log_text, write_text
from .format import epoch_line, eta_secs, format_duration, format_number, vram_line
from .output import emit
from .record import EpochRecord, to_metrics
from .report import render_html
from .resources import ResourceSampler, vram_spill
from .server import DashboardServer, epoch_json


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
        self._sampler = ResourceSampler()
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
        record = EpochRecord(epoch, secs, to_metrics(metrics), self._sampler.sample())
        self._epochs.append(record)
        elapsed = time.perf_counter() - self._start
        if self._server is not None:
            self._server.push(self._event(record, elapsed))
        emit(epoch_line(epoch, self.total_epochs, secs, record.metrics, elapsed))
        res = record.resources
        alloc = res.get("vram_alloc")
        if alloc is not None:
            emit(vram_line(alloc, vram_spill(res), res.get("gpu_pct")))
        return record

    def finish(self) -> None:
        """Prints ``"  training complete in X  | k: v ..."`` and writes the report set by :meth:`save_html`."""
        total = time.perf_counter() - self._start
        self._finished_secs = total
        line = f"  training complete in {format_duration(total)}"
        if self._epochs:
            for name, val in self._epochs[-1].metrics.items():
                line += f"  | {name}: {format_number(val)}"
        emit(line)
        if self._html_path is not None:
            self.write_html(self._html_path)
            emit(f"  saved: {self._html_path}")
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
        emit(f"  dashboard: {self.url}")
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
        eta = None if elapsed is None else eta_secs(record.epoch, self.total_epochs, elapsed)
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
        write_text(path, log_text(self._epochs, self.total_epochs, self._total_secs()))

    def export_csv(self, path: Union[str, os.PathLike]) -> None:
        """CSV: ``epoch,duration_s,<first epoch's metrics>,cpu_pct,ram_used,gpu_pct,vram_alloc,vram_spill``.

        Epoch is 1-based, duration ``{:.3}``, metrics ``{:.8}``, cpu/gpu ``{:.1}``,
        bytes as integers; unavailable values (and metrics an epoch lacks) are
        empty. Like floDl, nothing is written before the first ``log``.
        """
        if not self._epochs:
            return
        write_text(path, csv_text(self._epochs))

    def save_html(self, path: Union[str, os.PathLike]) -> None:
        """Asks :meth:`finish` to write the HTML report to ``path`` (floDl's semantics)."""
        self._html_path = os.fspath(path)

    def write_html(self, path: Union[str, os.PathLike]) -> None:
        """Writes the HTML report to ``path`` now."""
        write_text(path, self.report_html())

    def report_html(self) -> str:
        """The self-contained HTML report (inline SVG charts, no script, no external asset)."""
        return render_html(self.title, self.total_epochs, self._epochs, self._total_secs())
