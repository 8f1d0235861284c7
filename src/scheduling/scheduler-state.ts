import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { schedulerState } from "../db/schema";
import { log } from "../log";

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
  forgetPauseFlag();
  await db
    .insert(schedulerState)
    .values({ key: PAUSED_KEY, value: String(paused), updatedAt: now })
    .onConflictDoUpdate({ target: schedulerState.key, set: { value: String(paused), updatedAt: now } });
}

/** How long an isolate trusts the scheduler's pause flag it last read. */
const PAUSE_FLAG_TTL_MS = 2_000;
/** A read of the flag this much older is taken for lost: the next fire reads again. */
const READ_LOST_MS = 5_000;
let pauseFlag: { paused: boolean; readAt: number } | undefined;
/** Since when a request of this isolate has been reading the flag (undefined: none is). */
let readingSince: number | undefined;

/**
 * schedulerPaused, read at most once per PAUSE_FLAG_TTL_MS per isolate: a fire checks the flag
 * without a D1 round trip on its path, so a scheduler-wide pause takes effect within two seconds
 * (and one read), and a D1 outage does not stop fires. While one request reads it, fires due
 * together go on the copy this isolate holds: a request cannot wait on another one's I/O.
 */
export async function schedulerPausedRecently(db: Db, now: number): Promise<boolean> {
  if (pauseFlag && now - pauseFlag.readAt < PAUSE_FLAG_TTL_MS && now >= pauseFlag.readAt) return pauseFlag.paused;
  if (pauseFlag && readingSince !== undefined && now - readingSince < READ_LOST_MS) return pauseFlag.paused;
  const started = now;
  readingSince = started;
  try {
    const paused = await schedulerPaused(db);
    pauseFlag = { paused, readAt: now };
    return paused;
  } catch (error) {
    // D1 is down: fires keep their schedule, with the flag as last read (not paused if never read).
    log("warn", "scheduler_flag_unreadable", { error: error instanceof Error ? error.message : String(error) });
    return pauseFlag?.paused ?? false;
  } finally {
    if (readingSince === started) readingSince = undefined;
  }
}

/** Forgets the cached flag (after this isolate changed it). */
export function forgetPauseFlag(): void {
  pauseFlag = undefined;
  readingSince = undefined;
}
