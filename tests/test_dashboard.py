"""floDl's live dashboard: Monitor.serve / watch / stop, the page and its SSE stream."""

import base64
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request

import pytest

from ferrotorch import FlowBuilder, Monitor
from ferrotorch.nn import GELU, Linear

TIMEOUT = 120.0  # generous: a loaded 2-core box may be slow, but never this slow


def wait_for(cond, what, timeout=TIMEOUT):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class SSE:
    """A plain-Python Server-Sent Events client."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        self.conn.request("GET", "/events")
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("Content-Type") == "text/event-stream"
        self.buf = b""

    def next(self):
        """(event, data) of the next event, skipping keepalive comments."""
        while True:
            while b"\n\n" not in self.buf:
                chunk = self.resp.read1(65536)
                if not chunk:
                    raise EOFError("stream closed")
                self.buf += chunk
            block, self.buf = self.buf.split(b"\n\n", 1)
            fields = dict(
                line.split(": ", 1) for line in block.decode().splitlines() if not line.startswith(":")
            )
            if fields:
                return fields["event"], json.loads(fields["data"])

    def close(self):
        self.conn.close()


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, r.getheader("Content-Type"), body


def port_is_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------- server


def test_serve_chains_picks_a_free_port_and_binds_localhost():
    m = Monitor(3).serve(0)
    try:
        assert isinstance(m, Monitor)
        assert m.port > 0 and m.url == f"http://127.0.0.1:{m.port}/"
        assert m._server._httpd.server_address[0] == "127.0.0.1"
        status, ctype, body = get(m.port, "/")
        assert status == 200 and ctype.startswith("text/html")
        page = body.decode()
        assert 'new EventSource("/events")' in page
        assert "<script src" not in page and "http://" not in page.replace("http://www.w3.org", "")
        assert get(m.port, "/nope")[0] == 404
        with pytest.raises(ValueError, match="already serving"):
            m.serve(0)
    finally:
        m.finish()
    assert m.port is None and m.url is None


def test_late_joiner_gets_history_then_live_epochs_then_complete():
    m = Monitor(6).serve(0)
    port = m.port
    for e in range(3):
        m.log(e, 0.5, {"loss": 1.0 / (e + 1), "acc": float("nan") if e == 1 else 0.5})
    late = SSE(port)
    replay = [late.next() for _ in range(3)]
    assert [kind for kind, _ in replay] == ["epoch"] * 3
    assert [d["epoch"] for _, d in replay] == [1, 2, 3]  # floDl's 1-based epoch
    assert replay[0][1]["total"] == 6 and replay[0][1]["duration"] == 0.5
    assert replay[0][1]["metrics"] == {"loss": 1.0, "acc": 0.5}
    assert replay[1][1]["metrics"]["acc"] == "NaN"  # JSON has no NaN
    assert "eta" in replay[2][1]
    m.log(3, 0.25, [("loss", 0.2), ("acc", 0.75)])
    kind, live = late.next()
    assert kind == "epoch" and live["epoch"] == 4 and live["metrics"] == {"loss": 0.2, "acc": 0.75}
    # a second client joining now sees all four
    later = SSE(port)
    assert [later.next()[1]["epoch"] for _ in range(4)] == [1, 2, 3, 4]
    status, _, body = get(port, "/api/history")
    assert status == 200 and [e["epoch"] for e in json.loads(body)] == [1, 2, 3, 4]
    m.log(5, 0.1, {"loss": 0.1, "acc": 1.0})  # the last epoch: no ETA
    assert "eta" not in late.next()[1]
    m.finish()
    assert late.next() == ("complete", {})
    later.next()
    assert later.next() == ("complete", {})
    with pytest.raises(EOFError):
        late.next()
    late.close()
    later.close()
    wait_for(lambda: port_is_free(port), "the port to be released")


def test_serve_after_logging_replays_earlier_epochs_and_context_manager_stops():
    with Monitor(4) as m:
        m.log(0, 1.0, {"loss": 3.0})
        assert m.serve(0) is m
        port = m.port
        c = SSE(port)
        kind, first = c.next()
        assert kind == "epoch" and first["epoch"] == 1 and first["metrics"] == {"loss": 3.0}
    assert m.port is None  # leaving the block stopped the server
    assert c.next() == ("complete", {})
    c.close()
    wait_for(lambda: port_is_free(port), "the port to be released")
    m.stop()  # idempotent


def test_serve_rejects_bad_arguments_and_busy_ports():
    with pytest.raises(TypeError):
        Monitor(2).serve("8050")
    with pytest.raises(ValueError, match="0..65535"):
        Monitor(2).serve(70000)
    m = Monitor(2).serve(0)
    try:
        import ferrotorch as ft

        with pytest.raises(ft.FileError, match=f"cannot listen on 127.0.0.1:{m.port}"):
            Monitor(2).serve(m.port)
    finally:
        m.stop()


def test_watch_puts_the_graph_on_the_page():
    g = FlowBuilder.from_(Linear(2, 4)).through(GELU()).through(Linear(4, 1)).build()
    m = Monitor(2).watch(g).serve(0)
    try:
        page = get(m.port, "/")[2].decode()
        assert f"graph {g.short_hash()}" in page
        status, _, svg = get(m.port, "/graph.svg")
        assert status == 200
        if shutil.which("dot"):
            assert svg.lstrip().startswith(b"<svg") and b"linear_1" in svg
            assert '<div id="graph"><svg' in page
        else:
            assert b"linear_1" in svg and "<pre>" in page
    finally:
        m.stop()


# ---------------------------------------------------------------- in Chromium

TRAIN = textwrap.dedent(
    """
    import os, sys, time, torch
    import ferrotorch as ft
    from ferrotorch import FlowBuilder, Monitor, Trainer
    from ferrotorch.callbacks import LambdaCallback
    from ferrotorch.nn import GELU, Linear
    from ferrotorch.optim import Adam

    gate, epochs = sys.argv[1], int(sys.argv[2])
    ft.manual_seed(0)
    model = FlowBuilder.from_(Linear(2, 8)).through(GELU()).through(Linear(8, 1)).build()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    data = [(x[i : i + 16], x[i : i + 16].sum(1, keepdim=True)) for i in range(0, 64, 16)]
    monitor = Monitor(epochs).watch(model).serve(0)
    print("URL", monitor.url, flush=True)
    started = {}

    def begin(epoch, trainer):
        started[epoch] = time.perf_counter()

    def end(epoch, logs, trainer):
        time.sleep(0.05)  # a few seconds in all
        done = len(monitor.history())  # 0-based, whatever base fit counts epochs in
        monitor.log(done, time.perf_counter() - started.get(epoch, time.perf_counter()), logs)
        if done == 2:  # hold here until the test has the page open
            print("HOLD", flush=True)
            while not os.path.exists(gate):
                time.sleep(0.02)

    Trainer(model, Adam(model.parameters(), 0.01), loss="mse").fit(
        data, epochs=epochs, callbacks=[LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)]
    )
    monitor.finish()
    """
)


class CDP:
    """Just enough of the Chrome DevTools Protocol (a WebSocket client on a socket)."""

    def __init__(self, ws_url):
        u = urllib.parse.urlparse(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        self.next_id = 0

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("devtools closed")
            out += chunk
        return out

    def _recv(self):
        data = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            data += self._read(n)
            if b0 & 0x80:
                return data.decode()

    def call(self, method, **params):
        self.next_id += 1
        payload = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (
            bytes([0x80 | n])
            if n < 126
            else bytes([0x80 | 126]) + struct.pack(">H", n)
            if n < 65536
            else bytes([0x80 | 127]) + struct.pack(">Q", n)
        )
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while True:
            msg = json.loads(self._recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]

    def eval(self, expr):
        return self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")


PAGE_STATE = """JSON.stringify(window.ferrotorchDashboard ? {
  events: window.ferrotorchDashboard.events, complete: window.ferrotorchDashboard.complete,
  loadedAt: window.ferrotorchDashboard.loadedAt,
  rows: document.querySelectorAll('#epochs tbody tr').length,
  charts: [...document.querySelectorAll('#charts svg')].map(s => s.dataset.metric),
  lines: document.querySelectorAll('#charts polyline').length,
  status: document.getElementById('status').textContent,
  graph: !!document.querySelector('#graph svg, #graph pre')} : null)"""


def test_dashboard_updates_live_in_headless_chromium(tmp_path):
    exe = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    if exe is None:
        pytest.skip("chromium is not installed (make chromium)")
    epochs, gate = 8, tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), FLODL_VERBOSITY="1")
    train = subprocess.Popen(
        [sys.executable, "-c", TRAIN, str(gate), str(epochs)], stdout=subprocess.PIPE, text=True, env=env
    )
    profile = tmp_path / "profile"
    browser = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = None
        for line in train.stdout:  # the URL first, then HOLD once 3 epochs are logged
            if line.startswith("URL "):
                url = line.split()[1]
            if line.startswith("HOLD"):
                break
        assert url, "the training script printed no dashboard URL"
        active = profile / "DevToolsActivePort"
        wait_for(lambda: active.exists() and active.read_text().strip(), "chromium's DevTools port")
        port = int(active.read_text().split()[0])
        pages = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT).read()
        )
        cdp = CDP(next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"])
        cdp.call("Page.navigate", url=url)

        def state():
            s = cdp.eval(PAGE_STATE)
            return json.loads(s) if s else None

        # mid-training: the three logged epochs are replayed to the late page
        first = wait_for(lambda: (s := state()) and s["events"] >= 3 and s, "the replayed history")
        assert first["events"] == 3 and first["rows"] == 3 and not first["complete"]
        assert "loss" in first["charts"] and first["lines"] == len(first["charts"])  # a curve per metric
        assert "epoch 3/8" in first["status"] and "ETA" in first["status"]
        assert first["graph"]
        gate.touch()  # training resumes; new epochs must reach the open page
        last = wait_for(lambda: (s := state()) and s["complete"] and s, "the page to see training complete")
        assert last["loadedAt"] == first["loadedAt"]  # the same page, never reloaded
        assert last["events"] == epochs and last["rows"] == epochs
        assert "epoch 8/8" in last["status"] and "training complete" in last["status"]
        assert train.wait(timeout=TIMEOUT) == 0
    finally:
        for p in (train, browser):
            if p.poll() is None:
                p.terminate()  # Chromium shuts its helper processes down on SIGTERM
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
