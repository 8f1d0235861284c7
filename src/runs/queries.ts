import { and, desc, eq, gte, isNull, lt, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { runs } from "../db/schema";
import { newId } from "../ids";
import type { RunRow } from "./store";
import { isFinal, type RunStatus } from "./transitions";

export interface RunFilter {
  status?: string | undefined;
  jobId?: string | undefined;
  /** Only runs without a job (the ad-hoc tasks). */
  onlyTasks?: boolean | undefined;
  since?: number | undefined;
  until?: number | undefined;
  cursor?: string | undefined;
  limit: number;
}

// Ids begin with their creation time, so a time range is an id range on the primary key.
const idAt = (ms: number) => newId("run", ms).slice(0, "run_".length + 10);

/**
 * A status condition that a small partial index can serve. SQLite uses a partial index only when
 * the query repeats its WHERE (literally): unfinished statuses name runs_pending_idx's, failed and
 * dead runs_failed_idx's. unlikely() tells the planner that few runs match, so it scans that index
 * rather than every run in id order. Other final statuses are common: id order serves them best.
 */
function statusFilter(status: string): SQL[] {
  if (status === "failed" || status === "dead")
    return [sql`unlikely(${runs.status} = ${status})`, sql`${runs.status} IN ('failed', 'dead')`];
  if (!isFinal(status as RunStatus)) return [sql`unlikely(${runs.status} = ${status})`, isNull(runs.finishedAt)];
  return [eq(runs.status, status)];
}

/** One page of the runs D1 kept before runs moved to their owners, newest first, and the cursor of the next page. */
export async function listLegacyRuns(db: Db, filter: RunFilter): Promise<{ items: RunRow[]; nextCursor: string | null }> {
  const conditions: SQL[] = [];
  if (filter.onlyTasks) conditions.push(isNull(runs.jobId));
  if (filter.status) conditions.push(...statusFilter(filter.status));
  if (filter.jobId) conditions.push(eq(runs.jobId, filter.jobId));
  if (filter.since !== undefined) conditions.push(gte(runs.id, idAt(filter.since)));
  if (filter.until !== undefined) conditions.push(lt(runs.id, idAt(filter.until)));
  if (filter.cursor) conditions.push(lt(runs.id, filter.cursor));
  const rows = await db
    .select()
    .from(runs)
    .where(and(...conditions))
    .orderBy(desc(runs.id))
    .limit(filter.limit + 1)
    .all();
  const items = rows.slice(0, filter.limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > filter.limit && last ? last.id : null };
}
