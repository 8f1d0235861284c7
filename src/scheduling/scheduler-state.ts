import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { schedulerState } from "../db/schema";

const PAUSED_KEY = "paused";

/** Whether the whole scheduler is paused (POST /v1/scheduler/pause). */
export async function schedulerPaused(db: Db): Promise<boolean> {
  const row = await db.select().from(schedulerState).where(eq(schedulerState.key, PAUSED_KEY)).get();
  return row?.value === "true";
}

/**
 * A WHERE condition that holds while the scheduler runs, for a write that
 * must not happen while it is paused (a fire's insert checks in its own round trip).
 */
export function schedulerRunningCondition(): { sql: string; params: string[] } {
  return { sql: `not exists (select 1 from "scheduler_state" where "key" = ? and "value" = 'true')`, params: [PAUSED_KEY] };
}

/** Pauses or resumes every job at once; alarms keep ticking but start nothing while paused. */
export async function setSchedulerPaused(db: Db, paused: boolean, now: number): Promise<void> {
  await db
    .insert(schedulerState)
    .values({ key: PAUSED_KEY, value: String(paused), updatedAt: now })
    .onConflictDoUpdate({ target: schedulerState.key, set: { value: String(paused), updatedAt: now } });
}
