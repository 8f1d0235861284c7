import { inArray } from "drizzle-orm";
import type { Db } from "../db/client";
import { runs } from "../db/schema";
import { batchFirstRows, logChange } from "./run-rows";
import { rollupStatement } from "./stats-rollup";
import { type AttemptOutcome, claimQuery, finishQuery, type RunRow } from "./store";

/**
 * store.ts's state changes for many runs at once (a queue batch, a bulk
 * enqueue): one D1 round trip each, every statement still conditional on its own.
 */

/** Loads the runs a consumer batch names, in one query. */
export async function getRuns(db: Db, ids: string[]): Promise<RunRow[]> {
  if (ids.length === 0) return [];
  return db.select().from(runs).where(inArray(runs.id, ids)).all();
}

/** Claims attempts of many runs in one D1 round trip (claimQuery each); undefined where a claim missed. */
export async function claimRuns(db: Db, claims: { id: string; attempt: number; now: number }[]): Promise<(RunRow | undefined)[]> {
  if (claims.length === 0) return [];
  const claimed = await batchFirstRows(
    db,
    claims.map((c) => claimQuery(db, c.id, c.attempt, c.now).toSQL()),
  );
  for (const run of claimed) if (run) logChange(run, "waiting", "running");
  return claimed;
}

/**
 * finishAttempt for many runs in one D1 round trip. Each final update is
 * directly followed by its rollup, whose changes() guard still sees only it.
 */
export async function finishAttempts(
  db: Db,
  items: { run: RunRow; outcome: AttemptOutcome; now: number }[],
): Promise<(RunRow | undefined)[]> {
  if (items.length === 0) return [];
  const queries: { sql: string; params: unknown[] }[] = [];
  const updateAt: number[] = [];
  for (const { run, outcome, now } of items) {
    const { update, finished } = finishQuery(db, run, outcome, now);
    updateAt.push(queries.length);
    queries.push(update.toSQL());
    if (finished) queries.push(rollupStatement(finished));
  }
  const rows = await batchFirstRows(db, queries);
  return items.map(({ outcome }, i) => {
    const updated = rows[updateAt[i] ?? -1];
    if (updated) logChange(updated, "running", outcome.status, { duration_ms: updated.durationMs });
    return updated;
  });
}
