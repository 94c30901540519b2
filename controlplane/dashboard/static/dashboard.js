// Awan dashboard: a few pages over the JSON API. Signed in by an HttpOnly cookie (see /dashboard?token=),
// so no token is ever in the address bar, in script-readable storage, or in a Referer header.
// Charts are Chart.js, served from the package (vendor/chart.umd.min.js, MIT licence beside it).
"use strict";
const $ = (id) => document.getElementById(id);
const PROVIDER_COLOURS = { aws: "#ff9900", gcp: "#34a853", azure: "#0078d4", coreweave: "#7b3fe4", oci: "#c74634" };
const TEAM_COLOURS = ["#2f6fb0", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"];
const STATES = ["Pending", "Placed", "Provisioning", "Running", "Failed", "Deleting"];
const charts = {};
let workloads = [];
let sortKey = "name", sortDir = 1;

function colour(p) { return PROVIDER_COLOURS[p] || "#8a94a6"; }
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => { if (k === "class") e.className = v; else e.setAttribute(k, v); });
  kids.flat().forEach((k) => e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k))));
  return e;
}
function td(v, cls) { return el("td", cls ? { class: cls } : {}, v); }
function stateBadge(s) { return el("span", { class: "state state-" + s }, s); }
function money(x) { return x == null ? "-" : "$" + Number(x).toLocaleString(undefined, { maximumFractionDigits: 2 }); }
function when(iso) { return iso ? new Date(iso).toLocaleString() : "-"; }
function day(iso) { return iso ? iso.slice(0, 10) : "-"; }

class Unauthorized extends Error {}
class Forbidden extends Error {}
async function api(path) {
  const r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) throw new Unauthorized(path);
  if (r.status === 403) throw new Forbidden(path);
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function chart(id, config) {
  if (charts[id]) { charts[id].data = config.data; charts[id].update("none"); return charts[id]; }
  config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
  charts[id] = new Chart($(id), config);
  return charts[id];
}

// ---- routing --------------------------------------------------------------------------------------
function route() {
  const fromQuery = new URLSearchParams(location.search).get("page");
  const hash = location.hash.replace(/^#\/?/, "") || (fromQuery ? fromQuery : "fleet");
  const [page, ...rest] = hash.split("/");
  return { page: page || "fleet", arg: rest.length ? decodeURIComponent(rest.join("/")) : null };
}
function show(id) {
  document.querySelectorAll("section.page").forEach((s) => { s.hidden = s.id !== id; });
  const { page } = route();
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
}

// ---- pages ----------------------------------------------------------------------------------------
async function fleetPage() {
  const sum = await api("/v1/summary");
  const live = sum.gpus.filter((g) => g.state !== "Deleted" && g.state !== "Failed");
  const providers = [...new Set(live.map((g) => g.provider))].sort();
  const regions = [...new Set(live.map((g) => g.provider + "/" + g.region))].sort();
  $("gpu-empty").hidden = regions.length > 0;
  const per = (p, key) => live.filter((g) => g.provider === p && g.provider + "/" + g.region === key)
    .reduce((a, g) => a + g.gpus, 0);
  chart("gpu-chart", {
    type: "bar",
    data: { labels: regions.map((r) => r.split("/")[1]),
      datasets: providers.map((p) => ({ label: p, backgroundColor: colour(p), data: regions.map((r) => per(p, r)) })) },
    options: { plugins: { legend: { position: "top" }, tooltip: { callbacks: {
        title: (items) => regions[items[0].dataIndex] } } },
      scales: { x: { stacked: true, ticks: { autoSkip: false, maxRotation: 60, minRotation: 30 } },
        y: { stacked: true, title: { display: true, text: "GPUs" } } } },
  });
  const gt = $("gpu-table").tBodies[0]; gt.replaceChildren();
  regions.forEach((key) => { const [p, r] = key.split("/");
    gt.append(el("tr", {}, td(p), td(r), td(per(p, key), "num"))); });
  const byProvider = providers.map((p) => live.filter((g) => g.provider === p).reduce((a, g) => a + g.gpus, 0));
  chart("provider-chart", { type: "doughnut",
    data: { labels: providers, datasets: [{ data: byProvider, backgroundColor: providers.map(colour) }] },
    options: { plugins: { legend: { position: "right" } } } });
  const tiles = $("tiles"); tiles.replaceChildren();
  const total = live.reduce((a, g) => a + g.gpus, 0);
  const spend = sum.spend.reduce((a, s) => a + s.dollarsPerHour, 0);
  [["GPUs placed", total.toLocaleString()], ["$ / hour", money(spend)],
   ...STATES.filter((s) => sum.workloads[s]).map((s) => [s, sum.workloads[s]])]
    .forEach(([label, v]) => tiles.append(el("div", { class: "tile" }, el("b", {}, v), el("span", {}, label))));
  try {
    const prov = await api("/v1/providers");
    const tb = $("health").tBodies[0]; tb.replaceChildren();
    prov.items.forEach((p) => {
      const down = Object.entries(p.regions).filter(([, v]) => v !== "ok").map(([k]) => k);
      tb.append(el("tr", {}, td(p.name, "name"), el("td", {}, el("span", { class: "state status-" + p.status }, p.status)),
        td(p.latencyMs.toFixed(0) + " ms", "num"), td(down.join(", ") || "-")));
    });
    $("health-note").hidden = true;
  } catch (e) {
    if (!(e instanceof Forbidden)) throw e;
    $("health-note").textContent = "Provider health is shown to cluster-admins.";
    $("health-note").hidden = false;
  }
  return sum.workloads;
}

function whereOf(w) { return [...new Set(w.assignments.map((a) => a.provider + "/" + a.region))].sort().join(", "); }
function priceOf(w) { return w.assignments.reduce((a, x) => a + x.pricePerHour, 0); }
function renderWorkloads() {
  const q = $("filter").value.trim().toLowerCase(), st = $("state-filter").value;
  const rows = workloads.map((w) => ({ ...w, where: whereOf(w), price: priceOf(w) }))
    .filter((w) => (!st || w.state === st) &&
      (!q || [w.name, w.team, w.where, w.message, w.state].join(" ").toLowerCase().includes(q)))
    .sort((a, b) => (a[sortKey] > b[sortKey] ? 1 : a[sortKey] < b[sortKey] ? -1 : 0) * sortDir);
  const tb = $("workloads").tBodies[0]; tb.replaceChildren();
  rows.forEach((w) => {
    const tr = el("tr", { "data-name": w.name }, td(w.name, "name"), td(w.team), el("td", {}, stateBadge(w.state)),
      td(w.gpus, "num"), td(w.where || "-"), td(w.price ? money(w.price) : "-", "num"), td(when(w.createdAt)), td(w.message));
    tr.addEventListener("click", () => { location.hash = "#/workloads/" + encodeURIComponent(w.name); });
    tb.append(tr);
  });
  $("count").textContent = rows.length + " of " + workloads.length;
  document.querySelectorAll("#workloads th").forEach((th) => {
    th.classList.toggle("asc", th.dataset.key === sortKey && sortDir > 0);
    th.classList.toggle("desc", th.dataset.key === sortKey && sortDir < 0);
  });
}
async function workloadsPage() {
  workloads = (await api("/v1/workloads?limit=5000")).items;
  renderWorkloads();
  return null;
}

async function workloadPage(name) {
  const enc = encodeURIComponent(name);
  const [w, pl, ev] = await Promise.all([api("/v1/workloads/" + enc), api("/v1/workloads/" + enc + "/placement"),
    api("/v1/workloads/" + enc + "/events")]);
  $("wl-title").replaceChildren(w.name + " ", stateBadge(w.state));
  const facts = $("wl-facts"); facts.replaceChildren();
  [["Team", w.team], ["GPUs", w.gpus], ["Priority", w.priority], ["Kind", (w.spec.spec || {}).kind],
   ["Created", when(w.createdAt)], ["Placed", when(w.placedAt)], ["Running", when(w.runningAt)], ["Message", w.message || "-"]]
    .forEach(([k, v]) => facts.append(el("dt", {}, k), el("dd", {}, v)));
  const at = $("wl-assignments").tBodies[0]; at.replaceChildren();
  w.assignments.forEach((a) => at.append(el("tr", {}, td(a.provider), td(a.region), td(a.zone), td(a.instanceType),
    td(a.nodes, "num"), td(a.gpus, "num"), td(a.capacityType + (a.reservation ? " (" + a.reservation + ")" : "")),
    td(money(a.pricePerHour), "num"))));
  if (!w.assignments.length) at.append(el("tr", {}, el("td", { colspan: 8 }, "not placed")));
  const ex = pl.explanation || {};
  $("wl-reasons").replaceChildren(...(ex.reasons || ["no decision yet"]).map((r) => el("li", {}, r)));
  $("wl-runners").replaceChildren(...(ex.runnersUp || []).map((r) => el("li", {},
    `${r.provider}/${r.region} ${r.instanceType || ""} ${r.pricePerHour != null ? money(r.pricePerHour) + "/h" : ""} ` +
    `score ${r.score != null ? Number(r.score).toFixed(3) : "-"}`)));
  const rj = $("wl-rejections").tBodies[0]; rj.replaceChildren();
  Object.entries(ex.rejections || {}).forEach(([k, v]) => rj.append(el("tr", {}, td(k, "name"), td(v))));
  const et = $("wl-events").tBodies[0]; et.replaceChildren();
  ev.items.forEach((e) => et.append(el("tr", {}, td(when(e.at)), td(e.action), td(e.actor),
    td(Object.keys(e.details).length ? JSON.stringify(e.details).slice(0, 160) : ""))));
  $("wl-log").textContent = ev.items.map((e) =>
    `${e.at}  ${e.action.padEnd(16)} ${e.actor}  ${JSON.stringify(e.details)}`).join("\n") || "(no events yet)";
  return null;
}

// one contract over its whole term: GPU-hours used (actual, then the forecast) against committed
async function termChart() {
  const list = (await api("/v1/commitments")).items;
  const pick = $("term-pick");
  const names = list.map((c) => c.name);
  if ([...pick.options].map((o) => o.value).join() !== names.join()) {
    const keep = pick.value;
    pick.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (names.includes(keep)) pick.value = keep;
    pick.onchange = () => termChart();
  }
  const tb = $("term-figures").tBodies[0]; tb.replaceChildren();
  const gh = (x) => x == null ? "-" : Math.round(x).toLocaleString();
  list.forEach((c) => tb.append(el("tr", {}, td(c.name, "name"), td(gh(c.usedGpuHours), "num"),
    td(gh(c.committedGpuHoursToDate), "num"), td(gh(c.forecastGpuHours), "num"), td(gh(c.committedGpuHoursTotal), "num"),
    td(money(c.usedDollars), "num"), td(c.takeOrPay ? money(c.shortfallDollars) : "-", "num"))));
  if (!pick.value) return;
  const c = await api(`/v1/commitments/${encodeURIComponent(pick.value)}?points=60`);
  const pts = c.series;
  const actual = pts.map((p) => (p.forecast ? null : p.usedGpuHours));
  const lastActual = pts.findIndex((p) => p.forecast) - 1;
  const forecast = pts.map((p, i) => (p.forecast || i === lastActual ? p.usedGpuHours : null));
  chart("term-chart", { type: "line",
    data: { labels: pts.map((p) => day(p.at)), datasets: [
      { label: "used GPU-hours", data: actual, borderColor: colour(c.provider), backgroundColor: colour(c.provider) + "33",
        fill: true, pointRadius: 0 },
      { label: "forecast at the recent rate", data: forecast, borderColor: colour(c.provider), borderDash: [6, 4],
        pointRadius: 0 },
      { label: "committed", data: pts.map((p) => p.committedGpuHours), borderColor: "#8a94a6", pointRadius: 0 }] },
    options: { scales: { y: { title: { display: true, text: "GPU-hours (cumulative)" } } },
      plugins: { legend: { position: "top" }, title: { display: true,
        text: `${c.name}: forecast ${gh(c.forecastGpuHours)} of ${gh(c.committedGpuHoursTotal)} GPU-h` +
          (c.takeOrPay ? `, take-or-pay shortfall ${money(c.shortfallDollars)}` : "") } } } });
}

async function commitmentsPage() {
  await termChart();
  const [sum, sp] = await Promise.all([api("/v1/summary"), api("/v1/spend?hours=24&points=49")]);
  const cs = sum.commitments;
  chart("burn-chart", { type: "bar",
    data: { labels: cs.map((c) => `${c.name} (${day(c.start)} → ${day(c.end)})`),
      datasets: [
        { label: "used GPUs", data: cs.map((c) => c.usedGpus), backgroundColor: cs.map((c) => colour(c.provider)) },
        { label: "committed, unused", data: cs.map((c) => Math.max(0, (c.committedGpus || 0) - c.usedGpus)),
          backgroundColor: "#d5dae3" }] },
    options: { indexAxis: "y", scales: { x: { stacked: true, title: { display: true, text: "GPUs" } },
      y: { stacked: true } }, plugins: { legend: { position: "top" } } } });
  const tb = $("commitments").tBodies[0]; tb.replaceChildren();
  const now = Date.now();
  cs.forEach((c) => {
    const s = Date.parse(c.start), e = Date.parse(c.end), frac = Math.min(1, Math.max(0, (now - s) / (e - s)));
    const bar = el("div", { class: "bar" }, el("i")); bar.firstChild.style.width = (frac * 100).toFixed(1) + "%";
    tb.append(el("tr", {}, td(c.name, "name"), td(c.provider), td(c.gpuModel),
      td(c.usedGpus + " / " + (c.committedGpus == null ? "$" : c.committedGpus), "num"), td(day(c.start)), td(day(c.end)),
      el("td", {}, bar, (frac * 100).toFixed(0) + "%")));
  });
  const teams = [...new Set(sp.series.flatMap((p) => Object.keys(p.byTeam)))].sort();
  chart("spend-chart", { type: "line",
    data: { labels: sp.series.map((p) => new Date(p.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
      datasets: teams.map((t, i) => ({ label: t, data: sp.series.map((p) => p.byTeam[t] || 0), fill: true, stepped: true,
        borderColor: TEAM_COLOURS[i % TEAM_COLOURS.length], backgroundColor: TEAM_COLOURS[i % TEAM_COLOURS.length] + "55" })) },
    options: { scales: { y: { stacked: true, title: { display: true, text: "$ / hour" } } }, elements: { point: { radius: 0 } } } });
  chart("marginal-chart", { type: "bar",
    data: { labels: sp.teams.map((t) => t.team), datasets: [
      { label: "marginal $/h", data: sp.teams.map((t) => t.marginalDollarsPerHour), backgroundColor: "#2f6fb0" },
      { label: "at list price $/h", data: sp.teams.map((t) => t.listDollarsPerHour), backgroundColor: "#b8c4d6" }] },
    options: { plugins: { legend: { position: "top" } } } });
  return null;
}

async function teamsPage() {
  const sp = await api("/v1/spend?hours=1&points=2");
  const tb = $("teams").tBodies[0]; tb.replaceChildren();
  sp.teams.forEach((t) => {
    const n = Object.values(t.workloads).reduce((a, x) => a + x, 0);
    const states = el("td", {}, ...Object.entries(t.workloads).map(([s, k]) => [stateBadge(s + " " + k), " "]));
    tb.append(el("tr", {}, td(t.team, "name"), td(n, "num"), states, td(t.gpus, "num"),
      td(money(t.marginalDollarsPerHour), "num"), td(money(t.listDollarsPerHour), "num"),
      td(money(t.listDollarsPerHour - t.marginalDollarsPerHour), "num")));
  });
  return null;
}

// ---- refresh loop ---------------------------------------------------------------------------------
async function refresh() {
  const { page, arg } = route();
  try {
    if (page === "workloads" && arg) { show("page-workload"); await workloadPage(arg); }
    else if (page === "workloads") { show("page-workloads"); await workloadsPage(); }
    else if (page === "commitments") { show("page-commitments"); await commitmentsPage(); }
    else if (page === "teams") { show("page-teams"); await teamsPage(); }
    else if (page === "queues") { show("page-queues"); await queuesPage(); }   // queues.js
    else { show("page-fleet"); await fleetPage(); }
    $("signout").hidden = false;
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof Unauthorized) {
      document.querySelectorAll("section.page").forEach((s) => { s.hidden = true; });
      $("login").hidden = false; $("signout").hidden = true;
      $("login-error").hidden = !location.hash.includes("signin=failed");
      $("status").textContent = "sign in with an API token";
    } else {
      $("status").textContent = "error: " + e.message;
    }
  }
}

STATES.forEach((s) => $("state-filter").append(el("option", { value: s }, s)));
$("filter").addEventListener("input", renderWorkloads);
$("state-filter").addEventListener("change", renderWorkloads);
document.querySelectorAll("#workloads th").forEach((th) => th.addEventListener("click", () => {
  sortDir = sortKey === th.dataset.key ? -sortDir : 1; sortKey = th.dataset.key; renderWorkloads();
}));
window.addEventListener("hashchange", refresh);
Chart.defaults.font.family = "system-ui, sans-serif";
refresh();
setInterval(refresh, 10000);
