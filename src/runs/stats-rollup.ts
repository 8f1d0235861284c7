import { DURATION_BUCKETS_MS } from "../db/schema";
import type { RunStatus } from "./transitions";

const OUTCOME_COLUMNS: Partial<Record<RunStatus, string>> = {
  succeeded: "succeeded",
  failed: "failed",
  dead: "dead",
  cancelled: "cancelled",
  missed: "missed",
  skipped: "skipped",
  expired: "expired",
};

const HOUR_MS = 3_600_000;

/** Index of the histogram bucket a duration falls in (the last is +Inf). */
export function bucketIndex(durationMs: number): number {
  const i = DURATION_BUCKETS_MS.findIndex((upper) => durationMs <= upper);
  return i === -1 ? DURATION_BUCKETS_MS.length : i;
}

export interface FinishedRun {
  runId: string;
  jobId: string | null;
  status: RunStatus;
  finishedAt: number;
  durationMs: number | null;
}

/**
 * Adds one finished run to its job's hourly rollup. It must directly follow
 * the conditional status update in the same D1 batch: `changes()` makes it a
 * no-op when that update matched nothing, so a duplicate is never counted.
 */
export function rollupStatement(run: FinishedRun): { sql: string; params: (string | number)[] } {
  const outcome = OUTCOME_COLUMNS[run.status];
  if (!outcome) throw new Error(`status ${run.status} is not a final outcome`);
  const hour = Math.floor(run.finishedAt / HOUR_MS) * HOUR_MS;
  const hasDuration = run.durationMs !== null;
  const bucket = hasDuration ? `b${bucketIndex(run.durationMs ?? 0)}` : undefined;
  const columns = ["job_id", "hour", outcome, "duration_count", "duration_sum_ms", "last_run_id", "last_status", "last_finished_at"];
  const params: (string | number)[] = [
    run.jobId ?? "",
    hour,
    1,
    hasDuration ? 1 : 0,
    run.durationMs ?? 0,
    run.runId,
    run.status,
    run.finishedAt,
  ];
  if (bucket) {
    columns.push(bucket);
    params.push(1);
  }
  const sql = `INSERT INTO job_stats (${columns.map((c) => `"${c}"`).join(", ")})
    SELECT ${params.map(() => "?").join(", ")} WHERE changes() > 0
    ON CONFLICT (job_id, hour) DO UPDATE SET
      "${outcome}" = "${outcome}" + 1,
      duration_count = duration_count + excluded.duration_count,
      duration_sum_ms = duration_sum_ms + excluded.duration_sum_ms${bucket ? `, "${bucket}" = "${bucket}" + 1` : ""},
      last_run_id = CASE WHEN excluded.last_finished_at >= coalesce(last_finished_at, 0) THEN excluded.last_run_id ELSE last_run_id END,
      last_status = CASE WHEN excluded.last_finished_at >= coalesce(last_finished_at, 0) THEN excluded.last_status ELSE last_status END,
      last_finished_at = max(coalesce(last_finished_at, 0), excluded.last_finished_at)`;
  return { sql, params };
}
