import { type Column, getTableColumns } from "drizzle-orm";
import type { Db } from "../db/client";
import { runs } from "../db/schema";
import { log, logs } from "../log";
import type { RunRow } from "./store";
import type { RunStatus } from "./transitions";

/**
 * The changes a healthy run goes through log at debug: its history is in D1
 * (GET /v1/runs/:id/attempts) and the consumer writes one line per batch with
 * the counts. At info each line is something to look at: a failed attempt, a
 * retry, a dead, cancelled, expired or skipped run.
 */
const ROUTINE: ReadonlySet<string> = new Set<RunStatus>(["scheduled", "queued", "running", "succeeded"]);

/** The one log line of a run's status change. */
export function logChange(
  run: Pick<RunRow, "id" | "jobId" | "requestId" | "attempt">,
  from: string,
  to: RunStatus,
  extra: Record<string, unknown> = {},
) {
  const level = ROUTINE.has(to) ? "debug" : "info";
  if (!logs(level)) return; // three changes a run: most are routine
  log(level, "run_state", {
    run_id: run.id,
    job_id: run.jobId,
    request_id: run.requestId,
    attempt: run.attempt,
    from,
    to,
    ...extra,
  });
}

/** The runs table's columns by property name: the one map between Drizzle's row shape and raw SQL. */
export const runColumns = Object.entries(getTableColumns(runs)) as [keyof RunRow, Column][];

/** Maps a raw D1 row (snake_case, JSON as text) to the Drizzle row shape. */
export function fromRaw(raw: Record<string, unknown>): RunRow {
  const row: Record<string, unknown> = {};
  for (const [key, column] of runColumns) {
    const value = raw[column.name];
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return row as RunRow;
}

/** Sends statements as one D1 batch (one round trip, one transaction) and maps each statement's first returned row. */
export async function batchFirstRows(db: Db, queries: { sql: string; params: unknown[] }[]): Promise<(RunRow | undefined)[]> {
  const d1 = db.$client;
  const results = await d1.batch<Record<string, unknown>>(queries.map((q) => d1.prepare(q.sql).bind(...q.params)));
  return results.map((r) => {
    const raw = r.results[0];
    return raw ? fromRaw(raw) : undefined;
  });
}
