import { database } from "../db/client";
import { DURATION_BUCKETS_MS } from "../db/schema";
import type { Env } from "../env";
import { lastHeartbeat } from "../heartbeat/state";
import { type JobRow, listJobs } from "../jobs/store";
import { quantileFromBuckets } from "../observe/histogram";
import { combine, type StatsRow, statsSince } from "../observe/stats";
import { freshenTaskStats } from "../runs/create";
import { resolvedTriggerOf } from "../scheduling/job-schedule";
import { schedulerPaused } from "../scheduling/scheduler-state";
import type { FireTime } from "../scheduling/trigger-schema";
import { previewFires } from "../scheduling/triggers";

const HOUR_MS = 3_600_000;
const WINDOW_HOURS = 24;
const MAX_JOBS = 100;
const bucketSums = Array.from({ length: DURATION_BUCKETS_MS.length + 1 }, (_, i) => `sum(b${i}) AS b${i}`).join(", ");

export interface HourPoint {
  hour: number;
  succeeded: number;
  failed: number;
  dead: number;
  missed: number;
  skipped: number;
  cancelled: number;
  p50: number | null;
  p95: number | null;
}

export interface Failure {
  id: string;
  jobId: string | null;
  status: string;
  finishedAt: number | null;
  error: string;
}

export interface DashboardData {
  now: number;
  paused: boolean;
  heartbeatAt: number | undefined;
  overall: StatsRow;
  perJob: Map<string, StatsRow>;
  hours: HourPoint[];
  jobs: { row: JobRow; nextFires: FireTime[] }[];
  moreJobs: boolean;
  failures: Failure[];
}

async function hourly(env: Env, since: number): Promise<HourPoint[]> {
  const { results } = await env.DB.prepare(
    `SELECT hour, sum(succeeded) AS succeeded, sum(failed) AS failed, sum(dead) AS dead, sum(missed) AS missed, sum(skipped) AS skipped, sum(cancelled) AS cancelled, ${bucketSums}
     FROM job_stats WHERE hour >= ? GROUP BY hour`,
  )
    .bind(since)
    .all<Record<string, number>>();
  const byHour = new Map(results.map((r) => [Number(r.hour), r]));
  return Array.from({ length: WINDOW_HOURS }, (_, i) => {
    const hour = since + i * HOUR_MS;
    const r = byHour.get(hour);
    const buckets = Array.from({ length: DURATION_BUCKETS_MS.length + 1 }, (_, b) => Number(r?.[`b${b}`] ?? 0));
    return {
      hour,
      succeeded: Number(r?.succeeded ?? 0),
      failed: Number(r?.failed ?? 0),
      dead: Number(r?.dead ?? 0),
      missed: Number(r?.missed ?? 0),
      skipped: Number(r?.skipped ?? 0),
      cancelled: Number(r?.cancelled ?? 0),
      p50: quantileFromBuckets(buckets, 0.5),
      p95: quantileFromBuckets(buckets, 0.95),
    };
  });
}

async function latestFailures(env: Env): Promise<Failure[]> {
  // The failure index, and the runs D1 kept before runs moved to their owners (until they age out).
  const { results } = await env.DB.prepare(
    `SELECT id, job_id, status, finished_at, json_extract(run, '$.error') AS error FROM run_failures
     UNION ALL
     SELECT id, job_id, status, finished_at, error FROM runs WHERE status IN ('failed', 'dead')
     ORDER BY finished_at DESC LIMIT 10`,
  ).all<{ id: string; job_id: string | null; status: string; finished_at: number | null; error: string | null }>();
  return results.map((r) => {
    let message = r.error ?? "";
    try {
      const parsed = JSON.parse(message) as { message?: unknown };
      if (typeof parsed.message === "string") message = parsed.message;
    } catch {
      // not JSON: show as stored
    }
    return { id: r.id, jobId: r.job_id, status: r.status, finishedAt: r.finished_at, error: message };
  });
}

/** Everything the dashboard shows, from bounded queries over rollups and indexes. */
export async function loadDashboard(env: Env, now = Date.now()): Promise<DashboardData> {
  await freshenTaskStats(env);
  const db = database(env.DB);
  const since = Math.floor(now / HOUR_MS) * HOUR_MS - (WINDOW_HOURS - 1) * HOUR_MS;
  const [paused, heartbeatAt, stats, hours, page, failures] = await Promise.all([
    schedulerPaused(db),
    lastHeartbeat(db),
    statsSince(db, since),
    hourly(env, since),
    listJobs(db, { limit: MAX_JOBS }),
    latestFailures(env),
  ]);
  const jobs = page.items.map((row) => ({
    row,
    nextFires: row.state === "active" ? previewFires(resolvedTriggerOf(row), now, 3).items : [],
  }));
  return {
    now,
    paused,
    heartbeatAt,
    overall: combine(stats),
    perJob: new Map(stats.map((s) => [s.job_id, s])),
    hours,
    jobs,
    moreJobs: page.nextCursor !== null,
    failures,
  };
}
