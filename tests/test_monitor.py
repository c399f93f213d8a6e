"""Monitor, formats and progress bar against floDl's exact strings (flodl::monitor)."""

import csv
import io
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

import ferrotorch as ft
from _mlp import mlp
from ferrotorch import monitor as mon_mod
from ferrotorch import progress as prog_mod
from ferrotorch.monitor import (
    EpochRecord,
    Monitor,
    charts,
    core,
    format_bytes,
    format_duration,
    format_eta,
    format_number,
    resources,
)
from ferrotorch.progress import ProgressBar, epoch_desc, fit_progress_line


class Clock:
    """A settable perf_counter so ETAs and totals are exact."""

    def __init__(self, t=100.0):
        self.t = t

    def perf_counter(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(core, "time", c)
    monkeypatch.setattr(prog_mod, "time", c)
    monkeypatch.delenv("FLODL_VERBOSITY", raising=False)
    return c


NO_RES = dict.fromkeys(("cpu_pct", "ram_used", "ram_total", "gpu_pct", "vram_alloc", "vram_total"))


def fixed_resources(monkeypatch, **res):
    sample = dict(NO_RES, **res)
    monkeypatch.setattr(resources.ResourceSampler, "sample", lambda self: dict(sample))


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "v, s",
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.23e-4, "1.23e-4"),
        (0.0001, "1.00e-4"),  # floDl test_format_metric
        (-5e-5, "-5.00e-5"),
        (0.1234, "0.1234"),
        (1.2345, "1.2345"),
        (0.001, "0.0010"),
        (-0.5, "-0.5000"),
        (99.99, "99.9900"),
        (123.45, "123.45"),
        (12345.67, "12345.67"),
        (float("nan"), "NaN"),
        (float("inf"), "inf"),
    ],
)
def test_format_number(v, s):
    assert format_number(v) == s


@pytest.mark.parametrize(
    "secs, s",
    [
        (0.042, "42ms"),
        (0.0429, "42ms"),  # floDl truncates
        (0.0, "0ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (1.96, "1.9s"),
        (59.99, "59.9s"),
        (60.0, "1m 00s"),
        (65.0, "1m 05s"),
        (90.0, "1m 30s"),
        (3599.9, "59m 59s"),
        (3600.0, "1h 00m"),
        (3661.0, "1h 01m"),
        (-1.0, "—"),
    ],
)
def test_format_duration_and_eta(secs, s):
    assert format_duration(secs) == s
    assert format_eta(secs) == s


def test_format_bytes():
    assert format_bytes(2_254_857_830) == "2.1 GB"
    assert format_bytes(512) == "512 B"
    assert format_bytes(0) == "0 B"
    assert format_bytes(1024 * 500) == "500 KB"
    assert format_bytes(1024 * 1024 * 100) == "100 MB"
    for bad in (-1, "12", None, True):
        with pytest.raises(ft.InputTypeError, match="format_bytes"):
            format_bytes(bad)


def test_top_level_exports():
    assert ft.Monitor is Monitor and ft.ProgressBar is ProgressBar
    assert ft.format_bytes is format_bytes and ft.format_duration is format_duration
    assert ft.format_number is format_number
    from ferrotorch import train

    assert train.format_number is format_number and train.format_duration is format_duration


# ---------------------------------------------------------------- epoch lines


def test_epoch_line_with_eta_and_without_on_last_epoch(clock, capsys, monkeypatch):
    fixed_resources(monkeypatch)
    m = Monitor(10)
    clock.t += 1.5
    rec = m.log(0, 1.5, {"loss": 0.1234, "acc": 1.23e-4})
    assert isinstance(rec, EpochRecord)
    clock.t += 1.5
    m.log(1, 1.5, [("loss", 0.0), ("acc", 123.45)])
    clock.t = 100.0 + 15.0
    m.log(9, 1.5, {"loss": 123.45, "acc": 0})
    m.finish()
    assert capsys.readouterr().out.splitlines() == [
        "  epoch  1/10  loss=0.1234  acc=1.23e-4  [1.5s  ETA 13.5s]",  # 1.5/1*9
        "  epoch  2/10  loss=0  acc=123.45  [1.5s  ETA 12s]",  # 3/2*8
        "  epoch 10/10  loss=123.45  acc=0  [1.5s]",
        "  training complete in 15s  | loss: 123.45  | acc: 0",
    ]


def test_epoch_line_single_digit_width_and_timedelta(clock, capsys, monkeypatch):
    import datetime

    fixed_resources(monkeypatch)
    m = Monitor(3)
    clock.t += 90.0
    m.log(0, datetime.timedelta(seconds=90), {"loss": 0.5})
    out = capsys.readouterr().out
    assert out == "  epoch 1/3  loss=0.5000  [1m 30s  ETA 3m 00s]\n"


def test_vram_line_when_a_cuda_context_exists(clock, capsys, monkeypatch):
    fixed_resources(monkeypatch, vram_alloc=2_254_857_830, vram_total=8 * 1024**3, gpu_pct=81.6)
    m = Monitor(1)
    m.log(0, 0.042, {"loss": 1.0})
    assert capsys.readouterr().out.splitlines() == [
        "  epoch 1/1  loss=1.0000  [42ms]",
        "  VRAM: 2.1 GB / 0 B (82%)",
    ]
    fixed_resources(monkeypatch, vram_alloc=3 * 1024**3, vram_total=2 * 1024**3)
    m2 = Monitor(1)
    m2.log(0, 0.5, {"loss": 1.0})
    assert capsys.readouterr().out.splitlines()[1] == "  VRAM: 3.0 GB / 1.0 GB"


def test_no_vram_line_without_cuda(clock, capsys, monkeypatch):
    # The real sampler on a process whose CUDA context does not exist (whatever this machine has):
    # no VRAM fields, no VRAM line, and the allocator is never asked (that could create a context).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    asked = []
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: asked.append(a) or 1)
    m = Monitor(2)
    clock.t += 0.5
    m.log(0, 0.5, {"loss": 1.0})
    assert capsys.readouterr().out == "  epoch 1/2  loss=1.0000  [500ms  ETA 500ms]\n"
    res = m.history()[0].resources
    assert res["vram_alloc"] is None and res["vram_total"] is None and res["gpu_pct"] is None
    assert asked == []


class StepClock:
    """A perf_counter that moves 0.5 s at each read, so every duration fit computes is exact."""

    def __init__(self):
        self.t = 0.0

    def perf_counter(self):
        self.t += 0.5
        return self.t


def test_fit_progress_line_matches_trainer_format(monkeypatch, capsys):
    monkeypatch.setattr(ft.train, "time", StepClock())
    g = mlp()
    hist = ft.Trainer(g, ft.optim.Adam(g.parameters(), 0.01)).fit(
        ft.data.DataLoader((torch.randn(8, 4), torch.randn(8, 3)), 4), epochs=3, progress=True
    )
    lines = capsys.readouterr().out.splitlines()
    # fit reads the clock at its start, then at each epoch's start, end and line: the epoch lasts
    # one tick (0.5 s) and e+1 epochs have taken 3(e+1) ticks.
    want = [fit_progress_line(e, 3, 0.5, {"loss": hist.losses[e]}, elapsed=1.5 * (e + 1)) for e in range(3)]
    assert lines == want
    assert lines[0] == f"  epoch 1/3  loss={format_number(hist.losses[0])}  [500ms  ETA 3s]"
    assert lines[2].endswith("  [500ms]")


def test_epoch_line_formats():
    assert (
        fit_progress_line(2, 10, 1.5, {"loss": 0.1234}, elapsed=4.5)
        == "  epoch  3/10  loss=0.1234  [1.5s  ETA 10.5s]"
    )
    assert fit_progress_line(9, 10, 1.5, {"loss": 0.1234}, elapsed=15) == "  epoch 10/10  loss=0.1234  [1.5s]"
    # without elapsed the pace is this epoch's duration
    assert fit_progress_line(0, 3, 2.0, [("loss", 1.0)]) == "  epoch 1/3  loss=1.0000  [2s  ETA 4s]"
    # fit(steps=...) knows no epoch total: "?" and no ETA
    assert fit_progress_line(4, None, 2.0, {"loss": 1.0}, elapsed=10) == "  epoch 5/?  loss=1.0000  [2s]"
    assert epoch_desc(2, 10) == "epoch  3/10"


def test_verbosity_zero_silences(clock, capsys, monkeypatch):
    monkeypatch.setenv("FLODL_VERBOSITY", "0")
    m = Monitor(2)
    m.log(0, 1.0, {"loss": 1.0})
    m.finish()
    bar = ProgressBar(3, stream=None)
    bar.update(3)
    bar.close()
    assert capsys.readouterr().out == ""
    assert len(m.history()) == 1  # silenced, still recorded
    monkeypatch.setenv("FLODL_VERBOSITY", "quiet")
    assert mon_mod.verbosity() == 0
    monkeypatch.setenv("FLODL_VERBOSITY", "verbose")
    assert mon_mod.verbosity() == 2


# ---------------------------------------------------------------- metrics sources and errors


class FakeGraph:
    def __init__(self, pairs):
        self.pairs = pairs

    def latest_metrics(self):
        return self.pairs


def test_metrics_from_an_object_with_latest_metrics_and_extras(clock, capsys, monkeypatch):
    fixed_resources(monkeypatch)
    m = Monitor(2)
    m.log(0, 1.0, FakeGraph([("loss", 0.25), ("acc", 0.5)]))
    m.log(1, 1.0, (FakeGraph([("loss", 0.125)]), [("lr", 1e-4)]))
    assert m.history()[0].metrics == {"loss": 0.25, "acc": 0.5}
    assert list(m.history()[1].metrics.items()) == [("loss", 0.125), ("lr", 1e-4)]
    assert "loss=0.1250  lr=1.00e-4  [1s]" in capsys.readouterr().out


def test_metrics_from_a_ferrotorch_graph(clock, capsys, monkeypatch):
    fixed_resources(monkeypatch)
    g = ft.FlowBuilder.new().build()
    g.record_scalar("loss", 0.5)
    g.record_scalar("acc", 0.75)
    g.flush()
    m = Monitor(1)
    m.log(0, 1.0, g)
    assert m.history()[0].metrics == dict(g.latest_metrics())
    assert "loss=0.5000  acc=0.7500" in capsys.readouterr().out


def test_bad_arguments(clock):
    with pytest.raises(ft.ConfigError, match="total_epochs must be at least 1, got 0"):
        Monitor(0)
    with pytest.raises(ft.InputTypeError, match="total_epochs must be an int"):
        Monitor(2.5)
    m = Monitor(2)
    with pytest.raises(ft.ConfigError, match="epoch counts from 0, got -1"):
        m.log(-1, 1.0, {})
    with pytest.raises(ft.ConfigError, match="duration"):
        m.log(0, -1.0, {})
    with pytest.raises(ft.InputTypeError, match="duration must be seconds"):
        m.log(0, "1s", {})
    with pytest.raises(ft.InputTypeError, match="metric 'loss' must be a number"):
        m.log(0, 1.0, {"loss": "low"})
    with pytest.raises(ft.InputTypeError, match="metrics must be a dict"):
        m.log(0, 1.0, "loss=1")
    with pytest.raises(ft.InputTypeError, match=r"\(name, value\) pair"):
        m.log(0, 1.0, [("loss", 1.0, 2.0)])
    with pytest.raises(ft.InputTypeError, match="latest_metrics"):
        m.log(0, 1.0, 3.0)
    assert m.history() == []  # nothing recorded by failed calls


# ---------------------------------------------------------------- history and files


def _three_epochs(clock, monkeypatch, **res):
    fixed_resources(monkeypatch, **res)
    m = Monitor(12)
    for e, (loss, acc) in enumerate([(0.9, 0.5), (0.5, 0.7), (1.23e-4, 0.9)]):
        clock.t += 1.5
        m.log(e, 1.5 if e else 0.042, {"loss": loss, "acc": acc})
    return m


def test_history_records(clock, monkeypatch):
    m = _three_epochs(clock, monkeypatch, cpu_pct=12.5)
    h = m.history()
    assert [r.epoch for r in h] == [0, 1, 2]
    assert [r.duration_secs for r in h] == [0.042, 1.5, 1.5]
    assert list(h[2].metrics) == ["loss", "acc"] and h[2].metrics["loss"] == 1.23e-4
    assert h[0].resources["cpu_pct"] == 12.5 and set(h[0].resources) == set(NO_RES)
    h.clear()
    assert len(m.history()) == 3  # a copy


def test_real_resource_sample():
    s = resources.ResourceSampler()
    sum(i * i for i in range(200_000))  # let some jiffies pass
    r = s.sample()
    assert set(r) == set(NO_RES)
    if os.path.exists("/proc/meminfo"):
        assert 0 < r["ram_used"] < r["ram_total"]
    if r["cpu_pct"] is not None:
        assert 0.0 <= r["cpu_pct"] <= 100.0


def test_write_log(clock, monkeypatch, tmp_path):
    m = _three_epochs(clock, monkeypatch)
    clock.t += 0.5
    p = tmp_path / "train.log"
    m.write_log(p)
    assert p.read_text() == (
        "# flodl training log\n"
        "epoch  1/12  loss=0.9000  acc=0.5000  [42ms]\n"
        "epoch  2/12  loss=0.5000  acc=0.7000  [1.5s]\n"
        "epoch  3/12  loss=1.23e-4  acc=0.9000  [1.5s]\n"
        "# total: 5s\n"
    )
    empty = tmp_path / "empty.log"
    Monitor(3).write_log(empty)
    assert empty.read_text() == "# flodl training log\n"
    assert sorted(os.listdir(tmp_path)) == ["empty.log", "train.log"]  # no temp files left


def test_export_csv_parses_back(clock, monkeypatch, tmp_path):
    m = _three_epochs(clock, monkeypatch, cpu_pct=45.66, ram_used=2_000_000_000, ram_total=8_000_000_000)
    p = tmp_path / "train.csv"
    m.export_csv(p)
    text = p.read_text()
    assert text.splitlines()[0] == "epoch,duration_s,loss,acc,cpu_pct,ram_used,gpu_pct,vram_alloc,vram_spill"
    assert text.splitlines()[1] == "1,0.042,0.90000000,0.50000000,45.7,2000000000,,,"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert [r["duration_s"] for r in rows] == ["0.042", "1.500", "1.500"]
    assert [float(r["loss"]) for r in rows] == [0.9, 0.5, 1.23e-4]
    assert rows[2]["loss"] == "0.00012300"
    assert all(r["gpu_pct"] == r["vram_alloc"] == r["vram_spill"] == "" for r in rows)


def test_export_csv_gpu_fields_and_missing_values(clock, monkeypatch, tmp_path):
    fixed_resources(monkeypatch, gpu_pct=99.04, vram_alloc=3 * 1024**3, vram_total=2 * 1024**3)
    m = Monitor(2)
    m.log(0, 1.0, {"loss": 1.0, "acc": 0.5})
    m.log(1, 1.0, {"loss": 0.5})  # acc missing: left empty, columns stay aligned
    p = tmp_path / "g.csv"
    m.export_csv(p)
    rows = list(csv.DictReader(io.StringIO(p.read_text())))
    assert rows[0]["gpu_pct"] == "99.0" and rows[0]["vram_alloc"] == str(3 * 1024**3)
    assert rows[0]["vram_spill"] == str(1024**3) and rows[0]["cpu_pct"] == ""
    assert rows[1]["acc"] == "" and rows[1]["loss"] == "0.50000000"


def test_export_csv_writes_nothing_before_the_first_epoch(tmp_path):
    Monitor(3).export_csv(tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_writes_are_atomic(clock, monkeypatch, tmp_path):
    m = _three_epochs(clock, monkeypatch)
    p = tmp_path / "train.log"
    p.write_text("previous\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        m.write_log(p)
    assert p.read_text() == "previous\n"
    assert os.listdir(tmp_path) == ["train.log"]  # the temp file was removed


# ---------------------------------------------------------------- progress bar


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_plain_lines_on_a_non_terminal(clock):
    s = io.StringIO()
    bar = ProgressBar(100, desc="train", stream=s)
    for i in range(100):
        clock.t += 0.01
        bar.update(1, loss=1.0 / (i + 1))
    bar.close()
    out = s.getvalue()
    assert "\r" not in out and "\x1b" not in out
    assert all(c.isprintable() or c == "\n" for c in out)
    lines = out.splitlines()
    assert len(lines) == 10  # every 10%
    assert lines[0] == "train: 10/100 (10%)  100.0 steps/s  ETA 900ms  loss=0.1000"
    assert lines[-1] == "train: 100/100 (100%)  100.0 steps/s  in 1s  loss=0.0100"


def test_progress_plain_lines_by_time(clock):
    s = io.StringIO()
    bar = ProgressBar(1000, stream=s, every=1.0, interval=5.0)
    for _ in range(30):
        clock.t += 1.0
        bar.update(1)
    bar.close()
    lines = s.getvalue().splitlines()
    assert [ln.split()[0] for ln in lines] == [
        "5/1000",
        "10/1000",
        "15/1000",
        "20/1000",
        "25/1000",
        "30/1000",
    ]
    assert "ETA" in lines[0] and "\r" not in s.getvalue()


def test_progress_redraws_in_place_on_a_terminal(clock):
    t = FakeTTY()
    with ProgressBar(5, desc="train", stream=t, width=10) as bar:
        for _ in range(5):
            clock.t += 0.5
            bar.update(1, loss=0.5, acc=0.25)
    out = t.getvalue()
    frames = out.split("\r")[1:]
    assert out.startswith("\r") and out.endswith("\n") and out.count("\n") == 1
    assert len(frames) == 5  # one per update (0.5 s apart), none repeated by close
    assert frames[0].rstrip() == "train: 1/5 |##--------|  2.0 steps/s  ETA 2s  loss=0.5000  acc=0.2500"
    assert frames[-1].rstrip() == "train: 5/5 |##########|  2.0 steps/s  in 2.5s  loss=0.5000  acc=0.2500"


def test_progress_terminal_throttles_and_wipes_longer_lines(clock):
    t = FakeTTY()
    bar = ProgressBar(1000, stream=t, min_redraw=1.0)
    bar.update(1, loss=123456.0)
    bar.update(1)  # no time passed: no redraw
    assert t.getvalue().count("\r") == 1
    clock.t += 2.0
    bar.set_metrics()
    bar.metrics.clear()
    bar.update(1)
    first, second = t.getvalue().split("\r")[1:]
    assert len(second) >= len(first)  # padded over the longer previous frame
    bar.close()


def test_progress_unknown_total_and_errors(clock):
    s = io.StringIO()
    bar = ProgressBar(None, desc="x\r\nlabel", stream=s, interval=1.0)
    clock.t += 2.0
    bar.update(7)
    bar.close()
    assert s.getvalue() == "x  label: 7  3.5 steps/s\n"
    with pytest.raises(ft.ConfigError, match="closed"):
        bar.update()
    with pytest.raises(ft.ConfigError, match="total must be non-negative"):
        ProgressBar(-1)
    with pytest.raises(ft.InputTypeError, match="total must be an int"):
        ProgressBar(2.5)
    with pytest.raises(ft.ConfigError, match="every"):
        ProgressBar(10, every=0)
    with pytest.raises(ft.InputTypeError, match="metric 'loss'"):
        ProgressBar(10, stream=io.StringIO()).update(1, loss="x")


# ---------------------------------------------------------------- HTML report


class ReportParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.svgs, self.polylines, self.rows, self.tags = [], [], [], set()
        self._in_tbody = False
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "svg":
            self.svgs.append(a)
        elif tag == "polyline":
            self.polylines.append(a)
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_tbody = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _report_monitor(clock, monkeypatch, epochs=8):
    fixed_resources(monkeypatch, cpu_pct=40.0, ram_used=3 * 1024**3, ram_total=8 * 1024**3)
    m = Monitor(epochs)
    for e in range(epochs):
        clock.t += 2.0
        m.log(e, 2.0, {"loss": 2.0 * 0.7**e, "accuracy": 1 - 0.5 * 0.7**e, "lr <x>": 1e-3 / (e + 1)})
    return m


def test_html_report_structure(clock, monkeypatch, tmp_path, capsys):
    m = _report_monitor(clock, monkeypatch)
    p = tmp_path / "report.html"
    m.save_html(p)
    assert not p.exists()  # floDl writes it at finish()
    m.finish()
    assert capsys.readouterr().out.splitlines()[-1] == f"  saved: {p}"
    text = p.read_text()
    parser = ReportParser()
    parser.feed(text)
    names = ["loss", "accuracy", "lr <x>"]
    assert [s["data-metric"] for s in parser.svgs] == names
    assert [pl["data-metric"] for pl in parser.polylines] == names
    for pl, metric in zip(parser.polylines, names):
        pts = [tuple(map(float, xy.split(","))) for xy in pl["points"].split()]
        assert len(pts) == 8
        xs = [x for x, _ in pts]
        assert xs == sorted(xs) and len(set(xs)) == 8
        ys = [y for _, y in pts]  # SVG y grows downwards
        if metric == "accuracy":
            assert ys == sorted(ys, reverse=True)
        else:
            assert ys == sorted(ys)
    assert len(parser.rows) == 8
    assert parser.rows[0][:5] == ["1/8", "2s", "2.0000", "0.5000", "0.0010"]
    assert parser.rows[-1][0] == "8/8" and parser.rows[-1][-2:] == ["40.0", "3.0 GB"]
    assert "16s" in text  # total time
    # self-contained: no script, no external resource
    assert not parser.tags & {"script", "link", "img", "iframe"}
    for needle in ("src=", "href=", "url(", "@import"):
        assert needle not in text


def test_html_report_single_epoch_and_nan(clock, monkeypatch, tmp_path):
    fixed_resources(monkeypatch)
    m = Monitor(5)
    m.log(0, 1.0, {"loss": float("nan"), "acc": 0.5})
    m.write_html(tmp_path / "r.html")
    parser = ReportParser()
    parser.feed((tmp_path / "r.html").read_text())
    assert [pl["points"].count(",") for pl in parser.polylines] == [0, 1]
    assert parser.rows == [["1/5", "1s", "NaN", "0.5000"]]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_rgb(path):
    """Decodes an 8-bit non-interlaced RGB/RGBA PNG (what Chromium writes) into an HxWx3 array."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + w * bpp)
    out = np.zeros((h, w * bpp), dtype=np.uint8)
    prev = np.zeros(w * bpp, dtype=np.int64)
    for r in range(h):
        f, line = raw[r, 0], raw[r, 1:].astype(np.int64)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) % 256
        elif f == 1:
            cur = line.reshape(w, bpp).cumsum(axis=0).reshape(-1) % 256
        else:
            cur = np.zeros_like(line)
            for i in range(w * bpp):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                if f == 3:
                    cur[i] = (line[i] + (a + b) // 2) % 256
                else:
                    c = prev[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur[i] = (line[i] + pred) % 256
        out[r] = cur
        prev = cur
    return out.reshape(h, w, bpp)[:, :, :3]


def test_html_report_renders_in_headless_chromium(clock, monkeypatch, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (make chromium)")
    m = _report_monitor(clock, monkeypatch)
    page = tmp_path / "report.html"
    m.write_html(page)
    shot = tmp_path / "shot.png"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--screenshot={shot}",
        "--window-size=1000,800",
        page.as_uri(),
    ]
    try:
        subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish its screenshot within 120 s")
    assert shot.exists() and shot.stat().st_size > 8_000
    if os.environ.get("FERROTORCH_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["FERROTORCH_KEEP_SCREENSHOT"])
    img = _png_rgb(shot).astype(int)
    assert img.shape == (800, 1000, 3)
    # each curve's stroke colour is on screen (anti-aliasing leaves exact pixels on the line)
    for hexcol in charts.PALETTE[:3]:
        rgb = np.array([int(hexcol[i : i + 2], 16) for i in (1, 3, 5)])
        hits = (np.abs(img - rgb).sum(axis=2) <= 30).sum()
        assert hits > 50, f"{hexcol}: {hits} pixels"
    dark = (img.sum(axis=2) < 200).sum()  # text
    assert dark > 500


def test_written_files_follow_the_umask(tmp_path):
    import os

    from ferrotorch import Monitor

    m = Monitor(2)
    m.log(0, 0.1, {"loss": 1.0})
    path = tmp_path / "log.txt"
    m.write_log(str(path))
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(path).st_mode & 0o777) == (0o666 & ~umask)
