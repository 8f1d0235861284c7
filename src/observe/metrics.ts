import { createRoute, z } from "@hono/zod-openapi";
import { database } from "../db/client";
import { DURATION_BUCKETS_MS } from "../db/schema";
import type { Env } from "../env";
import { lastHeartbeat } from "../heartbeat/state";
import { openApiApp } from "../http/openapi-app";
import { taskShardCount } from "../runs/create";
import { unauthorized, unavailable } from "../schemas/common";
import { taskShard } from "../tasks/shards";
import { liveJobCounters } from "./job-totals";
import { MetricsWriter } from "./prometheus";

const OUTCOMES = ["succeeded", "failed", "dead", "cancelled", "missed", "skipped", "expired"] as const;
const LATE_JOB_MS = 60_000;
// Prometheus reserves the label `job` for the scrape target (a series' own `job` arrives as `exported_job`).
const jobLabel = (jobId: string) => ({ job_id: jobId === "" ? "(task)" : jobId });

/**
 * Tasks not yet finished, by status: each task shard's count (one call per shard) and the runs D1
 * kept before runs moved to their owners. A job's runs in flight are its JobObject's (GET /v1/jobs/:id/runs).
 */
async function tasksInFlight(env: Env): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const add = (status: string, n: number) => {
    counts[status] = (counts[status] ?? 0) + n;
  };
  const [legacy, ...shards] = await Promise.all([
    // finished_at IS NULL lets runs_pending_idx (unfinished runs only) serve the count.
    env.DB.prepare(
      "SELECT status, count(*) AS n FROM runs WHERE finished_at IS NULL AND status IN ('scheduled','queued','running','retrying') GROUP BY status",
    ).all<{
      status: string;
      n: number;
    }>(),
    ...Array.from({ length: taskShardCount(env) }, (_, n) => taskShard(env, n).pendingCounts(String(n))),
  ]);
  for (const r of legacy.results) add(r.status, r.n);
  for (const shard of shards) for (const [status, n] of Object.entries(shard)) add(status, n);
  return counts;
}

/** Builds the exposition from D1 (rollups and indexed counts), so every isolate reports the same numbers. */
export async function renderMetrics(env: Env, now = Date.now()): Promise<string> {
  const db = database(env.DB);
  const d1 = env.DB;
  const [stats, jobStates, runStates, late, heartbeat, hosts] = await Promise.all([
    liveJobCounters(db),
    d1.prepare("SELECT state, count(*) AS n FROM jobs GROUP BY state").all<{ state: string; n: number }>(),
    tasksInFlight(env),
    d1
      .prepare("SELECT count(*) AS n FROM jobs WHERE state = 'active' AND next_run_at < ?")
      .bind(now - LATE_JOB_MS)
      .first<{ n: number }>(),
    lastHeartbeat(db),
    d1
      .prepare(
        "SELECT host, circuit, consecutive_failures, deferred_circuit, deferred_concurrency, deferred_rate_limit FROM host_guards ORDER BY host LIMIT 1000",
      )
      .all<{
        host: string;
        circuit: string;
        consecutive_failures: number;
        deferred_circuit: number;
        deferred_concurrency: number;
        deferred_rate_limit: number;
      }>(),
  ]);
  const out = new MetricsWriter();
  out.family("taskflare_runs_total", "counter", "Finished runs by job and outcome.");
  for (const row of stats)
    for (const outcome of OUTCOMES) out.sample("taskflare_runs_total", { ...jobLabel(row.job_id), outcome }, row[outcome]);
  out.family("taskflare_run_duration_seconds", "histogram", "Duration of finished runs' last attempt.");
  const bounds = DURATION_BUCKETS_MS.map((ms) => ms / 1000);
  for (const row of stats)
    out.histogram("taskflare_run_duration_seconds", jobLabel(row.job_id), bounds, row.buckets, row.duration_sum_ms / 1000);
  out.family("taskflare_jobs", "gauge", "Jobs by state.");
  for (const state of ["active", "paused", "finished"])
    out.sample("taskflare_jobs", { state }, jobStates.results.find((r) => r.state === state)?.n ?? 0);
  out.family("taskflare_runs_in_flight", "gauge", "Tasks (ad-hoc runs, callbacks and alerts) not yet finished, by status.");
  for (const status of ["scheduled", "queued", "running", "retrying"])
    out.sample("taskflare_runs_in_flight", { status }, runStates[status] ?? 0);
  out.family(
    "taskflare_jobs_late",
    "gauge",
    "Active jobs more than a minute past the time their JobObject promised to report in (a lost alarm).",
  );
  out.sample("taskflare_jobs_late", {}, late?.n ?? 0);
  out.family("taskflare_heartbeat_age_seconds", "gauge", "Seconds since the last heartbeat tick (NaN before the first).");
  out.sample("taskflare_heartbeat_age_seconds", {}, heartbeat === undefined ? NaN : Math.max(0, (now - heartbeat) / 1000));
  out.family("taskflare_host_circuit_open", "gauge", "1 while a host's circuit is open or half-open, by host.");
  for (const h of hosts.results) out.sample("taskflare_host_circuit_open", { host: h.host }, h.circuit === "closed" ? 0 : 1);
  out.family("taskflare_host_consecutive_failures", "gauge", "Consecutive failed calls to a host.");
  for (const h of hosts.results) out.sample("taskflare_host_consecutive_failures", { host: h.host }, h.consecutive_failures);
  out.family("taskflare_host_deferrals_total", "counter", "Runs deferred by a host's guard, by reason (without spending an attempt).");
  for (const h of hosts.results) {
    out.sample("taskflare_host_deferrals_total", { host: h.host, reason: "circuit_open" }, h.deferred_circuit);
    out.sample("taskflare_host_deferrals_total", { host: h.host, reason: "max_concurrency" }, h.deferred_concurrency);
    out.sample("taskflare_host_deferrals_total", { host: h.host, reason: "rate_limit" }, h.deferred_rate_limit);
  }
  return out.toString();
}

const EXPOSITION = "text/plain; version=0.0.4";

const metrics = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["metrics"],
  summary: "Prometheus metrics, from D1's rollups (the same in every isolate)",
  responses: {
    200: { description: "Prometheus text exposition format 0.0.4", content: { [EXPOSITION]: { schema: z.string() } } },
    401: unauthorized,
    503: unavailable,
  },
});

/** GET /metrics (behind the API token). */
export const metricsRoutes = openApiApp().openapi(metrics, async (c) =>
  c.text(await renderMetrics(c.env), 200, { "Content-Type": `${EXPOSITION}; charset=utf-8`, "cache-control": "no-store" }),
);
