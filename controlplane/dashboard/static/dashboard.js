// Reads the JSON API with a bearer token from ?token= or the login field (kept in sessionStorage).
"use strict";
const params = new URLSearchParams(location.search);
let token = params.get("token") || sessionStorage.getItem("awan-token") || "";
const $ = (id) => document.getElementById(id);

function text(s) { return document.createTextNode(s == null ? "" : String(s)); }
function row(cells, cls) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => { const td = document.createElement("td"); td.appendChild(text(c));
    if (cls && cls[i]) td.className = cls[i]; tr.appendChild(td); });
  return tr;
}
async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (r.status === 401) { throw new Error("unauthorized"); }
  if (!r.ok) { throw new Error(path + ": HTTP " + r.status); }
  return r.json();
}
function drawChart(gpus) {
  const svg = $("gpu-chart"), NS = "http://www.w3.org/2000/svg";
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const totals = {};
  gpus.forEach((g) => { if (g.state !== "Deleted") { const k = g.provider + "/" + g.region; totals[k] = (totals[k] || 0) + g.gpus; } });
  const keys = Object.keys(totals).sort();
  if (!keys.length) { const t = document.createElementNS(NS, "text"); t.setAttribute("x", 10); t.setAttribute("y", 20);
    t.appendChild(text("no GPUs placed yet")); svg.appendChild(t); return; }
  const max = Math.max(...keys.map((k) => totals[k])), w = 640, h = 240, pad = 30, bw = (w - pad) / keys.length;
  keys.forEach((k, i) => {
    const bh = (h - 2 * pad) * totals[k] / max, x = pad + i * bw + 4, y = h - pad - bh;
    const r = document.createElementNS(NS, "rect");
    Object.entries({ x, y, width: Math.max(4, bw - 8), height: bh, class: "bar" }).forEach(([a, v]) => r.setAttribute(a, v));
    const title = document.createElementNS(NS, "title"); title.appendChild(text(k + ": " + totals[k] + " GPUs")); r.appendChild(title);
    const lab = document.createElementNS(NS, "text"); lab.setAttribute("x", x); lab.setAttribute("y", h - pad + 14);
    lab.setAttribute("class", "axis"); lab.appendChild(text(k));
    const val = document.createElementNS(NS, "text"); val.setAttribute("x", x); val.setAttribute("y", y - 3);
    val.setAttribute("class", "axis"); val.appendChild(text(totals[k]));
    svg.append(r, lab, val);
  });
}
async function refresh() {
  try {
    const [wl, sum] = await Promise.all([api("/v1/workloads"), api("/v1/summary")]);
    const tb = $("workloads").tBodies[0]; tb.replaceChildren();
    wl.items.forEach((w) => tb.appendChild(row([w.name, w.team, w.state, w.gpus,
      w.assignments.map((a) => a.provider + "/" + a.region + " " + a.instanceType + "×" + a.nodes).join(", "), w.message],
      [null, null, "state-" + w.state])));
    drawChart(sum.gpus);
    const cb = $("commitments").tBodies[0]; cb.replaceChildren();
    sum.commitments.forEach((c) => cb.appendChild(row([c.name, c.provider, c.gpuModel,
      c.usedGpus + " / " + (c.committedGpus == null ? "$" : c.committedGpus)])));
    const sb = $("spend").tBodies[0]; sb.replaceChildren();
    sum.spend.forEach((s) => sb.appendChild(row([s.team, s.dollarsPerHour.toFixed(2), s.gpus])));
    $("status").textContent = wl.items.length + " workloads · updated " + new Date().toLocaleTimeString();
    $("login").hidden = true;
  } catch (e) {
    $("status").textContent = e.message === "unauthorized" ? "sign in with an API token" : "error: " + e.message;
    if (e.message === "unauthorized") $("login").hidden = false;
  }
}
$("login").addEventListener("submit", (ev) => { ev.preventDefault(); token = $("token").value.trim();
  sessionStorage.setItem("awan-token", token); refresh(); });
refresh();
setInterval(refresh, 5000);
