import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Times are stored as epoch milliseconds; JSON columns hold the validated wire shapes. */
const epochMs = (name: string) => integer(name);
const stamp = (name: string) => epochMs(name).notNull().default(sql`(strftime('%s', 'now') * 1000)`);

export const jobs = sqliteTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    trigger: text("trigger", { mode: "json" }).notNull(),
    target: text("target", { mode: "json" }).notNull(),
    timezone: text("timezone").notNull().default("UTC"),
    startDate: epochMs("start_date"),
    endDate: epochMs("end_date"),
    jitter: integer("jitter").notNull().default(0),
    maxInstances: integer("max_instances").notNull().default(1),
    coalesce: integer("coalesce", { mode: "boolean" }).notNull().default(true),
    misfireGraceTime: integer("misfire_grace_time"),
    retry: text("retry", { mode: "json" }),
    timeout: integer("timeout"),
    priority: text("priority").notNull().default("default"),
    /** active | paused | finished (a date trigger that has fired, or past end_date). */
    state: text("state").notNull().default("active"),
    version: integer("version").notNull().default(1),
    tags: text("tags", { mode: "json" }),
    metadata: text("metadata", { mode: "json" }),
    /**
     * When the JobObject promises to report in next: its next fire, or later for a frequent
     * job (src/scheduling/report-promise.ts). The heartbeat re-arms jobs whose promise is overdue.
     * Not the next fire: the API computes that from the trigger.
     */
    nextRunAt: epochMs("next_run_at"),
    /** Alert settings: where to notify and on what (dead runs, failure streaks, missed deadline). */
    alerts: text("alerts", { mode: "json" }),
    /**
     * When the job must next have succeeded by (expect_success_within); null without a deadline.
     * Once the heartbeat has told the job it passed, it moves on by expect_success_within, so the
     * overdue scan moves past it; deadline_missed_at keeps the deadline that was missed.
     */
    successDeadlineAt: epochMs("success_deadline_at"),
    /** The success deadline the job missed, while no run has succeeded since; null otherwise. */
    deadlineMissedAt: epochMs("deadline_missed_at"),
    /**
     * When the trigger was last set (created, or changed by PATCH/PUT): an interval without a
     * start_date counts from here (APScheduler's default start, now + interval). Null: created_at.
     */
    anchoredAt: epochMs("anchored_at"),
    /** When the job's latest run was due, as its JobObject last reported with its statistics. */
    lastRunAt: epochMs("last_run_at"),
    createdAt: stamp("created_at"),
    updatedAt: stamp("updated_at"),
  },
  (t) => [
    // The heartbeat looks only at active jobs whose promise (next_run_at) is overdue.
    index("jobs_state_next_run_idx").on(t.state, t.nextRunAt),
    // The heartbeat's deadline check reads only overdue jobs; jobs without a deadline cost nothing.
    index("jobs_success_deadline_idx").on(t.successDeadlineAt).where(sql`success_deadline_at IS NOT NULL`),
    // Jobs in a missed-deadline incident (for /readyz); an entry is written once per incident, not per run.
    index("jobs_deadline_missed_idx").on(t.deadlineMissedAt).where(sql`deadline_missed_at IS NOT NULL`),
  ],
);

export const runs = sqliteTable(
  "runs",
  {
    id: text("id").primaryKey(),
    /** Null for an ad-hoc task. */
    jobId: text("job_id"),
    /** The trigger's fire time for a scheduled run; null for tasks, run-now and retries. */
    fireSlot: epochMs("fire_slot"),
    status: text("status").notNull(),
    attempt: integer("attempt").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(1),
    target: text("target", { mode: "json" }).notNull(),
    retry: text("retry", { mode: "json" }),
    timeout: integer("timeout").notNull(),
    priority: text("priority").notNull().default("default"),
    scheduledFor: epochMs("scheduled_for").notNull(),
    /**
     * When the next attempt is due while waiting. Claiming a run leaves it alone (the lease's
     * expiry is lease_expires_at), so the claim writes no index entry.
     */
    availableAt: epochMs("available_at").notNull(),
    startedAt: epochMs("started_at"),
    /** Set exactly when the status becomes final: it is what takes a run out of runs_pending_idx. */
    finishedAt: epochMs("finished_at"),
    durationMs: integer("duration_ms"),
    leaseExpiresAt: epochMs("lease_expires_at"),
    jobVersion: integer("job_version"),
    requestId: text("request_id"),
    idempotencyKey: text("idempotency_key"),
    retryOf: text("retry_of"),
    cancelRequested: integer("cancel_requested", { mode: "boolean" }).notNull().default(false),
    /** A task not started by then ends `expired` and never runs. */
    expiresAt: epochMs("expires_at"),
    /** Targets run when this run succeeds / finally fails (QStash's callback and failureCallback). */
    callback: text("callback", { mode: "json" }),
    failureCallback: text("failure_callback", { mode: "json" }),
    /** The run a callback or alert run was made for. */
    parentRunId: text("parent_run_id"),
    /** Why the next attempt is waiting without spending an attempt (open circuit, rate limit). */
    deferredReason: text("deferred_reason"),
    /** One entry per finished attempt, appended in the same UPDATE that records it (no extra rows). */
    attempts: text("attempts", { mode: "json" }),
    result: text("result", { mode: "json" }),
    error: text("error", { mode: "json" }),
    createdAt: stamp("created_at"),
    updatedAt: stamp("updated_at"),
  },
  (t) => [
    // One run per fire slot needs no index of its own: a scheduled run's id is derived from
    // (job, fire slot) (fireRunId), so the primary key refuses a second run for the same fire.
    // Partial indexes cost no writes for the runs they do not cover.
    uniqueIndex("runs_idempotency_key_uq").on(t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
    index("runs_job_scheduled_idx").on(t.jobId, t.scheduledFor).where(sql`job_id IS NOT NULL`),
    // Unfinished runs only, by due time: the heartbeat's overdue scan and the waiting/running
    // listings. A run leaves it for free when it finishes, and claiming it touches no column of it.
    index("runs_pending_idx").on(t.availableAt).where(sql`finished_at IS NULL`),
    // The dashboard's latest failures; succeeded runs never enter it.
    index("runs_failed_idx").on(t.finishedAt).where(sql`status IN ('failed', 'dead')`),
  ],
);

/** Duration histogram bucket upper bounds in milliseconds (the last bucket is +Inf). */
export const DURATION_BUCKETS_MS = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000] as const;

const bucketColumns = () => ({
  b0: integer("b0").notNull().default(0),
  b1: integer("b1").notNull().default(0),
  b2: integer("b2").notNull().default(0),
  b3: integer("b3").notNull().default(0),
  b4: integer("b4").notNull().default(0),
  b5: integer("b5").notNull().default(0),
  b6: integer("b6").notNull().default(0),
  b7: integer("b7").notNull().default(0),
  b8: integer("b8").notNull().default(0),
  b9: integer("b9").notNull().default(0),
  b10: integer("b10").notNull().default(0),
  b11: integer("b11").notNull().default(0),
  b12: integer("b12").notNull().default(0),
  b13: integer("b13").notNull().default(0),
});

/** Counters by outcome and the duration histogram: a rollup's and a total's columns. */
const counterColumns = () => ({
  succeeded: integer("succeeded").notNull().default(0),
  failed: integer("failed").notNull().default(0),
  dead: integer("dead").notNull().default(0),
  cancelled: integer("cancelled").notNull().default(0),
  missed: integer("missed").notNull().default(0),
  skipped: integer("skipped").notNull().default(0),
  expired: integer("expired").notNull().default(0),
  durationCount: integer("duration_count").notNull().default(0),
  durationSumMs: integer("duration_sum_ms").notNull().default(0),
  ...bucketColumns(),
});

/** Hourly rollups per job (job_id '' for ad-hoc tasks), so stats never scan runs. */
export const jobStats = sqliteTable(
  "job_stats",
  {
    jobId: text("job_id").notNull(),
    hour: epochMs("hour").notNull(),
    ...counterColumns(),
    lastRunId: text("last_run_id"),
    lastStatus: text("last_status"),
    lastFinishedAt: epochMs("last_finished_at"),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.hour] }), index("job_stats_hour_idx").on(t.hour)],
);

/**
 * Per job, the sum of its hourly rollups up to the hour scheduler_state's `stats_folded_through`
 * names. The heartbeat folds closed hours in, so /metrics reads one row per job plus the hours
 * since, however long the history.
 */
export const jobTotals = sqliteTable("job_totals", {
  jobId: text("job_id").primaryKey(),
  ...counterColumns(),
});

/** Scheduler-wide key/value state: pause flag, heartbeat tick, stats watermark. */
export const schedulerState = sqliteTable("scheduler_state", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAt: epochMs("updated_at").notNull(),
});

/** A mirror of each host guard's circuit and deferral counts, so /metrics reads them from D1. */
export const hostGuards = sqliteTable("host_guards", {
  host: text("host").primaryKey(),
  circuit: text("circuit").notNull(),
  consecutiveFailures: integer("consecutive_failures").notNull().default(0),
  openedAt: epochMs("opened_at"),
  deferredCircuit: integer("deferred_circuit").notNull().default(0),
  deferredConcurrency: integer("deferred_concurrency").notNull().default(0),
  deferredRateLimit: integer("deferred_rate_limit").notNull().default(0),
  updatedAt: epochMs("updated_at").notNull(),
});

/**
 * How far each owner of runs (a job's JobObject, a task shard) has added its finished runs to
 * job_stats: an owner's flush moves this mark and adds its counts in one D1 batch, only if the
 * mark is where the owner read it, so a repeated flush adds nothing twice.
 */
export const statsFlushes = sqliteTable("stats_flushes", {
  ownerId: text("owner_id").primaryKey(),
  flushedThrough: epochMs("flushed_through").notNull(),
});

/**
 * Runs that ended failed or dead, whoever owns them: the dashboard's latest failures and
 * GET /v1/runs?status=failed|dead read here. A run that succeeds never enters it.
 */
export const runFailures = sqliteTable(
  "run_failures",
  {
    id: text("id").primaryKey(),
    jobId: text("job_id"),
    status: text("status").notNull(),
    finishedAt: epochMs("finished_at").notNull(),
    /** The run as the API shows it, at the time it ended. */
    run: text("run", { mode: "json" }).notNull(),
  },
  (t) => [index("run_failures_finished_idx").on(t.finishedAt)],
);
