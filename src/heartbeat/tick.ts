import { and, eq, isNull, lt, or } from "drizzle-orm";
import { database } from "../db/client";
import { jobs } from "../db/schema";
import type { Env } from "../env";
import { dispatchRun } from "../execution/dispatch";
import { onRunFinished } from "../execution/finished";
import { jobObject } from "../jobs/present";
import { overdueJobs } from "../jobs/store";
import { log } from "../log";
import { createRun } from "../runs/create";
import { overdueRuns, reclaimExpiredLease, requeueStaleRun } from "../runs/store";
import { isFinal, type RunStatus } from "../runs/transitions";
import { HEARTBEAT_CRON, staticSchedules } from "./static-schedules";
import { recordHeartbeat } from "./state";

/** A job whose next fire is this late has lost its alarm. */
const LATE_JOB_MS = 60_000;
/** A waiting run this far past due has lost its queue message. */
const LOST_MESSAGE_MS = 5 * 60_000;
/** Work per tick is bounded; what is left waits for the next minute. */
const BATCH = 100;

/**
 * The Cron Trigger's work. A tick is a nudge, not a promise: running one
 * twice, or missing ten, leaves the system consistent. Its cost grows with
 * the number of late jobs and runs (indexed scans), not with all jobs.
 */
export async function runHeartbeat(env: Env, scheduledTime: number, cron = HEARTBEAT_CRON, now = Date.now()): Promise<void> {
  for (const schedule of staticSchedules.filter((s) => s.cron === cron)) await fireStaticSchedule(env, schedule.cron, schedule.target, scheduledTime);
  if (cron !== HEARTBEAT_CRON) return;
  const db = database(env.DB);
  await recordHeartbeat(db, scheduledTime, now);
  const rearmed = await rearmLateJobs(env, now);
  const recovered = await recoverOverdueRuns(env, now);
  const overdue = await checkSuccessDeadlines(env, now);
  log("info", "heartbeat", { scheduled_time: new Date(scheduledTime).toISOString(), rearmed, recovered, overdue });
}

async function fireStaticSchedule(env: Env, cron: string, target: StaticTarget, scheduledTime: number): Promise<void> {
  // The fire slot makes a duplicated Cron Trigger invocation create no second run.
  await createRun(env, { target, dueAt: scheduledTime, priority: "default", retry: undefined, timeoutSeconds: 600, requestId: null, jobId: `static:${cron}`, fireSlot: scheduledTime });
}
type StaticTarget = (typeof staticSchedules)[number]["target"];

/** Re-arms active jobs whose next fire is overdue or unknown (a lost alarm, a failed deploy). */
async function rearmLateJobs(env: Env, now: number): Promise<number> {
  const late = await database(env.DB)
    .select()
    .from(jobs)
    .where(and(eq(jobs.state, "active"), or(isNull(jobs.nextRunAt), lt(jobs.nextRunAt, now - LATE_JOB_MS))))
    .limit(BATCH)
    .all();
  for (const job of late) await jobObject(env, job.id).ensureArmed(job);
  return late.length;
}

/** The dead-man's switch: tells each job past its success deadline (an indexed scan of overdue jobs only). */
async function checkSuccessDeadlines(env: Env, now: number): Promise<number> {
  const overdue = await overdueJobs(database(env.DB), now, BATCH);
  for (const job of overdue) await jobObject(env, job.id).deadlineMissed(now);
  return overdue.length;
}

/** Reclaims runs whose lease expired and re-sends waiting runs whose message was lost. */
async function recoverOverdueRuns(env: Env, now: number): Promise<number> {
  const db = database(env.DB);
  const overdue = await overdueRuns(db, now - LOST_MESSAGE_MS, now, BATCH);
  for (const run of overdue) {
    const recovered = run.status === "running" ? await reclaimExpiredLease(db, run, now) : await requeueStaleRun(db, run, now);
    if (!recovered) continue;
    if (isFinal(recovered.status as RunStatus)) await onRunFinished(env, recovered);
    else await dispatchRun(env, recovered, now);
  }
  return overdue.length;
}
