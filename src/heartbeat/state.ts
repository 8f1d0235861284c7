import { eq, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { schedulerState } from "../db/schema";

export const HEARTBEAT_KEY = "heartbeat_at";

/** Records the heartbeat tick; a later scheduledTime never goes backwards. */
export async function recordHeartbeat(db: Db, scheduledTime: number, now: number): Promise<void> {
  await db
    .insert(schedulerState)
    .values({ key: HEARTBEAT_KEY, value: String(scheduledTime), updatedAt: now })
    .onConflictDoUpdate({
      target: schedulerState.key,
      set: { value: String(scheduledTime), updatedAt: now },
      setWhere: sql`CAST(${schedulerState.value} AS INTEGER) < ${scheduledTime}`,
    });
}

/** The time of the last heartbeat tick, or undefined if none was recorded. */
export async function lastHeartbeat(db: Db): Promise<number | undefined> {
  const row = await db.select().from(schedulerState).where(eq(schedulerState.key, HEARTBEAT_KEY)).get();
  return row ? row.updatedAt : undefined;
}
