import { and, inArray, lt } from "drizzle-orm";
import type { Db } from "../db/client";
import { runs } from "../db/schema";
import { newId } from "../ids";
import { FINAL } from "./transitions";

/** Default days finished runs are kept (RUN_RETENTION_DAYS overrides it). */
export const DEFAULT_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;
// D1 caps one query at 30 s and runs one query at a time: short slices keep each DELETE
// brief (40-50 ms locally) and let other work in between.
const SLICE = 1000;

/**
 * What one heartbeat tick spends on retention at most: 60 slices (60,000 runs), and no slice
 * starts after 20 s. That is 86 million runs a day, far above what fits in one D1 database.
 */
export const RETENTION_PER_TICK = { maxRows: 60 * SLICE, budgetMs: 20_000 } as const;

/** The retention window in days, from RUN_RETENTION_DAYS when it is a positive number. */
export function retentionDays(setting: string | undefined): number {
  const days = Number(setting);
  return Number.isFinite(days) && days >= 1 ? Math.floor(days) : DEFAULT_RETENTION_DAYS;
}

/** How much one call may delete: a row cap, and optionally a time after which no new slice starts. */
export interface RetentionBudget {
  maxRows: number;
  /** Epoch ms. */
  until?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Deletes finished runs created before `olderThanDays` ago, in slices, until none are left
 * or the budget is spent. Ids start with their creation time, so the scan is a primary-key range.
 */
export async function deleteOldRuns(db: Db, olderThanDays: number, budget: RetentionBudget, now = Date.now()) {
  const cutoff = now - olderThanDays * DAY_MS;
  const before = newId("run", cutoff).slice(0, "run_".length + 10);
  const spent = () => budget.signal?.aborted === true || (budget.until !== undefined && Date.now() >= budget.until);
  let deleted = 0;
  while (deleted < budget.maxRows && !spent()) {
    const size = Math.min(SLICE, budget.maxRows - deleted);
    const victims = db
      .select({ id: runs.id })
      .from(runs)
      .where(and(lt(runs.id, before), inArray(runs.status, [...FINAL])))
      .limit(size);
    const { meta } = await db.delete(runs).where(inArray(runs.id, victims)).run();
    deleted += meta.changes;
    if (meta.changes < size) break;
  }
  return { deleted, cutoff: new Date(cutoff).toISOString() };
}
