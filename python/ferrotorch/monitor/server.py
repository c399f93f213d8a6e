"""floDl's live training dashboard, served from the training process.

:class:`DashboardServer` is what ``Monitor.serve`` starts: a standard-library
``ThreadingHTTPServer`` on a daemon thread. ``GET /`` is one self-contained
page (HTML, CSS and JS inline, no CDN); ``GET /events`` is a Server-Sent
Events stream of epoch records as JSON (``event: epoch``), each new client
first getting the whole history replayed, then ``event: complete`` when the
monitor finishes; ``GET /graph.svg`` is the watched graph; ``GET
/api/history`` is the history as a JSON list.
"""

from __future__ import annotations

import html
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

# a quiet stream still sends a comment this often, so dead clients are noticed
_KEEPALIVE_SECS = 10.0


def _finite(v: Any) -> Any:
    """JSON has no NaN/Infinity: non-finite floats travel as strings JS's Number() reads."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def epoch_json(record: Any, total: int, eta: Optional[float]) -> str:
    """floDl's epoch event: epoch (1-based), total, duration, eta (absent on the last), metrics, resources."""
    out: Dict[str, Any] = {
        "epoch": record.epoch + 1,
        "total": total,
        "duration": round(record.duration_secs, 4),
    }
    if eta is not None and math.isfinite(eta):
        out["eta"] = round(eta, 1)
    out["metrics"] = {k: _finite(v) for k, v in record.metrics.items()}
    out["resources"] = {k: _finite(v) for k, v in record.resources.items() if v is not None}
    return json.dumps(out, separators=(",", ":"))


class _State:
    """What the handler threads share; one condition guards it all."""

    def __init__(self, title: str) -> None:
        self.cond = threading.Condition()
        self.events: List[str] = []
        self.svg: Optional[str] = None
        self.title = title
        self.subtitle = ""
        self.closed = False


class _Handler(BaseHTTPRequestHandler):
    server_version = "ferrotorch-dashboard"
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> _State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # training output stays clean

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, "text/html; charset=utf-8", render_page(self.state).encode("utf-8"))
        elif path == "/events":
            self._stream()
        elif path == "/graph.svg":
            with self.state.cond:
                svg = self.state.svg
            if svg is None:
                self._send(404, "text/plain", b"no graph watched")
            else:
                self._send(200, "image/svg+xml", svg.encode("utf-8"))
        elif path == "/api/history":
            with self.state.cond:
                body = "[" + ",".join(self.state.events) + "]"
            self._send(200, "application/json", body.encode("utf-8"))
        else:
            self._send(404, "text/plain", b"not found")

    def _stream(self) -> None:
        """The history first, then each new epoch as it is logged; ends on close."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent = 0
        st = self.state
        try:
            while True:
                with st.cond:
                    if sent == len(st.events) and not st.closed:
                        st.cond.wait(_KEEPALIVE_SECS)
                    new = st.events[sent:]
                    closed = st.closed
                sent += len(new)
                chunk = "".join(f"event: epoch\ndata: {e}\n\n" for e in new)
                if closed:
                    chunk += "event: complete\ndata: {}\n\n"
                self.wfile.write((chunk or ": keepalive\n\n").encode("utf-8"))
                self.wfile.flush()
                if closed:
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            return  # the client went away


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # a restarted run can take the same port at once
    daemon_threads = True  # an open stream never keeps the process alive

    def __init__(self, addr: Any, state: _State) -> None:
        self.state = state
        super().__init__(addr, _Handler)


class DashboardServer:
    """The HTTP server behind ``Monitor.serve``; serves until :meth:`close`."""

    def __init__(self, host: str, port: int, title: str) -> None:
        self.state = _State(title)
        self._httpd = _Server((host, port), self.state)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="ferrotorch-dashboard",
            daemon=True,
        )
        self._thread.start()

    def push(self, event_json: str) -> None:
        """Appends one epoch record and wakes every open stream."""
        with self.state.cond:
            self.state.events.append(event_json)
            self.state.cond.notify_all()

    def set_svg(self, svg: Optional[str], subtitle: str = "") -> None:
        with self.state.cond:
            self.state.svg = svg
            if subtitle:
                self.state.subtitle = subtitle

    def close(self) -> None:
        """Ends every stream with ``complete``, stops serving and frees the port."""
        with self.state.cond:
            if self.state.closed:
                return
            self.state.closed = True
            self.state.cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def render_page(st: _State) -> str:
    with st.cond:
        svg, title, subtitle = st.svg, st.title, st.subtitle
    graph = f'<h2>Graph</h2><div id="graph">{svg}</div>' if svg else ""
    return (
        _PAGE.replace("__TITLE__", html.escape(title))
        .replace("__SUBTITLE__", html.escape(subtitle))
        .replace("__GRAPH__", graph)
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1f2937;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#6b7280;font-size:13px;margin-bottom:12px}
#status b{color:#111827}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{border:1px solid #e5e7eb;border-radius:6px;padding:8px;background:#fafafa}
svg text{font-size:11px;fill:#374151;font-family:inherit}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e5e7eb;padding:3px 10px;text-align:right}th{background:#f3f4f6}
#graph svg{max-width:100%;height:auto}
</style></head><body>
<h1>__TITLE__</h1><div class="meta">__SUBTITLE__</div>
<div class="meta" id="status">waiting for the first epoch&hellip;</div>
<div class="meta" id="resources"></div>
<h2>Curves</h2><div class="charts" id="charts"></div>
<h2>Epochs</h2><table id="epochs"><thead></thead><tbody></tbody></table>
__GRAPH__
<script>
"use strict";
const PALETTE=["#2563eb","#dc2626","#059669","#d97706","#7c3aed","#0891b2","#db2777","#4b5563"];
const epochs=[];
window.ferrotorchDashboard={events:0,complete:false,loadedAt:Date.now(),epochs:epochs};
function fmtNum(v){if(typeof v!=="number")v=Number(v);if(!isFinite(v))return String(v);
 if(v===0)return"0";const a=Math.abs(v);if(a<1e-3)return v.toExponential(2);if(a<100)return v.toFixed(4);return v.toFixed(2);}
function fmtDur(s){if(s<1)return Math.round(s*1000)+"ms";if(s<60)return(Math.round(s*10)/10)+"s";
 if(s<3600)return Math.floor(s/60)+"m "+Math.round(s%60)+"s";return Math.floor(s/3600)+"h "+String(Math.floor(s%3600/60)).padStart(2,"0")+"m";}
function fmtBytes(b){const u=["B","KB","MB","GB","TB"];let i=0;while(b>=1024&&i<u.length-1){b/=1024;i++;}return b.toFixed(1)+" "+u[i];}
function el(tag,attrs,text){const e=document.createElementNS(tag==="svg"||attrs&&attrs.svg?"http://www.w3.org/2000/svg":"http://www.w3.org/1999/xhtml",tag);
 for(const k in attrs||{})if(k!=="svg")e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e;}
function names(){const s=[];for(const r of epochs)for(const k in r.metrics)if(!s.includes(k))s.push(k);return s;}
function chart(name,color){
 const W=420,H=220,L=56,R=12,T=24,B=32;const pts=epochs.filter(r=>name in r.metrics&&isFinite(Number(r.metrics[name])))
  .map(r=>[r.epoch,Number(r.metrics[name])]);
 const svg=el("svg",{svg:1,width:W,height:H,viewBox:`0 0 ${W} ${H}`,"data-metric":name});
 svg.appendChild(el("text",{svg:1,x:L,y:16,"font-weight":"600"},name));
 if(!pts.length)return svg;
 let x0=pts[0][0],x1=pts[pts.length-1][0];if(x1===x0)x1=x0+1;
 let y0=Math.min(...pts.map(p=>p[1])),y1=Math.max(...pts.map(p=>p[1]));if(y1===y0){y0-=0.5;y1+=0.5;}
 const sx=x=>L+(x-x0)/(x1-x0)*(W-L-R),sy=y=>H-B-(y-y0)/(y1-y0)*(H-T-B);
 for(let i=0;i<=4;i++){const y=y0+(y1-y0)*i/4;svg.appendChild(el("line",{svg:1,x1:L,x2:W-R,y1:sy(y),y2:sy(y),stroke:"#e5e7eb"}));
  svg.appendChild(el("text",{svg:1,x:L-4,y:sy(y)+4,"text-anchor":"end"},fmtNum(y)));}
 svg.appendChild(el("text",{svg:1,x:L,y:H-10},"epoch "+x0));svg.appendChild(el("text",{svg:1,x:W-R,y:H-10,"text-anchor":"end"},"epoch "+x1));
 svg.appendChild(el("polyline",{svg:1,fill:"none",stroke:color,"stroke-width":2,points:pts.map(p=>sx(p[0])+","+sy(p[1])).join(" ")}));
 return svg;}
function render(){
 const last=epochs[epochs.length-1];const ns=names();
 let s=`epoch <b>${last.epoch}/${last.total}</b> &middot; last ${fmtDur(last.duration)}`;
 if(last.eta!==undefined)s+=` &middot; ETA <b>${fmtDur(last.eta)}</b>`;
 if(window.ferrotorchDashboard.complete)s+=" &middot; <b>training complete</b>";
 document.getElementById("status").innerHTML=s;
 const r=last.resources||{},parts=[];
 if(r.cpu_pct!==undefined)parts.push("CPU "+Number(r.cpu_pct).toFixed(1)+"%");
 if(r.ram_used!==undefined)parts.push("RAM "+fmtBytes(r.ram_used)+(r.ram_total?" / "+fmtBytes(r.ram_total):""));
 if(r.gpu_pct!==undefined)parts.push("GPU "+Number(r.gpu_pct).toFixed(0)+"%");
 if(r.vram_alloc!==undefined)parts.push("VRAM "+fmtBytes(r.vram_alloc)+(r.vram_total?" / "+fmtBytes(r.vram_total):""));
 document.getElementById("resources").textContent=parts.length?"resources: "+parts.join(" · "):"";
 const charts=document.getElementById("charts");charts.replaceChildren();
 ns.forEach((n,i)=>{const d=el("div",{class:"chart"});d.appendChild(chart(n,PALETTE[i%PALETTE.length]));charts.appendChild(d);});
 const head=document.querySelector("#epochs thead"),body=document.querySelector("#epochs tbody");
 const hr=el("tr");["epoch","time",...ns].forEach(h=>hr.appendChild(el("th",{},h)));head.replaceChildren(hr);
 body.replaceChildren();for(const e of epochs){const tr=el("tr",{"data-epoch":e.epoch});
  [e.epoch+"/"+e.total,fmtDur(e.duration),...ns.map(n=>n in e.metrics?fmtNum(e.metrics[n]):"")].forEach(c=>tr.appendChild(el("td",{},c)));body.appendChild(tr);}}
const source=new EventSource("/events");
source.addEventListener("epoch",ev=>{epochs.push(JSON.parse(ev.data));window.ferrotorchDashboard.events++;render();});
source.addEventListener("complete",()=>{window.ferrotorchDashboard.complete=true;source.close();if(epochs.length)render();});
</script></body></html>
"""
