import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { DURATION_BUCKETS_MS, jobStats, jobTotals, statsFlushes } from "../db/schema";

/**
 * Per-job totals for /metrics. The hourly rollups (job_stats) grow by an hour per job;
 * the heartbeat folds each closed hour into job_totals, so a scrape reads one row per live
 * job plus the hours after the watermark (the current hour, and the last one for a few minutes).
 */

const HOUR_MS = 3_600_000;
/** An hour is folded once it ended this long ago: a run's rollup lands moments after its finished_at. */
const CLOSE_GRACE_MS = 15 * 60_000;
/** A fold covers at most this many hours of history, so one catching up on years stays a short query. */
const FOLD_HOURS = 168;
/** scheduler_state key: the start of the last hour folded into job_totals (epoch ms). */
const STATS_WATERMARK_KEY = "stats_folded_through";

const OUTCOMES = ["succeeded", "failed", "dead", "cancelled", "missed", "skipped", "expired"] as const;
const BUCKETS = Array.from({ length: DURATION_BUCKETS_MS.length + 1 }, (_, i) => `b${i}`);
const COUNTERS = [...OUTCOMES, "duration_count", "duration_sum_ms", ...BUCKETS];

/** A job's counters (job_id '' for ad-hoc tasks), as /metrics reports them. */
export interface JobCounters extends Record<(typeof OUTCOMES)[number], number> {
  job_id: string;
  duration_count: number;
  duration_sum_ms: number;
  /** Count per duration bucket (DURATION_BUCKETS_MS, then +Inf). */
  buckets: number[];
}

// Tasks, static schedules and jobs that exist: a deleted job's rows (a run that finished after
// the delete) are never folded nor shown.
const LIVE = `(s.job_id = '' OR s.job_id LIKE 'static:%' OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id))`;
const WATERMARK = `coalesce((SELECT CAST(value AS INTEGER) FROM scheduler_state WHERE key = '${STATS_WATERMARK_KEY}'), -1)`;
const columnList = COUNTERS.map((c) => `"${c}"`).join(", ");
const sums = COUNTERS.map((c) => `sum(s."${c}") AS "${c}"`).join(", ");

/**
 * Every live job's totals: job_totals plus the hourly rows after the watermark, in one statement
 * so a fold committed meanwhile cannot count an hour twice or not at all.
 */
export async function liveJobCounters(db: Db): Promise<JobCounters[]> {
  const { results } = await db.$client
    .prepare(
      `SELECT s.job_id, ${sums} FROM (
        SELECT job_id, ${columnList} FROM job_totals
        UNION ALL
        SELECT job_id, ${columnList} FROM job_stats WHERE hour > ${WATERMARK}
      ) s GROUP BY s.job_id HAVING ${LIVE} ORDER BY s.job_id`,
    )
    .all<Record<string, number | string>>();
  return results.map((r) => ({
    job_id: String(r.job_id),
    ...(Object.fromEntries(OUTCOMES.map((o) => [o, Number(r[o] ?? 0)])) as Record<(typeof OUTCOMES)[number], number>),
    duration_count: Number(r.duration_count ?? 0),
    duration_sum_ms: Number(r.duration_sum_ms ?? 0),
    buckets: BUCKETS.map((b) => Number(r[b] ?? 0)),
  }));
}

/**
 * Folds closed hours after the watermark into job_totals (at most FOLD_HOURS of history) and
 * moves the watermark, in one D1 batch. Both statements check the watermark this call read, so
 * a repeated or concurrent tick adds nothing twice. Returns the number of totals rows written.
 */
export async function foldClosedHours(db: Db, now: number): Promise<number> {
  const d1 = db.$client;
  const lastClosed = Math.floor((now - CLOSE_GRACE_MS) / HOUR_MS) * HOUR_MS - HOUR_MS;
  const through = (await d1.prepare(`SELECT ${WATERMARK} AS h`).first<{ h: number }>())?.h ?? -1;
  if (through >= lastClosed) return 0;
  // Skips hours without rollups, so a first fold does not walk from 1970.
  const first = (await d1.prepare("SELECT min(hour) AS h FROM job_stats WHERE hour > ?").bind(through).first<{ h: number | null }>())?.h;
  const upTo = first === null || first === undefined ? lastClosed : Math.min(lastClosed, first + (FOLD_HOURS - 1) * HOUR_MS);
  const [folded] = await d1.batch([
    d1
      .prepare(
        `INSERT INTO job_totals (job_id, ${columnList})
         SELECT s.job_id, ${COUNTERS.map((c) => `sum(s."${c}")`).join(", ")} FROM job_stats s
         WHERE s.hour > ? AND s.hour <= ? AND ${LIVE} AND ${WATERMARK} = ?
         GROUP BY s.job_id
         ON CONFLICT (job_id) DO UPDATE SET ${COUNTERS.map((c) => `"${c}" = "${c}" + excluded."${c}"`).join(", ")}`,
      )
      .bind(through, upTo, through),
    d1
      .prepare(
        `INSERT INTO scheduler_state (key, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
         WHERE CAST(scheduler_state.value AS INTEGER) = ?`,
      )
      .bind(STATS_WATERMARK_KEY, String(upTo), now, through),
  ]);
  return folded?.meta.changes ?? 0;
}

/**
 * The statements that forget a deleted job's statistics, totals and hourly rollups, so a job
 * created later with its id starts at zero (sent in the deletion's own D1 batch).
 */
export function forgetJobStatsQueries(db: Db, jobId: string) {
  return [
    db.delete(jobTotals).where(eq(jobTotals.jobId, jobId)).toSQL(),
    db.delete(jobStats).where(eq(jobStats.jobId, jobId)).toSQL(),
    // The JobObject's flush mark: a job created again with this id counts from its own start.
    db
      .delete(statsFlushes)
      .where(eq(statsFlushes.ownerId, `job:${jobId}`))
      .toSQL(),
  ];
}
