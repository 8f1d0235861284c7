import { and, inArray, lt } from "drizzle-orm";
import type { Db } from "../db/client";
import { runs } from "../db/schema";
import { newId } from "../ids";
import { FINAL } from "./transitions";

/** Default days finished runs are kept (RUN_RETENTION_DAYS overrides it). */
export const DEFAULT_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;
// D1 caps one query at 30 s; deleting in slices keeps each statement short.
const SLICE = 500;

/** The retention window in days, from RUN_RETENTION_DAYS when it is a positive number. */
export function retentionDays(setting: string | undefined): number {
  const days = Number(setting);
  return Number.isFinite(days) && days >= 1 ? Math.floor(days) : DEFAULT_RETENTION_DAYS;
}

/**
 * Deletes finished runs created before `olderThanDays` ago, at most `maxRows`.
 * Ids start with their creation time, so the scan is a primary-key range.
 */
export async function deleteOldRuns(db: Db, olderThanDays: number, maxRows: number, now = Date.now(), signal?: AbortSignal) {
  const cutoff = now - olderThanDays * DAY_MS;
  const before = newId("run", cutoff).slice(0, "run_".length + 10);
  let deleted = 0;
  while (deleted < maxRows && !signal?.aborted) {
    const victims = db
      .select({ id: runs.id })
      .from(runs)
      .where(and(lt(runs.id, before), inArray(runs.status, [...FINAL])))
      .limit(Math.min(SLICE, maxRows - deleted));
    const removed = await db.delete(runs).where(inArray(runs.id, victims)).returning({ id: runs.id });
    deleted += removed.length;
    if (removed.length < SLICE) break;
  }
  return { deleted, cutoff: new Date(cutoff).toISOString() };
}
