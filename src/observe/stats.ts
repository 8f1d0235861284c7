import { z } from "@hono/zod-openapi";
import type { Db } from "../db/client";
import { DURATION_BUCKETS_MS } from "../db/schema";
import type { JobSchedule } from "../scheduling/job-schedule";
import { quantileFromBuckets } from "./histogram";

const BUCKETS = DURATION_BUCKETS_MS.length + 1;
const bucketColumns = Array.from({ length: BUCKETS }, (_, i) => `b${i}`);
const OUTCOMES = ["succeeded", "failed", "dead", "cancelled", "missed", "skipped", "expired"] as const;

export interface StatsRow {
  job_id: string;
  succeeded: number;
  failed: number;
  dead: number;
  cancelled: number;
  missed: number;
  skipped: number;
  expired: number;
  duration_count: number;
  duration_sum_ms: number;
  buckets: number[];
  last_run_id: string | null;
  last_status: string | null;
  last_finished_at: number | null;
  /** When the job fires (null for tasks and deleted jobs): the API computes next_run_at from it. */
  schedule: JobSchedule | null;
}

/** Rolled-up counters per job since `sinceMs` (whole hours), optionally for one job. Scans rollups, never runs. */
export async function statsSince(db: Db, sinceMs: number, jobId?: string): Promise<StatsRow[]> {
  const hour = Math.floor(sinceMs / 3_600_000) * 3_600_000;
  const sums = [...OUTCOMES, "duration_count", "duration_sum_ms", ...bucketColumns].map((c) => `sum("${c}") AS "${c}"`).join(", ");
  // With one max() aggregate, SQLite takes the bare last_* columns from the row holding that max.
  const sql = `SELECT s.*, j.state, j."trigger", j.timezone, j.start_date, j.end_date, j.jitter, j.anchored_at, j.created_at FROM (
      SELECT job_id, ${sums}, max(last_finished_at) AS last_finished_at, last_run_id, last_status
      FROM job_stats WHERE hour >= ?${jobId === undefined ? "" : " AND job_id = ?"} GROUP BY job_id
    ) s LEFT JOIN jobs j ON j.id = s.job_id ORDER BY s.job_id`;
  const statement = db.$client.prepare(sql);
  const { results } = await (jobId === undefined ? statement.bind(hour) : statement.bind(hour, jobId)).all<
    Record<string, number | string | null>
  >();
  return results.map((r) => ({
    job_id: String(r.job_id),
    ...(Object.fromEntries(OUTCOMES.map((o) => [o, Number(r[o] ?? 0)])) as Record<(typeof OUTCOMES)[number], number>),
    duration_count: Number(r.duration_count ?? 0),
    duration_sum_ms: Number(r.duration_sum_ms ?? 0),
    buckets: bucketColumns.map((c) => Number(r[c] ?? 0)),
    last_run_id: (r.last_run_id as string | null) ?? null,
    last_status: (r.last_status as string | null) ?? null,
    last_finished_at: r.last_finished_at === null ? null : Number(r.last_finished_at),
    schedule: typeof r.trigger === "string" ? scheduleOf(r) : null,
  }));
}

const msOrNull = (value: number | string | null | undefined) => (value === null || value === undefined ? null : Number(value));

function scheduleOf(r: Record<string, number | string | null>): JobSchedule {
  return {
    state: String(r.state),
    trigger: JSON.parse(String(r.trigger)) as unknown,
    timezone: String(r.timezone),
    startDate: msOrNull(r.start_date),
    endDate: msOrNull(r.end_date),
    jitter: Number(r.jitter ?? 0),
    anchoredAt: msOrNull(r.anchored_at),
    createdAt: Number(r.created_at),
  };
}

export const JobStats = z
  .object({
    job_id: z.string().nullable().openapi({ description: "null for ad-hoc tasks; absent in the overall figure" }),
    runs: z.object({
      total: z.number().int(),
      succeeded: z.number().int(),
      failed: z.number().int(),
      dead: z.number().int(),
      cancelled: z.number().int(),
      missed: z.number().int(),
      skipped: z.number().int(),
      expired: z.number().int(),
    }),
    success_rate: z.number().nullable().openapi({ description: "succeeded / (succeeded + failed + dead)" }),
    duration_ms: z.object({ mean: z.number().nullable(), p50: z.number().nullable(), p95: z.number().nullable() }),
    last_run: z.object({ id: z.string(), status: z.string(), finished_at: z.string() }).nullable(),
    next_run_at: z.string().nullable(),
  })
  .openapi("JobStats");
export type JobStats = z.infer<typeof JobStats>;

const round = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);

/** Sums several rows into one (the overall figure). */
export function combine(rows: StatsRow[]): StatsRow {
  const zero: StatsRow = {
    job_id: "",
    succeeded: 0,
    failed: 0,
    dead: 0,
    cancelled: 0,
    missed: 0,
    skipped: 0,
    expired: 0,
    duration_count: 0,
    duration_sum_ms: 0,
    buckets: new Array<number>(BUCKETS).fill(0),
    last_run_id: null,
    last_status: null,
    last_finished_at: null,
    schedule: null,
  };
  const total = { ...zero, buckets: [...zero.buckets] };
  for (const r of rows) {
    for (const o of OUTCOMES) total[o] += r[o];
    total.duration_count += r.duration_count;
    total.duration_sum_ms += r.duration_sum_ms;
    total.buckets = total.buckets.map((b, i) => b + (r.buckets[i] ?? 0));
    if ((r.last_finished_at ?? 0) > (total.last_finished_at ?? 0)) {
      total.last_run_id = r.last_run_id;
      total.last_status = r.last_status;
      total.last_finished_at = r.last_finished_at;
    }
  }
  return total;
}

/** The wire shape of one job's (or the overall) statistics. */
export function presentStats(row: StatsRow, jobId: string | null, nextRunAt: number | null): JobStats {
  const total = OUTCOMES.reduce((n, o) => n + row[o], 0);
  const judged = row.succeeded + row.failed + row.dead;
  return {
    job_id: jobId,
    runs: {
      total,
      succeeded: row.succeeded,
      failed: row.failed,
      dead: row.dead,
      cancelled: row.cancelled,
      missed: row.missed,
      skipped: row.skipped,
      expired: row.expired,
    },
    success_rate: judged === 0 ? null : Math.round((row.succeeded / judged) * 10_000) / 10_000,
    duration_ms: {
      mean: row.duration_count === 0 ? null : round(row.duration_sum_ms / row.duration_count),
      p50: round(quantileFromBuckets(row.buckets, 0.5)),
      p95: round(quantileFromBuckets(row.buckets, 0.95)),
    },
    last_run:
      row.last_run_id && row.last_status && row.last_finished_at !== null
        ? { id: row.last_run_id, status: row.last_status, finished_at: new Date(row.last_finished_at).toISOString() }
        : null,
    next_run_at: nextRunAt === null ? null : new Date(nextRunAt).toISOString(),
  };
}
