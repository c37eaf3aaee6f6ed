"""The ``/status`` page: plain HTML and JavaScript, no build step.

It polls ``/api/v1/upstreams`` every second and shows one table per
upstream-backed output: node, address, state, in-flight flushes, flushes,
records, failures, ejections and the last error.  Rows carry
``data-node`` / ``data-state`` attributes so tests (and users' scripts) can
read the page.
"""

from __future__ import annotations

STATUS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>relaybit status</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
 h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin-top: 1.5rem; }
 table { border-collapse: collapse; min-width: 40rem; }
 th, td { border-bottom: 1px solid #ddd; padding: .3rem .7rem; text-align: left;
          white-space: nowrap; }
 td.error { white-space: normal; color: #a33; }
 .until { color: #777; font-size: .85rem; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .state { font-weight: 600; padding: .1rem .45rem; border-radius: .3rem; }
 .healthy { background: #d8f5d8; } .ejected, .unhealthy { background: #f9d3d3; }
 .standby { background: #e4e4f7; } .probing { background: #fdf0c9; } .draining { background: #eee; }
 .panic { background: #f3a8a8; }
 #updated { color: #777; font-size: .85rem; }
</style>
</head>
<body>
<h1>relaybit upstreams</h1>
<div id="updated">loading…</div>
<div id="upstreams"></div>
<script>
"use strict";
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function failures(counters) {
  const f = counters.failures;
  if (f === undefined || f === null) return 0;
  if (typeof f === "number") return f;
  return Object.values(f).reduce((a, b) => a + b, 0);
}
function clock(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString();
}
function lastError(err) {
  // the Upstream reports {kind, message, at}; older shapes were plain strings
  if (err === undefined || err === null) return "";
  if (typeof err !== "object") return String(err);
  return err.message || err.kind || "";
}
function render(data) {
  const root = document.getElementById("upstreams");
  root.replaceChildren();
  const outputs = Object.entries(data.upstreams || {});
  if (outputs.length === 0) {
    const p = document.createElement("p");
    p.textContent = "No upstream-backed output.";
    root.appendChild(p);
  }
  for (const [output, up] of outputs) {
    const h = document.createElement("h2");
    h.textContent = output + " \u2192 " + (up.name || "") + " (" + (up.balance || "") + ")"
      + (up.panic ? " PANIC" : "");
    root.appendChild(h);
    const table = document.createElement("table");
    table.dataset.output = output;
    const head = table.createTHead().insertRow();
    for (const t of ["node", "address", "state", "in flight", "flushes", "records",
                     "failures", "ejections", "last error"]) {
      const th = document.createElement("th"); th.textContent = t; head.appendChild(th);
    }
    const body = table.createTBody();
    for (const node of up.nodes || []) {
      const c = node.counters || {};
      const row = body.insertRow();
      row.dataset.node = node.name;
      row.dataset.state = node.state;
      cell(row, node.name);
      cell(row, node.address);
      const st = cell(row, "");
      const span = document.createElement("span");
      span.className = "state " + node.state;
      span.textContent = node.state;
      st.appendChild(span);
      if (node.state === "ejected" && node.ejected_until) {
        const until = document.createElement("span");
        until.className = "until";
        until.textContent = " until " + clock(node.ejected_until);
        st.appendChild(until);
      }
      if (node.standby) {
        const role = document.createElement("span");
        role.className = "state standby";
        role.textContent = "standby";
        st.appendChild(document.createTextNode(" "));
        st.appendChild(role);
      }
      cell(row, node.in_flight, "num");
      cell(row, c.flushes ?? 0, "num");
      cell(row, c.records ?? 0, "num");
      cell(row, failures(c), "num");
      cell(row, c.ejections ?? 0, "num");
      const err = cell(row, lastError(node.last_error), "error");
      const e = node.last_error;
      if (e && e.kind) err.title = e.kind + (e.at ? " at " + clock(e.at) : "");
    }
    root.appendChild(table);
  }
  document.getElementById("updated").textContent =
    "updated " + new Date().toLocaleTimeString();
  document.body.dataset.loaded = "true";
}
async function poll() {
  try {
    const r = await fetch("/api/v1/upstreams", {cache: "no-store"});
    render(await r.json());
  } catch (e) {
    document.getElementById("updated").textContent = "agent unreachable: " + e;
  }
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
"""
