"""The dashboard's one page: HTML, style and script inline (no CDN, no external file).

The script polls ``api/status`` (sending the page's ``?token=`` as ``X-Mtbt-Token``) and
draws every section with ``textContent`` (no markup from the data) and the equity curve as
inline SVG. ``page`` puts the response's CSP nonce on the script and style tags.
"""
from __future__ import annotations

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mtbt paper session</title>
<style nonce="@NONCE@">
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}
header{background:#1d2430;color:#fff;padding:10px 18px;display:flex;gap:18px;
  align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}
#state{padding:2px 8px;border-radius:4px;background:#555}
#state.running{background:#1f7a3a}#state.ended{background:#345}#state.failed{background:#a32}
#error{display:none;background:#a32;color:#fff;padding:6px 18px}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px;
  padding:12px}
section{background:#fff;border-radius:6px;padding:10px 14px;box-shadow:0 1px 2px #0002}
section.wide{grid-column:1/-1}
h2{font-size:15px;margin:0 0 6px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #e3e5e8;white-space:nowrap}
th{font-weight:600;color:#555}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px}
.pos{color:#1f7a3a}.neg{color:#a32}.muted{color:#777}
.down{color:#a32;font-weight:600}.up{color:#1f7a3a;font-weight:600}
svg{width:100%;height:auto;display:block}
#equity-figures{display:flex;flex-wrap:wrap;gap:4px 8px}
#equity-figures span.muted{margin-left:10px}
</style></head>
<body data-refresh="@REFRESH@">
<header><h1>mtbt paper <span id="session">…</span></h1>
<span id="state">loading</span><span id="bar-time"></span><span id="symbol"></span>
<span id="updated" class="muted"></span></header>
<div id="error"></div>
<main>
<section class="wide"><h2>Equity today</h2><div id="equity-figures" class="kv"></div>
<svg id="equity" viewBox="0 0 800 200" role="img"
 aria-label="equity curve"></svg></section>
<section class="wide"><h2>Open trades</h2><table id="open-trades"><thead><tr><th>#</th>
<th>side</th><th>instrument</th><th>qty</th><th>stage</th><th>entry</th><th>stop</th>
<th>target</th><th>last</th></tr></thead><tbody></tbody></table></section>
<section><h2>Working orders</h2><table id="orders"><thead><tr><th>client id</th>
<th>order</th></tr></thead><tbody></tbody></table></section>
<section><h2>Regime</h2><div id="regime" class="kv"></div></section>
<section><h2>Connection</h2><table id="streams"><thead><tr><th>stream</th><th>state</th>
<th>since</th><th>connects</th></tr></thead><tbody></tbody></table>
<div id="bars" class="muted"></div></section>
<section><h2>Bar-to-order latency</h2><table id="latency"><thead><tr><th></th><th>n</th>
<th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr></thead><tbody></tbody></table></section>
<section class="wide"><h2>Alerts</h2><table id="alerts"><thead><tr><th>time</th>
<th>event</th><th>text</th></tr></thead><tbody></tbody></table></section>
<section class="wide"><h2>Closed trades</h2><table id="closed"><thead><tr><th>#</th>
<th>instrument</th><th>side</th><th>entry</th><th>exit</th><th>qty</th><th>reason</th>
<th>pnl</th></tr></thead><tbody></tbody></table></section>
</main>
<script nonce="@NONCE@">
"use strict";
const token = new URLSearchParams(location.search).get("token");
const refresh = Math.max(0.5, parseFloat(document.body.dataset.refresh) || 2) * 1000;
const $ = (id) => document.getElementById(id);
const money = (v) => v === null || v === undefined ? "–" :
  (v < 0 ? "-$" : "$") + Math.abs(v).toLocaleString("en-US",
    {minimumFractionDigits: 2, maximumFractionDigits: 2});
const num = (v, d) => v === null || v === undefined || v === "" ? "–" :
  Number(v).toFixed(d === undefined ? 2 : d);
const hm = (t) => t ? String(t).replace("T", " ").slice(0, 19) : "–";
function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}
function rows(id, items, fill, empty) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  if (!items.length) {
    const tr = body.insertRow(); const td = cell(tr, empty, "muted");
    td.colSpan = $(id).tHead.rows[0].cells.length; return;
  }
  for (const item of items) { const tr = body.insertRow(); fill(tr, item); }
}
function kv(id, pairs) {
  const box = $(id); box.replaceChildren();
  for (const [k, v, cls] of pairs) {
    const a = document.createElement("span"); a.textContent = k; a.className = "muted";
    const b = document.createElement("span"); b.textContent = v; if (cls) b.className = cls;
    box.append(a, b);
  }
}
const sign = (v) => v > 0 ? "pos" : v < 0 ? "neg" : "";
function level(price, reason) { return price === null || price === undefined ? "–" :
  num(price) + (reason ? " (" + reason + ")" : ""); }
function drawEquity(points) {
  const svg = $("equity"); svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const text = (x, y, s, anchor) => { const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("font-size", "10");
    t.setAttribute("fill", "#555"); t.setAttribute("text-anchor", anchor || "start");
    t.textContent = s; svg.appendChild(t); };
  if (points.length < 2) { text(400, 100, points.length ? "one bar so far" :
    "no bar yet", "middle"); return; }
  const ys = points.map((p) => p[1]);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
  const X = (i) => 80 + i * (710 / (points.length - 1));
  const Y = (v) => 172 - (v - lo) * (156 / (hi - lo));
  const base = points[0][1];
  if (base >= lo && base <= hi) {
    const l = document.createElementNS(ns, "line");
    l.setAttribute("x1", 80); l.setAttribute("x2", 790); l.setAttribute("y1", Y(base));
    l.setAttribute("y2", Y(base)); l.setAttribute("stroke", "#ccc");
    l.setAttribute("stroke-dasharray", "4 3"); svg.appendChild(l);
  }
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map((p, i) => X(i).toFixed(1) + "," +
    Y(p[1]).toFixed(1)).join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke-width", "2");
  line.setAttribute("stroke", ys[ys.length - 1] >= base ? "#1f7a3a" : "#a32");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(line);
  text(2, 20, money(hi)); text(2, 176, money(lo));
  text(80, 196, hm(points[0][0]).slice(11, 16));
  text(790, 196, hm(points[points.length - 1][0]).slice(11, 16), "end");
}
function render(d) {
  const s = d.status || {};
  $("session").textContent = d.session || "";
  const state = s.state || (d.status ? "?" : "no status file");
  $("state").textContent = state + (s.stopped_by ? ": " + s.stopped_by : "");
  $("state").className = state;
  $("bar-time").textContent = s.bar_time ? "bar " + hm(s.bar_time) : "";
  $("symbol").textContent = [s.symbol, s.run, s.dry_run ? "DRY RUN" : ""]
    .filter(Boolean).join(" · ");
  $("updated").textContent = "updated " + hm(s.updated || d.now);
  const a = s.account || {}, r = s.risk || {}, sum = s.summary || {};
  const eq = d.equity || [];
  kv("equity-figures", [["equity", money(a.equity !== undefined ? a.equity :
      (eq.length ? eq[eq.length - 1][1] : null))], ["cash", money(a.cash)],
    ["day pnl", money(a.day_pnl), sign(a.day_pnl)],
    ["breaker", r.breaker_tripped ? "TRIPPED" : (r.paused ? "paused" : "ok"),
     r.breaker_tripped ? "neg" : ""],
    ...(s.summary ? [["session pnl", money(sum.total_pnl), sign(sum.total_pnl)],
      ["trades", String(sum.trades)]] : [])]);
  drawEquity(eq);
  const open = d.status ? (s.open_trades || []) :
    ((d.state && d.state.open_trades) || []);
  rows("open-trades", open, (tr, t) => {
    tr.dataset.tradeId = t.trade_id;
    cell(tr, "#" + t.trade_id); cell(tr, t.side);
    cell(tr, t.label || t.instrument);
    cell(tr, t.remaining !== undefined && t.remaining !== t.qty ?
      t.remaining + " of " + t.qty : t.qty);
    cell(tr, t.stage);
    cell(tr, num(t.entry_price) + (t.premium !== null && t.premium !== undefined ?
      " (premium " + num(t.premium) + ")" : ""));
    cell(tr, level(t.stop, t.stop_reason)); cell(tr, level(t.target, t.target_reason));
    cell(tr, t.levels_on === "premium" ? num(t.mark) + " premium" : num(t.last));
  }, "no open trade");
  const described = (d.state && d.state.orders) || {};
  rows("orders", s.working_orders || [], (tr, cid) => {
    cell(tr, cid); cell(tr, described[cid] ? described[cid].order : "");
  }, "no working order");
  const g = s.regime || {};
  kv("regime", [["regime", g.name || "–"], ["VIX", num(g.vix)],
    ["ATR", g.atr_pct === null || g.atr_pct === undefined ? "–" : num(g.atr_pct, 3) + "%"]]);
  const streams = s.streams || {};
  rows("streams", ["bars", "trades"].filter((n) => streams[n]), (tr, n) => {
    const x = streams[n];
    cell(tr, n); cell(tr, x.state, x.connected ? "up" : "down");
    cell(tr, hm(x.down_since || x.since)); cell(tr, x.connects);
  }, "no stream yet");
  $("bars").textContent = s.bars_streamed === undefined ? "" :
    s.bars_streamed + " bars streamed, " + s.bars_recovered + " recovered over REST";
  const lat = s.latency_ms || {};
  rows("latency", ["bar_to_order", "bar_handled"].filter((n) => lat[n]), (tr, n) => {
    const x = lat[n];
    cell(tr, n.replace(/_/g, " ")); cell(tr, x.n); cell(tr, num(x.p50, 1));
    cell(tr, num(x.p99, 1)); cell(tr, num(x.max, 1));
  }, "none yet");
  rows("alerts", (d.events || []).slice().reverse(), (tr, e) => {
    tr.dataset.event = e.event;
    cell(tr, hm(e.time)); cell(tr, e.event); cell(tr, e.text);
  }, "no alert");
  rows("closed", (d.closed_trades || []).slice().reverse(), (tr, t) => {
    cell(tr, "#" + t.trade_id); cell(tr, t.instrument); cell(tr, t.side);
    cell(tr, num(t.entry_price)); cell(tr, num(t.exit_price)); cell(tr, t.qty);
    cell(tr, t.exit_reason); cell(tr, money(Number(t.pnl)), sign(Number(t.pnl)));
  }, "no closed trade");
  document.body.dataset.loaded = "1";
}
async function poll() {
  try {
    const res = await fetch("api/status", {cache: "no-store",
      headers: token ? {"X-Mtbt-Token": token} : {}});
    if (!res.ok) throw new Error("HTTP " + res.status + ": " + (await res.text()).trim());
    const d = await res.json();
    if (d.error) throw new Error(d.error);
    render(d);
    $("error").style.display = "none";
  } catch (err) {
    $("error").textContent = "cannot refresh: " + err.message;
    $("error").style.display = "block";
  }
  setTimeout(poll, refresh);
}
poll();
</script></body></html>
"""


def page(nonce: str, refresh: float = 2.0) -> str:
    """The page, with ``nonce`` on its script and style and ``refresh`` seconds between
    polls."""
    return _PAGE.replace("@NONCE@", nonce).replace("@REFRESH@", f"{float(refresh):g}")
