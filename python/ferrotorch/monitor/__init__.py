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
daemon thread (:mod:`ferrotorch.monitor.server`) whose page updates as ``log`` is
called and which ``finish`` stops.

Output goes to stdout and is silenced by the environment variable
``FLODL_VERBOSITY=0`` (or ``quiet``), read at each print.

The package splits by job, as floDl's ``monitor/``: :mod:`.format` (every
string), :mod:`.output` (stdout and ``FLODL_VERBOSITY``), :mod:`.resources`
(/proc and CUDA sampling), :mod:`.record` (an epoch's record), :mod:`.export`
(log and CSV), :mod:`.charts` and :mod:`.report` (the HTML report),
:mod:`.server` (the live dashboard) and :mod:`.core` (:class:`Monitor`).
"""

from .core import Monitor
from .format import epoch_line, format_bytes, format_duration, format_eta, format_number
from .output import verbosity
from .record import EpochRecord

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
