import { eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { schedulerState } from "../db/schema";

export const HEARTBEAT_KEY = "heartbeat_at";
/** When the heartbeat last ticked again after a gap (D1 or the Cron Trigger was down). */
export const RESUMED_KEY = "heartbeat_resumed_at";

/**
 * Records the heartbeat tick (a later scheduledTime never goes backwards),
 * and notes when it resumes after a gap: a tick more than `gapMs` after the
 * last one recorded. Returns when it last resumed, if it ever did.
 */
export async function recordHeartbeat(db: Db, scheduledTime: number, now: number, gapMs: number): Promise<{ resumedAt?: number }> {
  const rows = await db
    .select()
    .from(schedulerState)
    .where(inArray(schedulerState.key, [HEARTBEAT_KEY, RESUMED_KEY]))
    .all();
  const previousTick = rows.find((row) => row.key === HEARTBEAT_KEY);
  const resumed = rows.find((row) => row.key === RESUMED_KEY);
  const gap = previousTick !== undefined && scheduledTime - Number(previousTick.value) > gapMs;
  const record = db
    .insert(schedulerState)
    .values({ key: HEARTBEAT_KEY, value: String(scheduledTime), updatedAt: now })
    .onConflictDoUpdate({
      target: schedulerState.key,
      set: { value: String(scheduledTime), updatedAt: now },
      setWhere: sql`CAST(${schedulerState.value} AS INTEGER) < ${scheduledTime}`,
    });
  if (!gap) {
    await record;
    return resumed ? { resumedAt: Number(resumed.value) } : {};
  }
  const noteResumed = db
    .insert(schedulerState)
    .values({ key: RESUMED_KEY, value: String(now), updatedAt: now })
    .onConflictDoUpdate({ target: schedulerState.key, set: { value: String(now), updatedAt: now } });
  await db.batch([record, noteResumed]);
  return { resumedAt: now };
}

/** The time of the last heartbeat tick, or undefined if none was recorded. */
export async function lastHeartbeat(db: Db): Promise<number | undefined> {
  const row = await db.select().from(schedulerState).where(eq(schedulerState.key, HEARTBEAT_KEY)).get();
  return row ? row.updatedAt : undefined;
}
