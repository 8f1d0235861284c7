import { and, eq, isNull, lt } from "drizzle-orm";
import { database } from "../db/client";
import { jobs } from "../db/schema";
import type { Env } from "../env";
import { dispatchRun } from "../execution/dispatch";
import { onRunFinished } from "../execution/finished";
import { LOST_MESSAGE_MS, OUTCOME_GRACE_MS } from "../execution/redelivery";
import { jobObject } from "../jobs/present";
import type { JobAlerts } from "../jobs/schema";
import { type DeadlineTold, deadlinesPassed, deferSuccessDeadlines, deleteJobAndPendingRuns } from "../jobs/store";
import { log } from "../log";
import { foldClosedHours } from "../observe/job-totals";
import { createRun, taskShardCount } from "../runs/create";
import { deleteOldRuns, RETENTION_PER_TICK, retentionDays } from "../runs/retention";
import { overdueRuns, reclaimExpiredLease, requeueStaleRun } from "../runs/store";
import { isFinal, type RunStatus } from "../runs/transitions";
import { taskShard } from "../tasks/shards";
import { recordHeartbeat } from "./state";
import { HEARTBEAT_CRON, staticSchedules } from "./static-schedules";

/** A job this late past the time its JobObject promised to report in (jobs.next_run_at) has lost its alarm. */
const LATE_JOB_MS = 60_000;
/** Ticks further apart than this mean the heartbeat stopped: D1 (or the Cron Trigger) was down. */
export const HEARTBEAT_GAP_MS = 90_000;
/** Work per tick is bounded; what is left waits for the next minute. */
const BATCH = 100;
/** When to look again at a job told its deadline passed, should it have a deadline but no window. */
const DEADLINE_RECHECK_S = 3600;

/**
 * The Cron Trigger's work. A tick is a nudge, not a promise: running one
 * twice, or missing ten, leaves the system consistent. Its cost grows with
 * the number of late jobs and runs (indexed scans), not with all jobs.
 */
export async function runHeartbeat(env: Env, scheduledTime: number, cron = HEARTBEAT_CRON, now = Date.now()): Promise<void> {
  for (const schedule of staticSchedules.filter((s) => s.cron === cron))
    await fireStaticSchedule(env, schedule.cron, schedule.target, scheduledTime);
  if (cron !== HEARTBEAT_CRON) return;
  const db = database(env.DB);
  const { resumedAt } = await recordHeartbeat(db, scheduledTime, now, HEARTBEAT_GAP_MS);
  const reclaimLeases = reclaimsLeases(resumedAt, now);
  // Each repair runs on its own: one failing job or step must not stop the others.
  const [rearmed, recovered, overdue, expired, folded] = await Promise.all([
    settle("rearm_late_jobs", () => rearmLateJobs(env, now)),
    settle("recover_overdue_runs", () => recoverOverdueRuns(env, now, reclaimLeases)),
    settle("check_success_deadlines", () => checkSuccessDeadlines(env, now)),
    settle("delete_expired_runs", () => deleteExpiredRuns(env, now)),
    settle("fold_job_stats", () => foldClosedHours(db, now)),
    settle("nudge_task_shards", () => nudgeTaskShards(env)),
  ]);
  log("info", "heartbeat", {
    scheduled_time: new Date(scheduledTime).toISOString(),
    rearmed,
    recovered,
    overdue,
    expired,
    folded,
    ...(reclaimLeases ? {} : { leases_held_until: new Date((resumedAt ?? now) + OUTCOME_GRACE_MS).toISOString() }),
  });
}

/** Whether expired leases may be reclaimed now: not within OUTCOME_GRACE_MS of the heartbeat resuming after a gap. */
export function reclaimsLeases(resumedAt: number | undefined, now: number): boolean {
  return resumedAt === undefined || now < resumedAt || now >= resumedAt + OUTCOME_GRACE_MS;
}

async function settle(step: string, work: () => Promise<number>): Promise<number | null> {
  try {
    return await work();
  } catch (error) {
    log("error", "heartbeat_step_failed", { step, error: error instanceof Error ? error.message : String(error) });
    return null;
  }
}

/** Applies `repair` to each item; a failure is logged and the rest still get repaired. */
async function eachIsolated<T extends { id: string }>(items: T[], what: string, repair: (item: T) => Promise<unknown>): Promise<number> {
  let done = 0;
  for (const item of items) {
    try {
      await repair(item);
      done++;
    } catch (error) {
      log("error", "heartbeat_repair_failed", { what, id: item.id, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return done;
}

async function fireStaticSchedule(env: Env, cron: string, target: StaticTarget, scheduledTime: number): Promise<void> {
  // The fire slot names the run's idempotency key, so a duplicated Cron Trigger invocation creates no second run.
  await createRun(env, {
    idempotencyKey: `static:${cron}:${scheduledTime}`,
    target,
    dueAt: scheduledTime,
    priority: "default",
    retry: undefined,
    timeoutSeconds: 600,
    requestId: null,
    jobId: `static:${cron}`,
    fireSlot: scheduledTime,
  });
}
type StaticTarget = (typeof staticSchedules)[number]["target"];

/**
 * Each task shard keeps its own upkeep alarm while it has runs waiting; this nudge re-arms a
 * lost one and lets a shard that went quiet still apply retention.
 */
async function nudgeTaskShards(env: Env): Promise<number> {
  const shards = Array.from({ length: taskShardCount(env) }, (_, n) => n);
  return eachIsolated(
    shards.map((n) => ({ id: String(n) })),
    "task_shard",
    (shard) => taskShard(env, Number(shard.id)).ensureArmed(shard.id),
  );
}

/** Re-arms active jobs whose promise is overdue or unknown (a lost alarm, a failed deploy). */
async function rearmLateJobs(env: Env, now: number): Promise<number> {
  const db = database(env.DB);
  // Two range scans on (state, next_run_at): an OR of both conditions would scan every active job.
  const [unknown, overdue] = await Promise.all([
    db
      .select()
      .from(jobs)
      .where(and(eq(jobs.state, "active"), isNull(jobs.nextRunAt)))
      .limit(BATCH)
      .all(),
    db
      .select()
      .from(jobs)
      .where(and(eq(jobs.state, "active"), lt(jobs.nextRunAt, now - LATE_JOB_MS)))
      .limit(BATCH)
      .all(),
  ]);
  const late = [...unknown, ...overdue];
  return eachIsolated(late, "job", async (job) => {
    // The JobObject honoured a deletion whose D1 step failed: finish it.
    if ((await jobObject(env, job.id).ensureArmed(job)) === "removed") await deleteJobAndPendingRuns(db, job, now);
  });
}

/**
 * The dead-man's switch: tells each job past its success deadline, earliest first (an indexed
 * scan of overdue jobs only), then moves the deadlines of those told on by their window, so the
 * next tick reaches the jobs after them.
 */
async function checkSuccessDeadlines(env: Env, now: number): Promise<number> {
  const db = database(env.DB);
  const told: DeadlineTold[] = [];
  const done = await eachIsolated(await deadlinesPassed(db, now, BATCH), "job_deadline", async (job) => {
    await jobObject(env, job.id).deadlineMissed(now);
    const window = (job.alerts as JobAlerts | null)?.expect_success_within ?? DEADLINE_RECHECK_S;
    if (job.successDeadlineAt !== null) told.push({ id: job.id, missed: job.successDeadlineAt, next: now + window * 1000 });
  });
  await deferSuccessDeadlines(db, told);
  return done;
}

/**
 * Retention, every minute: deletes finished runs past RUN_RETENTION_DAYS until none are left or
 * the tick's budget is spent, so deletion keeps pace with any rate runs are written at.
 */
async function deleteExpiredRuns(env: Env, now: number): Promise<number> {
  const budget = { maxRows: RETENTION_PER_TICK.maxRows, until: now + RETENTION_PER_TICK.budgetMs };
  const { deleted } = await deleteOldRuns(database(env.DB), retentionDays(env.RUN_RETENTION_DAYS), budget, now);
  return deleted;
}

/** Reclaims runs whose lease expired (unless `reclaimLeases` is false) and re-sends waiting runs whose message was lost. */
async function recoverOverdueRuns(env: Env, now: number, reclaimLeases: boolean): Promise<number> {
  const db = database(env.DB);
  const overdue = (await overdueRuns(db, now - LOST_MESSAGE_MS, now, BATCH)).filter((run) => reclaimLeases || run.status !== "running");
  return eachIsolated(overdue, "run", async (run) => {
    const recovered = run.status === "running" ? await reclaimExpiredLease(db, run, now) : await requeueStaleRun(db, run, now);
    if (!recovered) return;
    if (isFinal(recovered.status as RunStatus)) await onRunFinished(env, recovered);
    else await dispatchRun(env, recovered, now);
  });
}
