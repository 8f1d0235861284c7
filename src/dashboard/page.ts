import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { JobRow } from "../jobs/store";
import { quantileFromBuckets } from "../observe/histogram";
import type { StatsRow } from "../observe/stats";
import type { Trigger } from "../scheduling/trigger-schema";
import { lineChart, rateBars, stackedBars } from "./charts";
import type { DashboardData } from "./data";

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

const successRate = (s: StatsRow | undefined) => {
  const judged = s ? s.succeeded + s.failed + s.dead : 0;
  return s && judged > 0 ? s.succeeded / judged : null;
};
const pct = (rate: number | null) => (rate === null ? "–" : `${(rate * 100).toFixed(1)}%`);
const ms = (value: number | null) => (value === null ? "–" : value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`);
const when = (at: number | null | undefined) =>
  at === null || at === undefined ? "–" : `${new Date(at).toISOString().replace("T", " ").slice(0, 19)} UTC`;
const hourLabel = (hour: number) => `${new Date(hour).toISOString().slice(11, 13)}h`;

function describeTrigger(trigger: Trigger): string {
  if (trigger.type === "cron") return `cron ${trigger.expression}${trigger.timezone ? ` (${trigger.timezone})` : ""}`;
  if (trigger.type === "date") return `once at ${trigger.run_at}`;
  const units = (["weeks", "days", "hours", "minutes", "seconds"] as const).filter((u) => trigger[u]).map((u) => `${trigger[u]} ${u}`);
  return `every ${units.join(" ")}`;
}

function actionButton(job: JobRow, action: "pause" | "resume" | "run", label: string): Html {
  return html`<form method="post" action="/dashboard/jobs/${encodeURIComponent(job.id)}/${action}"><button type="submit" class="${action}" data-job="${job.id}">${label}</button></form>`;
}

function jobRow(data: DashboardData, job: DashboardData["jobs"][number]): Html {
  const stats = data.perJob.get(job.row.id);
  const next = job.nextFires[0];
  const notes = job.nextFires.filter((f) => f.note);
  return html`<tr data-job="${job.row.id}">
    <td class="id">${job.row.id}${job.row.name !== job.row.id ? html`<div class="muted">${job.row.name}</div>` : ""}</td>
    <td><span class="state ${job.row.state}">${job.row.state}</span></td>
    <td>${describeTrigger(job.row.trigger as Trigger)}</td>
    <td class="next">${next ? html`${next.local} <span class="muted">${next.utc_offset}</span>` : "–"}
      ${notes.map((f) => html`<div class="dst-note" title="${f.at}">⚠ ${f.note}</div>`)}
      ${job.nextFires.length > 1 ? html`<details><summary>next ${job.nextFires.length}</summary>${job.nextFires.map((f) => html`<div>${f.local} ${f.utc_offset}</div>`)}</details>` : ""}</td>
    <td>${stats?.last_status ? html`<span class="status ${stats.last_status}">${stats.last_status}</span> <span class="muted">${when(stats.last_finished_at)}</span>` : "–"}</td>
    <td class="rate">${pct(successRate(stats))}</td>
    <td class="actions">${job.row.state === "paused" ? actionButton(job.row, "resume", "Resume") : actionButton(job.row, "pause", "Pause")}${actionButton(job.row, "run", "Run now")}</td>
  </tr>`;
}

/** The whole dashboard page. */
export function dashboardPage(data: DashboardData, flash: string | undefined): Html {
  const labels = data.hours.map((h) => hourLabel(h.hour));
  const durationChart = lineChart({ width: 640, height: 200, labels, title: "Run duration per hour (p50, p95)", unit: "ms" }, [
    { name: "p50", className: "p50", values: data.hours.map((h) => h.p50) },
    { name: "p95", className: "p95", values: data.hours.map((h) => h.p95) },
  ]);
  const mixChart = stackedBars({ width: 640, height: 200, labels, title: "Runs per hour by outcome", unit: "runs" }, [
    { name: "succeeded", className: "succeeded", values: data.hours.map((h) => h.succeeded) },
    { name: "failed", className: "failed", values: data.hours.map((h) => h.failed) },
    { name: "dead", className: "dead", values: data.hours.map((h) => h.dead) },
    { name: "missed", className: "missed", values: data.hours.map((h) => h.missed + h.skipped) },
  ]);
  const rates = rateBars([...data.perJob.values()].map((s) => ({ label: s.job_id === "" ? "(tasks)" : s.job_id, rate: successRate(s) })));
  const o = data.overall;
  const total = o.succeeded + o.failed + o.dead + o.cancelled + o.missed + o.skipped;
  const heartbeatAge = data.heartbeatAt === undefined ? null : Math.round((data.now - data.heartbeatAt) / 1000);
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Taskflare dashboard</title><link rel="stylesheet" href="/static/dashboard.css"></head>
<body>
<header><h1>Taskflare</h1>
  <span class="pill ${data.paused ? "bad" : "ok"}" id="scheduler-state">scheduler ${data.paused ? "paused" : "running"}</span>
  <span class="pill ${heartbeatAge !== null && heartbeatAge < 180 ? "ok" : "warn"}">heartbeat ${heartbeatAge === null ? "never" : `${heartbeatAge}s ago`}</span>
  <nav><a href="/docs">API docs</a> · <a href="/metrics">metrics</a></nav></header>
${flash ? html`<p class="flash">${flash}</p>` : ""}
<section class="cards" id="summary">
  <div class="card"><div class="label">Runs (24 h)</div><div class="value" id="total-runs">${total}</div></div>
  <div class="card"><div class="label">Success rate</div><div class="value" id="success-rate">${pct(successRate(o))}</div></div>
  <div class="card"><div class="label">p50 duration</div><div class="value" id="p50">${ms(quantileFromBuckets(o.buckets, 0.5))}</div></div>
  <div class="card"><div class="label">p95 duration</div><div class="value" id="p95">${ms(quantileFromBuckets(o.buckets, 0.95))}</div></div>
  <div class="card"><div class="label">Failed / dead</div><div class="value" id="failures-count">${o.failed} / ${o.dead}</div></div>
</section>
<section class="charts">
  <figure id="duration-trend"><figcaption>Duration trend</figcaption>${raw(durationChart)}<div class="legend"><span class="p50">p50</span><span class="p95">p95</span></div></figure>
  <figure id="status-mix"><figcaption>Status mix</figcaption>${raw(mixChart)}<div class="legend"><span class="succeeded">succeeded</span><span class="failed">failed</span><span class="dead">dead</span><span class="missed">missed/skipped</span></div></figure>
  <figure id="success-rates"><figcaption>Success rate per job (24 h)</figcaption>${raw(rates)}</figure>
</section>
<section><h2>Jobs</h2>
<table id="jobs"><thead><tr><th>Job</th><th>State</th><th>Trigger</th><th>Next fire (local)</th><th>Last run</th><th>Success</th><th></th></tr></thead>
<tbody>${data.jobs.map((job) => jobRow(data, job))}</tbody></table>
${data.moreJobs ? html`<p class="muted">Showing the first ${data.jobs.length} jobs; the API lists them all.</p>` : ""}
</section>
<section><h2>Latest failures</h2>
<table id="failures"><thead><tr><th>Run</th><th>Job</th><th>Status</th><th>Finished</th><th>Error</th></tr></thead>
<tbody>${data.failures.map((f) => html`<tr><td class="id">${f.id}</td><td>${f.jobId ?? "(task)"}</td><td><span class="status ${f.status}">${f.status}</span></td><td>${when(f.finishedAt)}</td><td class="error">${f.error}</td></tr>`)}</tbody></table>
</section>
<footer class="muted">Rendered ${when(data.now)} from D1 rollups.</footer>
</body></html>`;
}
