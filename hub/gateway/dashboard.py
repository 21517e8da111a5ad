"""The web dashboard: one self-contained page for staff, liaison officers, auditors (DESIGN.md 7).

No external resources and no data in the page itself: it asks for a bearer token (kept in
``sessionStorage``, sent only in the ``Authorization`` header), then reads the API: the status
table (overdue highlighted, handling codes), a case's trail, the bilateral review and the
statistics as tables and SVG charts with CSV/JSON exports, the ledger for auditors, and live
status over server-sent events (read with ``fetch``, because ``EventSource`` cannot send the
header). Every value is inserted as text, never as markup. ``CSP`` allows exactly the inline
script and style below, by hash.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSP", "PAGE"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { background: #1f3f5b; color: #fff; padding: .6em 1em; display: flex; gap: 1em;
  align-items: center; flex-wrap: wrap; }
header h1 { font-size: 1.1em; margin: 0; flex: 1; }
main { padding: 0 1em 2em; }
section { background: #fff; border: 1px solid #d5d9de; border-radius: 4px; margin: 1em 0;
  padding: .5em 1em 1em; }
h2 { font-size: 1.05em; } h3 { font-size: .95em; margin-bottom: .2em; }
table { border-collapse: collapse; margin: .4em 0; font-size: .85em; }
th, td { border: 1px solid #c9ced4; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
tr.overdue td { background: #fde2e1; }
tr.flash td { background: #fff5c2; }
tr.pick { cursor: pointer; } tr.pick:hover td { background: #e8f0f8; }
.badge { font-weight: bold; color: #a11; }
.h0 { color: #555; } .h1 { color: #1f5f8b; } .h2 { color: #b06000; }
.h3 { color: #a11; font-weight: bold; }
.muted { color: #666; font-size: .85em; }
.error { color: #a11; }
.hidden { display: none; }
#live { font-size: .85em; } #live.on { color: #9f9; } #live.off { color: #fbb; }
input, select, button { font: inherit; font-size: .9em; }
.row { display: flex; gap: .5em; flex-wrap: wrap; align-items: center; margin: .3em 0; }
img.chart { max-width: 100%; display: block; margin: .5em 0; }
"""

_SCRIPT = r"""
"use strict";
const KEY = "mla-hub-token";
const $ = (s) => document.querySelector(s);
const token = () => sessionStorage.getItem(KEY) || "";
const rows = new Map();
let me = null, stream = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(c ?? "-"));
  return e;
}
const when = (s) => (s ? String(s).slice(0, 16).replace("T", " ") : "-");
function table(headers, data, decorate) {
  if (!data.length) return el("p", {class: "muted"}, "none");
  const t = el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const r of data) {
    const tr = el("tr", {}, ...r.cells.map((c) => el("td", {}, c)));
    if (decorate) decorate(tr, r);
    body.append(tr);
  }
  t.append(body);
  return t;
}
function fill(target, ...nodes) { const t = $(target); t.replaceChildren(...nodes); return t; }
function fail(target, e) { fill(target, el("p", {class: "error"}, String(e.message || e))); }

async function api(path, extra) {
  const init = {headers: {Authorization: "Bearer " + token()}, cache: "no-store"};
  const r = await fetch(path, Object.assign(init, extra || {}));
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(r.status + " " + detail);
  }
  return r;
}
const json = async (path) => (await api(path)).json();
async function download(path, name) {
  const url = URL.createObjectURL(await (await api(path)).blob());
  const a = el("a", {href: url, download: name});
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 2000);
}
async function chart(img, path) {
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await (await api(path)).blob());
}
const query = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v)).toString();

function statusRow(s) {
  const handling = el("span", {class: s.handling_code.toLowerCase()}, s.handling_code +
    (s.confidential ? " confidential" : "") + (s.use_limitation ? " use-limited" : ""));
  const deadline = el("span", {}, when(s.deadline));
  if (s.overdue) deadline.append(" ", el("span", {class: "badge"}, "OVERDUE"));
  return {s, cells: [el("span", {title: s.case_id}, s.case_id.slice(-12)), s.kind,
    s.requesting + " \u2192 " + s.requested, s.state,
    s.holder + " (" + when(s.holder_since) + ")", deadline, handling,
    s.last_action + " " + when(s.last_action_at)]};
}
function renderStatus(flash) {
  const only = $("#overdue").checked, who = $("#authority").value.trim();
  const data = [...rows.values()].filter((s) => (!only || s.overdue) &&
    (!who || s.requesting === who || s.requested === who)).map(statusRow);
  fill("#status-table", table(["case", "kind", "from \u2192 to", "state", "holder (since)",
    "deadline", "handling", "last action"], data, (tr, r) => {
    tr.classList.add("pick");
    if (r.s.overdue) tr.classList.add("overdue");
    if (r.s.case_id === flash) tr.classList.add("flash");
    tr.addEventListener("click", () => showTrail(r.s.case_id));
  }));
}
async function loadStatus() {
  try {
    rows.clear();
    for (const s of await json("/api/v1/status")) rows.set(s.case_id, s);
    renderStatus();
  } catch (e) { fail("#status-table", e); }
}
async function showTrail(id) {
  $("#trail").classList.remove("hidden");
  $("#trail-case").textContent = id;
  try {
    const items = await json("/api/v1/cases/" + encodeURIComponent(id) + "/trail");
    fill("#trail-table", table(["index", "recorded (UTC)", "type", "actor", "digest"],
      items.map((t) => ({cells: [t.index, when(t.at), t.type, t.actor,
        t.digest.slice(0, 16) + "\u2026"]}))));
  } catch (e) { fail("#trail-table", e); }
}

function durations(label, d) { return {cells: [label, d.count, d.median_days, d.p90_days]}; }
function direction(d) {
  const cases = (list, f) => list.map((c) => ({cells: f(c)}));
  const title = d.requesting + " \u2192 " + d.requested + ": " + d.requests + " request(s)";
  return el("div", {}, el("h3", {}, title),
    table(["state", "requests"], Object.entries(d.by_state).map(([k, v]) => ({cells: [k, v]}))),
    table(["days to", "cases", "median", "p90"],
      [durations("acknowledge", d.to_acknowledge), durations("execute", d.to_execute)]),
    el("h3", {}, "Overdue"), table(["case", "kind", "state", "held by", "deadline"],
      cases(d.overdue, (c) => [c.case_id, c.kind, c.state, c.holder, when(c.deadline)])),
    el("h3", {}, "Refusals (UNTOC art. 18(26): consultation before refusal)"),
    table(["case", "refused", "consulted first"], cases(d.refusals,
      (r) => [r.case_id, when(r.refused_at), r.consulted_first ? "yes" : "NO"])),
    el("h3", {}, "Pending for more than 90 days"),
    table(["case", "state", "held by", "opened", "age (days)"], cases(d.pending_over_90_days,
      (c) => [c.case_id, c.state, c.holder, when(c.opened), c.age_days])),
    el("h3", {}, "Consultations and the requests they led to"),
    table(["consultation", "opened", "state", "led to"], cases(d.consultations,
      (c) => [c.consultation_id, when(c.opened), c.state, c.led_to.join(", ") || "-"])));
}
function reviewQuery(format) {
  return "/api/v1/review?" + query({first: $("#first").value.trim(),
    second: $("#second").value.trim(), since: $("#since").value, until: $("#until").value, format});
}
async function loadReview() {
  try {
    const r = await json(reviewQuery("json"));
    await chart($("#review-chart"), reviewQuery("svg"));
    const period = (r.since ? "from " + when(r.since) : "at any time") +
      (r.until ? " until " + when(r.until) : "");
    fill("#review-body", el("p", {class: "muted"}, "Cases opened " + period + "; generated " +
      when(r.generated_at)), ...r.directions.map(direction));
  } catch (e) { fail("#review-body", e); }
}
const statsQuery = (format) => "/api/v1/stats?" + query({by: $("#by").value, format});
async function loadStats() {
  try {
    const s = await json(statsQuery("json"));
    await chart($("#stats-chart"), statsQuery("svg"));
    fill("#stats-body", el("p", {}, s.requests + " request(s); UNTOC as the legal basis: " +
      s.untoc_as_legal_basis + "; consultations: " + s.consultations),
      table([s.by, "requests", "executed", "refused", "withdrawn", "pending",
        "median days to acknowledge", "median days to outcome"],
        s.rows.map((r) => ({cells: [r.group, r.requests, r.executed, r.refused,
        r.withdrawn, r.pending, r.median_days_to_acknowledge, r.median_days_to_outcome]}))));
  } catch (e) { fail("#stats-body", e); }
}
async function loadLedger() {
  try {
    const from = Math.max(0, parseInt($("#from").value || "0", 10));
    const list = await json("/api/v1/ledger?" + query({from: String(from), limit: "100"}));
    fill("#ledger-table", table(
      ["index", "recorded (UTC)", "type", "actor", "case", "digest", "detail"],
      list.map((x) => ({cells: [x.index, when(x.recorded_at), x.type, x.actor, x.case_id,
        x.digest.slice(0, 16), x.detail]}))));
  } catch (e) { fail("#ledger-table", e); }
}
async function loadDirectory() {
  try {
    const list = await json("/api/v1/directory");
    fill("#directory-table", table(
      ["id", "name", "state", "kinds", "languages", "key id", "admitted"],
      list.map((d) => ({cells: [d.card.id, d.card.name, d.card.state, d.card.kinds.join(", "),
        d.card.languages.join(", "), d.card.keys.key_id, when(d.admitted_at)]}))));
  } catch (e) { fail("#directory-table", e); }
}

function onEvent(name, data) {
  if (name === "hello") { $("#live").textContent = "live"; $("#live").className = "on"; }
  else if (name === "status") { rows.set(data.case_id, data); renderStatus(data.case_id); }
  else if (name === "directory") loadDirectory();
  else if (name === "reset") { loadStatus(); }
  else if (name === "revoked") {
    $("#live").textContent = "token revoked"; stream?.abort(); stream = null;
  }
}
async function live() {
  const ctl = new AbortController();
  stream = ctl;
  try {
    const r = await api("/api/v1/events", {signal: ctl.signal});
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i); buf = buf.slice(i + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) onEvent(name, JSON.parse(data));
      }
    }
  } catch (_) { /* network error or abort */ }
  $("#live").textContent = "offline"; $("#live").className = "off";
  if (stream === ctl) setTimeout(() => { if (stream === ctl) { loadStatus(); live(); } }, 3000);
}

async function start() {
  try { me = await json("/api/v1/whoami"); }
  catch (e) { $("#scope").textContent = String(e.message); return; }
  $("#scope").textContent = me.scope + " (token " + me.token_id + ", expires " +
    when(me.expires_at) + ")";
  $("#app").classList.remove("hidden");
  const everything = me.role === "operator" || me.role === "auditor";
  $("#ledger").classList.toggle("hidden", !everything);
  if (me.pair) { $("#first").value = me.pair[0]; $("#second").value = me.pair[1]; }
  else if (me.authority) $("#first").value = me.authority;
  loadStatus(); loadDirectory(); loadStats();
  if (me.pair) loadReview();
  if (everything) loadLedger();
  stream?.abort(); live();
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("#token").value.trim()); $("#token").value = ""; start();
});
$("#logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY); stream?.abort(); stream = null; rows.clear();
  $("#app").classList.add("hidden"); $("#scope").textContent = "no token";
});
$("#overdue").addEventListener("change", () => renderStatus());
$("#authority").addEventListener("input", () => renderStatus());
$("#status-csv").addEventListener("click",
  () => download("/api/v1/status?format=csv", "status.csv"));
$("#status-json").addEventListener("click", () => download("/api/v1/status", "status.json"));
$("#review-go").addEventListener("click", loadReview);
$("#review-csv").addEventListener("click", () => download(reviewQuery("csv"), "review.csv"));
$("#review-json").addEventListener("click", () => download(reviewQuery("json"), "review.json"));
$("#review-html").addEventListener("click", () => download(reviewQuery("html"), "review.html"));
$("#stats-go").addEventListener("click", loadStats);
$("#by").addEventListener("change", loadStats);
$("#stats-csv").addEventListener("click", () => download(statsQuery("csv"), "stats.csv"));
$("#stats-json").addEventListener("click", () => download(statsQuery("json"), "stats.json"));
$("#ledger-go").addEventListener("click", loadLedger);
if (token()) start();
"""

_BODY = """
<header>
<h1>MLA hub &mdash; case status, reviews and statistics</h1>
<span id="scope">no token</span> <span id="live" class="off">offline</span>
<form id="login" class="row"><input id="token" type="password" autocomplete="off"
 placeholder="access token (mlah_...)" aria-label="access token"><button>Use token</button>
<button type="button" id="logout">Forget</button></form>
</header>
<main>
<div id="app" class="hidden">
<section id="status"><h2>Status of cases</h2>
<div class="row"><label>authority <input id="authority" size="12" placeholder="XA-MOJ"></label>
<label><input id="overdue" type="checkbox"> overdue only</label>
<button type="button" id="status-csv">export CSV</button>
<button type="button" id="status-json">export JSON</button></div>
<p class="muted">Handling codes H0-H3 travel in the signed header; click a case for its trail.
Rows update live.</p>
<div id="status-table"></div></section>
<section id="trail" class="hidden"><h2>Audit trail of case <span id="trail-case"></span></h2>
<div id="trail-table"></div></section>
<section id="review-section"><h2>Bilateral case review (rec. 11)</h2>
<div class="row"><input id="first" size="12" placeholder="XA-MOJ" aria-label="first authority">
<input id="second" size="12" placeholder="XB-MOJ" aria-label="second authority">
<label>since <input id="since" type="date"></label>
<label>until <input id="until" type="date"></label>
<button type="button" id="review-go">Show</button>
<button type="button" id="review-csv">export CSV</button>
<button type="button" id="review-json">export JSON</button>
<button type="button" id="review-html">printable HTML</button></div>
<img id="review-chart" class="chart" alt="requests by state, both directions">
<div id="review-body"></div></section>
<section id="stats-section"><h2>Statistics (rec. 6)</h2>
<div class="row"><label>by <select id="by"><option>kind</option><option>nature</option>
<option>legal-basis</option><option>outcome</option><option>authority</option></select></label>
<button type="button" id="stats-go">Show</button>
<button type="button" id="stats-csv">export CSV</button>
<button type="button" id="stats-json">export JSON</button></div>
<img id="stats-chart" class="chart" alt="requests by group">
<div id="stats-body"></div></section>
<section id="ledger" class="hidden"><h2>Ledger (metadata only)</h2>
<div class="row"><label>from index <input id="from" type="number" min="0" value="0"></label>
<button type="button" id="ledger-go">Show 100</button></div>
<div id="ledger-table"></div></section>
<section id="directory"><h2>Directory</h2><div id="directory-table"></div></section>
</div>
</main>
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


PAGE = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "<title>MLA hub dashboard</title>\n"
    f"<style>{_STYLE}</style>\n</head>\n<body>{_BODY}<script>{_SCRIPT}</script>\n</body>\n</html>\n"
)

CSP = (
    f"default-src 'none'; script-src {_hash(_SCRIPT)}; style-src {_hash(_STYLE)}; "
    "img-src blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
