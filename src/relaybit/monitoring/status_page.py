"""The ``/status`` page: plain HTML, CSS, inline SVG and JavaScript, no build step.

Nothing is fetched but the agent's own API, so the page works offline. Every
second it reads ``/api/v1/upstreams``, ``/api/v1/metrics``, ``/api/v1/history``
and ``/api/v1/storage`` (and ``/api/v1/pipeline`` every ten seconds) and draws:

- a summary (records/s in and out, nodes healthy, chunks pending, dropped);
- the pipeline as a picture: inputs -> filters -> outputs -> upstream nodes,
  with live records/s and each node in the colour of its state;
- per upstream-backed output: records/s per node over the last minutes (a
  line chart), each node's state over the same minutes (a band), and the
  node table (state, in flight, flushes, records, failures, ejections, last
  error);
- storage and backlog (chunks pending, up and down, memory against its limit,
  each output's queue);
- the recent state changes (ejected, probing, healthy ...) as a timeline.

Hooks for tests and users' scripts: table rows carry ``data-node`` /
``data-state``, the picture's node boxes ``data-pnode`` / ``data-state``, the
timeline's entries ``data-node`` / ``data-new``, and ``body[data-loaded]``.
"""

from __future__ import annotations

STATUS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>relaybit status</title>
<style>
 :root { --ok: #2e9e44; --bad: #d64545; --warn: #d99a00; --standby: #5a67d8;
         --muted: #6b7280; --line: #e5e7eb; --card: #fff; --bg: #f3f4f6; --ink: #111827; }
 * { box-sizing: border-box; }
 body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
        background: var(--bg); color: var(--ink); font-size: 14px; }
 header { background: #1f2937; color: #f9fafb; padding: .7rem 1.5rem; display: flex;
          align-items: baseline; gap: 1.2rem; flex-wrap: wrap; }
 header h1 { font-size: 1.15rem; margin: 0; letter-spacing: .02em; }
 header .meta { color: #d1d5db; font-size: .85rem; }
 #health { font-weight: 600; padding: .1rem .55rem; border-radius: 1rem; font-size: .8rem; }
 #health.ok { background: var(--ok); } #health.error { background: var(--bad); }
 #updated { margin-left: auto; color: #9ca3af; font-size: .8rem; }
 #updated.down { color: #fca5a5; font-weight: 600; }
 main { padding: 1rem 1.5rem 2rem; display: grid; gap: 1rem; max-width: 1400px; }
 .card { background: var(--card); border-radius: .6rem; padding: .9rem 1.1rem;
         box-shadow: 0 1px 2px rgba(0,0,0,.06), 0 1px 8px rgba(0,0,0,.04); }
 .card h2 { font-size: .95rem; margin: 0 0 .6rem; font-weight: 600; }
 .card h2 .sub { color: var(--muted); font-weight: 400; margin-left: .4rem; }
 .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 1rem; }
 .tile { background: var(--card); border-radius: .6rem; padding: .7rem 1rem;
         box-shadow: 0 1px 2px rgba(0,0,0,.06); }
 .tile .v { font-size: 1.55rem; font-weight: 650; font-variant-numeric: tabular-nums; }
 .tile .k { color: var(--muted); font-size: .8rem; }
 .tile.bad .v { color: var(--bad); }
 .row2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; }
 @media (max-width: 1000px) { .row2 { grid-template-columns: 1fr; } }
 svg text { font-family: inherit; }
 table { border-collapse: collapse; width: 100%; }
 th, td { border-bottom: 1px solid var(--line); padding: .3rem .6rem; text-align: left;
          white-space: nowrap; }
 th { color: var(--muted); font-weight: 500; font-size: .8rem; }
 td.error { white-space: normal; color: #a33; max-width: 28rem; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .until { color: var(--muted); font-size: .8rem; }
 .state { font-weight: 600; padding: .05rem .45rem; border-radius: .3rem; font-size: .8rem; }
 .healthy { background: #d8f5d8; color: #14532d; }
 .ejected, .unhealthy { background: #f9d3d3; color: #7f1d1d; }
 .standby { background: #e4e4f7; color: #312e81; } .probing { background: #fdf0c9; color: #713f12; }
 .draining { background: #eee; color: #444; } .panic { background: #f3a8a8; color: #450a0a; }
 .legend { display: flex; gap: 1rem; flex-wrap: wrap; font-size: .8rem; color: var(--muted);
           margin: .2rem 0 .4rem; }
 .legend i { display: inline-block; width: .8rem; height: .25rem; border-radius: .1rem;
             vertical-align: middle; margin-right: .3rem; }
 .stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); gap: .5rem .8rem;
          margin-bottom: .6rem; }
 .stats div b { display: block; font-size: 1.1rem; font-variant-numeric: tabular-nums; }
 .stats div span { color: var(--muted); font-size: .78rem; }
 .bar { height: .55rem; background: var(--line); border-radius: .3rem; overflow: hidden; margin: .2rem 0 .7rem; }
 .bar > div { height: 100%; background: var(--ok); }
 ol.timeline { list-style: none; margin: 0; padding: 0 0 0 .3rem; max-height: 22rem; overflow: auto; }
 ol.timeline li { border-left: 2px solid var(--line); padding: .15rem 0 .55rem .9rem; position: relative; }
 ol.timeline li::before { content: ""; position: absolute; left: -.38rem; top: .35rem; width: .6rem;
                          height: .6rem; border-radius: 50%; background: var(--dot, var(--muted)); }
 ol.timeline .t { color: var(--muted); font-size: .78rem; font-variant-numeric: tabular-nums; }
 ol.timeline .why { color: var(--muted); font-size: .8rem; display: block; white-space: normal; }
 .empty { color: var(--muted); }
 .flow { stroke-dasharray: 6 5; animation: flow 1s linear infinite; }
 @keyframes flow { to { stroke-dashoffset: -11; } }
</style>
</head>
<body>
<header>
  <h1>relaybit</h1>
  <span class="meta" id="version"></span>
  <span class="meta" id="uptime"></span>
  <span id="health"></span>
  <span id="updated">loading…</span>
</header>
<main>
  <section class="tiles" id="tiles"></section>
  <section class="card"><h2>Pipeline<span class="sub">records/s now</span></h2>
    <div id="pipeline"></div></section>
  <div id="upstreams"></div>
  <div class="row2">
    <section class="card"><h2>Storage and backlog</h2><div id="storage"></div></section>
    <section class="card"><h2>State changes<span class="sub">newest first</span></h2>
      <ol class="timeline" id="timeline"></ol></section>
  </div>
</main>
<script>
"use strict";
const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16"];
const STATE_COLOR = {healthy: "#2e9e44", ejected: "#d64545", unhealthy: "#d64545", probing: "#d99a00",
                     standby: "#5a67d8", draining: "#9ca3af", panic: "#7f1d1d"};
let pipeline = null, pipelineAt = 0, previous = null;

function el(tag, attrs, parent, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.setAttribute("class", v);
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e.setAttribute(k, v);
  }
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (parent) parent.appendChild(e);
  return e;
}
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
function clock(epoch) { return new Date(epoch * 1000).toLocaleTimeString(); }
function lastError(err) {
  // the Upstream reports {kind, message, at}; older shapes were plain strings
  if (err === undefined || err === null) return "";
  if (typeof err !== "object") return String(err);
  return err.message || err.kind || "";
}
function human(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "\u2013";
  unit = unit || "";
  for (const [t, s] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (Math.abs(v) >= t) return (v / t).toFixed(1) + s + unit;
  }
  return (Number.isInteger(v) ? v : v.toFixed(1)) + unit;
}
function last(list) {
  if (!list) return null;
  for (let i = list.length - 1; i >= 0; i--) if (list[i] !== null) return list[i];
  return null;
}
function globMatch(pattern, tag) {
  if (!pattern) return false;
  const re = "^" + pattern.split("*").map(s => s.replace(/[.+?^${}()|[\\]\\\\]/g, "\\\\$&")).join(".*") + "$";
  return new RegExp(re).test(tag);
}
function routes(plugin, tag) {
  if (plugin.match_regex) { try { return new RegExp(plugin.match_regex).test(tag); } catch (e) { return false; } }
  return globMatch(plugin.match, tag);
}
async function getJSON(path) {
  const r = await fetch(path, {cache: "no-store"});
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

// ------------------------------------------------------------------ rates
function rates(d) {
  // records/s now: the agent's history (sampled each second), else two readings here
  const h = d.history, out = {input: {}, output: {}, node: {}};
  if (h) {
    for (const [n, s] of Object.entries(h.inputs || {})) out.input[n] = last(s.records_per_sec);
    for (const [n, s] of Object.entries(h.outputs || {})) out.output[n] = last(s.records_per_sec);
    for (const [o, nodes] of Object.entries(h.nodes || {}))
      for (const [n, s] of Object.entries(nodes)) out.node[o + "/" + n] = last(s);
  } else if (previous) {
    const dt = (d.at - previous.at) / 1000;
    for (const [n, v] of Object.entries(d.metrics.input || {}))
      out.input[n] = (v.records - ((previous.metrics.input || {})[n] || {}).records) / dt;
    for (const [n, v] of Object.entries(d.metrics.output || {}))
      out.output[n] = (v.proc_records - ((previous.metrics.output || {})[n] || {}).proc_records) / dt;
  }
  return out;
}

// ------------------------------------------------------------------ summary tiles
function renderTiles(d, r) {
  const root = document.getElementById("tiles");
  root.replaceChildren();
  const sum = o => Object.values(o).reduce((a, b) => a + (b || 0), 0);
  let nodes = 0, healthy = 0;
  for (const up of Object.values(d.ups.upstreams || {}))
    for (const n of up.nodes || []) { nodes++; if (n.state === "healthy") healthy++; }
  const dropped = Object.values(d.metrics.output || {}).reduce((a, o) => a + (o.dropped_records || 0), 0);
  const st = (d.storage && d.storage.relaybit) || {};
  const tiles = [
    ["records/s in", human(sum(r.input)), false],
    ["records/s out", human(sum(r.output)), false],
    ["nodes healthy", nodes ? healthy + " / " + nodes : "\u2013", nodes > 0 && healthy < nodes],
    ["chunks pending", st.pending_chunks ?? "\u2013", false],
    ["records dropped", human(dropped), dropped > 0],
  ];
  for (const [k, v, bad] of tiles) {
    const t = el("div", {class: "tile" + (bad ? " bad" : "")}, root);
    el("div", {class: "v"}, t, v);
    el("div", {class: "k"}, t, k);
  }
}

// ------------------------------------------------------------------ pipeline picture
function renderPipeline(d, r) {
  const root = document.getElementById("pipeline");
  root.replaceChildren();
  const p = d.pipeline || {inputs: Object.keys(d.metrics.input || {}).map(n => ({name: n})),
                           filters: [], outputs: Object.keys(d.metrics.output || {}).map(n => ({name: n}))};
  const ups = d.ups.upstreams || {};
  const nodes = [];
  for (const o of p.outputs) for (const n of ((ups[o.name] || {}).nodes || [])) nodes.push({output: o.name, node: n});
  const cols = [p.inputs, p.filters, p.outputs, nodes];
  const W = 190, H = 46, GAP = 14, COLW = 250, TOP = 26;
  const rows = Math.max(1, ...cols.map(c => c.length));
  const height = TOP + rows * (H + GAP);
  const svg = el("svg:svg", {viewBox: `0 0 ${COLW * 3 + W + 20} ${height}`, width: "100%",
                             role: "img", "aria-label": "pipeline"}, root);
  ["inputs", "filters", "outputs", "upstream nodes"].forEach((t, i) =>
    el("svg:text", {x: 10 + i * COLW, y: 14, fill: "#6b7280", "font-size": 12}, svg, t));
  const pos = (col, i) => {
    const n = cols[col].length, offset = (rows - n) * (H + GAP) / 2;
    return {x: 10 + col * COLW, y: TOP + offset + i * (H + GAP)};
  };
  const edges = el("svg:g", {}, svg);
  const edge = (a, b, active) => {
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
    el("svg:path", {d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, fill: "none",
                    stroke: active ? "#60a5fa" : "#d1d5db", "stroke-width": active ? 2 : 1.5,
                    class: active ? "flow" : ""}, edges);
  };
  const box = (col, i, title, sub, color, attrs) => {
    const {x, y} = pos(col, i);
    const g = el("svg:g", attrs || {}, svg);
    el("svg:rect", {x, y, width: W, height: H, rx: 8, fill: "#fff", stroke: color || "#cbd5e1",
                    "stroke-width": color ? 2.5 : 1.2}, g);
    if (color) el("svg:rect", {x, y, width: 6, height: H, rx: 3, fill: color}, g);
    el("svg:text", {x: x + 14, y: y + 19, "font-size": 13, "font-weight": 600, fill: "#111827"}, g,
       title.length > 24 ? title.slice(0, 23) + "…" : title);
    el("svg:text", {x: x + 14, y: y + 36, "font-size": 11.5, fill: "#6b7280"}, g, sub);
  };
  const tagOf = i => i.tag || i.name;
  p.inputs.forEach((inp, i) => {
    box(0, i, inp.name, human(r.input[inp.name]) + " rec/s" + (inp.tag ? "  ·  tag " + inp.tag : ""),
        null, {"data-pinput": inp.name});
    let filtered = false;
    p.filters.forEach((f, j) => { if (routes(f, tagOf(inp))) { filtered = true;
      edge(pos(0, i), pos(1, j), (r.input[inp.name] || 0) > 0); } });
    p.outputs.forEach((o, k) => { if (!filtered && routes(o, tagOf(inp)))
      edge(pos(0, i), pos(2, k), (r.input[inp.name] || 0) > 0); });
  });
  p.filters.forEach((f, j) => {
    box(1, j, f.name, "match " + (f.match_regex ? "/" + f.match_regex + "/" : (f.match || "\u2013")), null,
        {"data-pfilter": f.name});
    p.outputs.forEach((o, k) => {
      if (p.inputs.some(inp => routes(f, tagOf(inp)) && routes(o, tagOf(inp))))
        edge(pos(1, j), pos(2, k), (r.output[o.name] || 0) > 0);
    });
  });
  p.outputs.forEach((o, k) => {
    const m = (d.metrics.output || {})[o.name] || {};
    let sub = human(r.output[o.name]) + " rec/s";
    if (m.errors) sub += "  ·  " + m.errors + " errors";
    if (m.dropped_records) sub += "  ·  " + m.dropped_records + " dropped";
    box(2, k, o.name, sub, m.dropped_records ? STATE_COLOR.ejected : null, {"data-poutput": o.name});
  });
  nodes.forEach((n, i) => {
    const k = p.outputs.findIndex(o => o.name === n.output);
    const rate = r.node[n.output + "/" + n.node.name];
    if (k >= 0) edge(pos(2, k), pos(3, i), n.node.state === "healthy" && (rate || 0) > 0);
    box(3, i, n.node.name, n.node.state + "  ·  " + human(rate) + " rec/s",
        STATE_COLOR[n.node.state] || "#9ca3af", {"data-pnode": n.node.name, "data-state": n.node.state});
  });
}

// ------------------------------------------------------------------ per-upstream chart, bands, table
function chart(parent, output, d) {
  const h = d.history;
  if (!h || !h.times || h.times.length < 2) {
    el("p", {class: "empty"}, parent, "collecting records/s (one sample a second)…");
    return;
  }
  const series = (h.nodes || {})[output] || {};
  const names = Object.keys(series);
  // at least a minute wide, at most what the agent keeps (5 minutes): young agents
  // grow from the right instead of stretching a few seconds across the chart
  const t1 = h.times[h.times.length - 1], span = Math.max(60, t1 - h.times[0]), t0 = t1 - span;
  let max = 1;
  for (const s of Object.values(series)) for (const v of s) if (v !== null && v > max) max = v;
  max = niceMax(max);
  const W = 900, H = 170, L = 46, R = 10, T = 8, B = 20;
  const legend = el("div", {class: "legend"}, parent);
  names.forEach((n, i) => { const s = el("span", {}, legend); el("i", {style: "background:" + PALETTE[i % PALETTE.length]}, s);
                            s.appendChild(document.createTextNode(n)); });
  const svg = el("svg:svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", "data-chart": output,
                             role: "img", "aria-label": "records per second per node"}, parent);
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * i / 4;
    el("svg:line", {x1: L, x2: W - R, y1: y, y2: y, stroke: "#eef0f3"}, svg);
    el("svg:text", {x: L - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7280"}, svg,
       human(max * (4 - i) / 4));
  }
  const xOf = t => L + (W - L - R) * (t - t0) / span;
  const yOf = v => T + (H - T - B) * (1 - v / max);
  el("svg:text", {x: L, y: H - 4, "font-size": 11, fill: "#6b7280"}, svg,
     span < 120 ? "-" + Math.round(span) + " s" : "-" + Math.round(span / 6) / 10 + " min");
  el("svg:text", {x: W - R, y: H - 4, "font-size": 11, fill: "#6b7280", "text-anchor": "end"}, svg, "now · records/s");
  names.forEach((n, i) => {
    const pts = [];
    series[n].forEach((v, j) => { if (v !== null) pts.push(xOf(h.times[j]).toFixed(1) + "," + yOf(v).toFixed(1)); });
    if (!pts.length) return;
    const color = PALETTE[i % PALETTE.length];
    el("svg:polyline", {points: pts.join(" "), fill: "none", stroke: color,
                        "stroke-width": 2, "stroke-linejoin": "round", "data-series": n}, svg);
    const [x, y] = pts[pts.length - 1].split(",");
    el("svg:circle", {cx: x, cy: y, r: 3.5, fill: color}, svg);
  });
  bands(parent, output, d, names, Math.max(t0, h.times[0]), t1, xOf, W);
}
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
function bands(parent, output, d, names, t0, t1, xOf, W) {
  // each node's state over the window, from the recent state changes
  const events = ((d.history && d.history.events) || []).filter(e => e.output === output);
  const nodes = ((d.ups.upstreams[output] || {}).nodes || []);
  const rowH = 16, svg = el("svg:svg", {viewBox: `0 0 ${W} ${nodes.length * rowH + 4}`, width: "100%",
                                         "data-bands": output}, parent);
  nodes.forEach((n, i) => {
    const mine = events.filter(e => e.node === n.name).sort((a, b) => a.at - b.at);
    const inWindow = mine.filter(e => e.at >= t0);
    const before = mine.filter(e => e.at < t0);
    let state = before.length ? before[before.length - 1].new : (inWindow.length ? inWindow[0].old : n.state);
    let from = t0;
    const y = 2 + i * rowH;
    el("svg:text", {x: 40, y: y + 11, "text-anchor": "end", "font-size": 10.5, fill: "#6b7280"}, svg,
       n.name.length > 7 ? n.name.slice(0, 6) + "…" : n.name);
    const seg = (a, b, s) => el("svg:rect", {x: xOf(a), y, width: Math.max(1, xOf(b) - xOf(a)), height: rowH - 5,
                                             fill: STATE_COLOR[s] || "#d1d5db", opacity: 0.85}, svg);
    for (const e of inWindow) { seg(from, e.at, state); state = e.new; from = e.at; }
    seg(from, t1, n.state || state);
  });
}
function renderUpstreams(d) {
  const root = document.getElementById("upstreams");
  root.replaceChildren();
  const outputs = Object.entries(d.ups.upstreams || {});
  if (outputs.length === 0) {
    const c = el("section", {class: "card"}, root);
    el("p", {class: "empty"}, c, "No upstream-backed output.");
  }
  for (const [output, up] of outputs) {
    const card = el("section", {class: "card", style: "margin-bottom:1rem"}, root);
    const h = el("h2", {}, card, output + " \\u2192 " + (up.name || ""));
    el("span", {class: "sub"}, h, (up.balance || "") + (up.panic ? " · PANIC" : ""));
    chart(card, output, d);
    const table = el("table", {}, card);
    table.dataset.output = output;
    const head = table.createTHead().insertRow();
    for (const t of ["node", "address", "state", "records/s", "in flight", "flushes", "records",
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
      cell(row, human(d.rates.node[output + "/" + node.name]), "num");
      cell(row, node.in_flight, "num");
      cell(row, c.flushes ?? 0, "num");
      cell(row, c.records ?? 0, "num");
      cell(row, failures(c), "num");
      cell(row, c.ejections ?? 0, "num");
      const err = cell(row, lastError(node.last_error), "error");
      const e = node.last_error;
      if (e && e.kind) err.title = e.kind + (e.at ? " at " + clock(e.at) : "");
    }
  }
}

// ------------------------------------------------------------------ storage
function renderStorage(d) {
  const root = document.getElementById("storage");
  root.replaceChildren();
  if (!d.storage) { el("p", {class: "empty"}, root, "not reported by this agent"); return; }
  const s = d.storage.relaybit || {}, layer = d.storage.storage_layer || {};
  const stats = el("div", {class: "stats"}, root);
  const stat = (k, v) => { const x = el("div", {}, stats); el("b", {}, x, v); el("span", {}, x, k); };
  stat("storage", s.type || layer.type || "memory");
  stat("chunks pending", s.pending_chunks ?? "\u2013");
  stat("chunks up", s.chunks_up ?? "\u2013");
  stat("chunks down", s.chunks_down ?? "\u2013");
  stat("backlog files", s.backlog_files_waiting ?? 0);
  stat("records lost", s.lost_records ?? 0);
  if (layer.paused) stat("storage", "PAUSED (writes fail)");
  const limit = s.mem_limit || 0, held = s.buffered_bytes || 0;
  el("div", {class: "k", style: "font-size:.8rem;color:#6b7280"}, root,
     "memory buffered: " + human(held, "B") + (limit ? " of " + human(limit, "B") : ""));
  const bar = el("div", {class: "bar"}, root);
  const pct = limit ? Math.min(100, 100 * held / limit) : 0;
  el("div", {style: `width:${pct}%;background:${pct > 80 ? "#d64545" : pct > 50 ? "#d99a00" : "#2e9e44"}`}, bar);
  const outs = Object.entries(s.outputs || {});
  if (outs.length) {
    const t = el("table", {}, root);
    const hr = t.createTHead().insertRow();
    for (const h of ["output", "queued", "in flight", "waiting retry", "fs chunks", "fs bytes"]) el("th", {}, hr, h);
    const b = t.createTBody();
    for (const [name, q] of outs) {
      const row = b.insertRow();
      cell(row, name);
      cell(row, q.queued ?? 0, "num"); cell(row, q.in_flight ?? 0, "num");
      cell(row, q.waiting_retry ?? 0, "num"); cell(row, q.storage_queued_chunks ?? 0, "num");
      cell(row, human(q.storage_queued_bytes || 0, "B") + (q.total_limit_size ? " / " + human(q.total_limit_size, "B") : ""), "num");
    }
  }
}

// ------------------------------------------------------------------ timeline
function renderTimeline(d) {
  const root = document.getElementById("timeline");
  root.replaceChildren();
  const events = ((d.history && d.history.events) || []).slice().reverse().slice(0, 50);
  if (!events.length) { el("li", {class: "empty"}, root, "no state change since the agent started"); return; }
  for (const e of events) {
    const li = el("li", {"data-node": e.node, "data-new": e.new,
                         style: "--dot:" + (STATE_COLOR[e.new] || "#9ca3af")}, root);
    el("span", {class: "t"}, li, clock(e.at) + "  ");
    el("b", {}, li, e.node);
    li.appendChild(document.createTextNode(" (" + e.output + ") "));
    el("span", {class: "state " + e.old}, li, e.old);
    li.appendChild(document.createTextNode(" \\u2192 "));
    el("span", {class: "state " + e.new}, li, e.new);
    if (e.reason) el("span", {class: "why"}, li, e.reason);
  }
}

// ------------------------------------------------------------------ loop
async function poll() {
  const updated = document.getElementById("updated");
  try {
    const [ups, metrics, history, storage, root, uptime] = await Promise.all([
      getJSON("/api/v1/upstreams"), getJSON("/api/v1/metrics"),
      getJSON("/api/v1/history").catch(() => null), getJSON("/api/v1/storage").catch(() => null),
      getJSON("/").catch(() => null), getJSON("/api/v1/uptime").catch(() => null)]);
    if (!pipeline || Date.now() - pipelineAt > 10000) {
      pipeline = await getJSON("/api/v1/pipeline").catch(() => pipeline);
      pipelineAt = Date.now();
    }
    const d = {ups, metrics, history, storage, pipeline, at: Date.now()};
    d.rates = rates(d);
    previous = d;
    if (root && root.relaybit) document.getElementById("version").textContent = "v" + root.relaybit.version;
    if (uptime) document.getElementById("uptime").textContent = "up " + fmtUptime(uptime.uptime_sec);
    fetch("/api/v1/health", {cache: "no-store"}).then(r => {
      const h = document.getElementById("health");
      h.textContent = r.ok ? "healthy" : "unhealthy"; h.className = r.ok ? "ok" : "error";
    }).catch(() => {});
    renderTiles(d, d.rates);
    renderPipeline(d, d.rates);
    renderUpstreams(d);
    renderStorage(d);
    renderTimeline(d);
    updated.textContent = "updated " + new Date().toLocaleTimeString();
    updated.className = "";
    document.body.dataset.loaded = "true";
  } catch (e) {
    updated.textContent = "agent unreachable: " + e.message + " (" + new Date().toLocaleTimeString() + ")";
    updated.className = "down";
  }
}
function fmtUptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + h + "h " + String(m).padStart(2, "0") + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
"""
