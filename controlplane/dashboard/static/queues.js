// Awan dashboard, the queues page: every queue's nominal quota, use and borrowing per flavour, and who
// waits in it (position, estimated start, why). One request (/v1/queues?waiting=N), so a page of many
// queues does not cost a request per queue. Uses the helpers of dashboard.js ($, el, td, api, chart, when),
// which is loaded after this file and calls queuesPage() from its refresh loop.
"use strict";
const QUEUE_WAITING_SHOWN = 50;
const WHY = {
  quota: "over quota: waits for its queue's quota (or the cohort's) to free",
  capacity: "admitted: waits for capacity to be placed on",
  policy: "never admitted as it stands (no queue, no quota for its GPU, or larger than the queue can hold)",
  preempting: "preempting: waits for its victims to stop",
};

function quotaCell(f) {
  const over = f.borrowed ? ` (+${f.borrowed} borrowed)` : "";
  return `${f.flavour} ${f.used} / ${f.nominal}${over}`;
}

function untilText(iso) {
  if (!iso) return "-";
  const s = (Date.parse(iso) - Date.now()) / 1000;
  const rel = s <= 60 ? "within a minute" : s < 3600 ? `in ~${Math.round(s / 60)} min` : `in ~${(s / 3600).toFixed(1)} h`;
  return `${rel} (${when(iso)})`;
}

function queueWaiting(q) {
  const art = el("article", { class: "wide queue-waiting", "data-queue": q.name });
  const shown = q.waiting || [];
  art.append(el("h2", {}, `Waiting in ${q.name} `, el("span", { class: "note" },
    `${q.pending} waiting for admission · ${shown.length} listed` +
    (shown.length >= QUEUE_WAITING_SHOWN ? ` (the first ${QUEUE_WAITING_SHOWN})` : ""))));
  if (!shown.length) { art.append(el("p", { class: "empty" }, "Nothing of yours waits here.")); return art; }
  const tb = el("tbody");
  shown.forEach((w) => tb.append(el("tr", { "data-name": w.name },
    td(w.position == null ? "-" : "#" + w.position, "num"), td(w.name, "name"), td(w.team), td(w.gpus, "num"),
    td(w.priority, "num"), el("td", {}, el("span", { class: "state why-" + w.reason, title: WHY[w.reason] || "" }, w.reason)),
    td(untilText(w.estimatedStart)), td(w.message))));
  art.append(el("table", { class: "queue-waiting-table" },
    el("thead", {}, el("tr", {}, el("th", { class: "num" }, "Position"), el("th", {}, "Workload"), el("th", {}, "Team"),
      el("th", { class: "num" }, "GPUs"), el("th", { class: "num" }, "Priority"), el("th", {}, "Why waiting"),
      el("th", {}, "Estimated start"), el("th", {}, "Message"))), tb));
  return art;
}

async function queuesPage() {
  const qs = (await api("/v1/queues?waiting=" + QUEUE_WAITING_SHOWN)).items;
  $("queues-empty").hidden = qs.length > 0;
  const flav = qs.flatMap((q) => q.flavours);
  const tiles = $("queue-tiles"); tiles.replaceChildren();
  [["Queues", qs.length], ["Cohorts", new Set(qs.map((q) => q.cohort || "(own) " + q.name)).size],
   ["Admitted", qs.reduce((a, q) => a + q.admitted, 0)], ["Waiting for admission", qs.reduce((a, q) => a + q.pending, 0)],
   ["GPUs in use", flav.reduce((a, f) => a + f.used, 0).toLocaleString()],
   ["GPUs borrowed", flav.reduce((a, f) => a + f.borrowed, 0).toLocaleString()]]
    .forEach(([label, v]) => tiles.append(el("div", { class: "tile" }, el("b", {}, v), el("span", {}, label))));
  const rows = qs.flatMap((q) => q.flavours.map((f) => ({ q, f })));
  chart("queue-chart", { type: "bar",
    data: { labels: rows.map(({ q, f }) => `${q.name} · ${f.flavour}`), datasets: [
      { label: "used within nominal", data: rows.map(({ f }) => Math.min(f.used, f.nominal)), backgroundColor: "#2f6fb0" },
      { label: "borrowed from the cohort", data: rows.map(({ f }) => f.borrowed), backgroundColor: "#f28e2b" },
      { label: "nominal, idle (lendable)", data: rows.map(({ f }) => Math.max(0, f.nominal - f.used)),
        backgroundColor: "#d5dae3" }] },
    options: { indexAxis: "y", scales: { x: { stacked: true, title: { display: true, text: "GPUs" } }, y: { stacked: true } },
      plugins: { legend: { position: "top" } } } });
  const tb = $("queues").tBodies[0]; tb.replaceChildren();
  qs.forEach((q) => tb.append(el("tr", { "data-queue": q.name }, td(q.name, "name"), td(q.cohort || "-"),
    td(q.weight, "num"), td(q.teams.join(", ") || "-"),
    el("td", {}, ...q.flavours.map((f) => el("div", { class: "quota" }, quotaCell(f)))),
    td(q.flavours.reduce((a, f) => a + f.borrowed, 0), "num"), td(q.admitted, "num"), td(q.preempting, "num"),
    td(q.pending, "num"))));
  $("queue-waiting").replaceChildren(...qs.map(queueWaiting));
  return null;
}
