import { and, eq, gte, inArray, isNull, lt, lte, ne, or, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { runs } from "../db/schema";
import { log } from "../log";
import { schedulerRunningCondition } from "../scheduling/scheduler-state";
import { attemptEntry } from "./attempt-history";
import { bounded } from "./bounded";
import { fromRaw, logChange, runColumns } from "./run-rows";
import { LEASE_GRACE_MS } from "./run-timeout";
import { type FinishedRun, rollupStatement } from "./stats-rollup";
import { type RunStatus, sourcesOf, WAITING } from "./transitions";

/**
 * The one module that changes a run's status (store-batch.ts does the same
 * changes for many runs at once). Every change is a conditional
 * UPDATE on the status (and attempt) it expects, so duplicate deliveries,
 * redeliveries and races cannot run an attempt twice or lose a run.
 */
export type RunRow = typeof runs.$inferSelect;
export type NewRun = typeof runs.$inferInsert;

/** A run due within this window may start now rather than wait for another message. */
export const EARLY_START_MS = 1_000;

/**
 * Runs a conditional run update and the stats rollup as one D1 transaction;
 * the rollup counts only if the update changed a row. Returns the updated run.
 */
async function updateWithRollup(
  db: Db,
  update: { toSQL(): { sql: string; params: unknown[] } },
  finished: FinishedRun,
): Promise<RunRow | undefined> {
  const d1 = db.$client;
  const query = update.toSQL();
  const rollup = rollupStatement(finished);
  const [updated] = await d1.batch<Record<string, unknown>>([
    d1.prepare(query.sql).bind(...query.params),
    d1.prepare(rollup.sql).bind(...rollup.params),
  ]);
  const raw = updated?.results[0];
  return raw ? fromRaw(raw) : undefined;
}

/**
 * Inserts a run. When its idempotency key or id is taken (a replayed request;
 * a duplicate alarm, whose fire slot gives the same id), returns the run that holds it instead.
 */
export async function insertRun(db: Db, values: NewRun): Promise<{ run: RunRow; created: boolean }> {
  const inserted = await db.insert(runs).values(values).onConflictDoNothing().returning();
  return insertOutcome(db, values, inserted[0]);
}

/** A statement sent in another's D1 round trip (and transaction); the caller learns whether it returned a row. */
export interface Companion {
  sql: string;
  params: unknown[];
}

/** Why a job's run was not written: the scheduler is paused, or the job is gone or at another version. */
export type Refusal = "scheduler_paused" | "job_changed";

/** The job a run belongs to, as the writer knows it: the insert happens only while it exists (at `version`, when given). */
export interface LiveJob {
  id: string;
  version?: number;
}

/**
 * Inserts a job's run (a fire, or run-now) only while the job exists as the
 * writer knows it and, for a fire, while the scheduler is not paused: the checks
 * ride in the insert's round trip, so an alarm makes one D1 call per fire, and so
 * may the JobObject's schedule record (`companion`), which runs whatever the
 * checks say. `fire` is the new run, or the run this fire already has (a repeated
 * alarm); when nothing was written, `refused` says why.
 */
export async function insertJobRun(
  db: Db,
  values: NewRun,
  job: LiveJob,
  options: { checkSchedulerPause: boolean; companion?: Companion | undefined },
): Promise<{ fire: { run: RunRow; created: boolean } | undefined; companionMatched: boolean; refused?: Refusal }> {
  const present = runColumns.filter(([key]) => values[key] !== undefined);
  const conditions = [jobLiveCondition(job), ...(options.checkSchedulerPause ? [schedulerRunningCondition()] : [])];
  // INSERT ... SELECT needs its WHERE before ON CONFLICT (SQLite's upsert parsing rule).
  const statement = `insert into "runs" (${present.map(([, column]) => `"${column.name}"`).join(", ")}) select ${present.map(() => "?").join(", ")} where ${conditions.map((c) => c.sql).join(" and ")} on conflict do nothing returning *`;
  // Null stays SQL NULL (a JSON column would map it to the text 'null'), as Drizzle's own insert does.
  const params = [
    ...present.map(([key, column]) => (values[key] === null ? null : column.mapToDriverValue(values[key]))),
    ...conditions.flatMap((c) => c.params),
  ];
  const d1 = db.$client;
  const companion = options.companion;
  const [insert, alongside] = await d1.batch<Record<string, unknown>>([
    d1.prepare(statement).bind(...params),
    ...(companion ? [d1.prepare(companion.sql).bind(...companion.params)] : []),
  ]);
  const companionMatched = (alongside?.results.length ?? 0) > 0;
  const inserted = insert?.results[0];
  if (inserted) return { fire: await insertOutcome(db, values, fromRaw(inserted)), companionMatched };
  const existing = await getRun(db, values.id);
  if (existing) return { fire: { run: existing, created: false }, companionMatched };
  return { fire: undefined, companionMatched, refused: await refusalOf(db, job) };
}

/** A WHERE condition that holds while the job exists (at its version, when given). */
function jobLiveCondition(job: LiveJob): { sql: string; params: (string | number)[] } {
  return job.version === undefined
    ? { sql: `exists (select 1 from "jobs" where "id" = ?)`, params: [job.id] }
    : { sql: `exists (select 1 from "jobs" where "id" = ? and "version" = ?)`, params: [job.id, job.version] };
}

/** Why a job's insert wrote nothing (read only then, which is rare). */
async function refusalOf(db: Db, job: LiveJob): Promise<Refusal> {
  const row = await db.$client.prepare(`select "version" from "jobs" where "id" = ?`).bind(job.id).first<{ version: number }>();
  if (!row || (job.version !== undefined && row.version !== job.version)) return "job_changed";
  return "scheduler_paused";
}

/** What an insert came to: the new run, or the run holding its key (looked up). */
export async function insertOutcome(db: Db, values: NewRun, inserted: RunRow | undefined): Promise<{ run: RunRow; created: boolean }> {
  if (inserted) {
    logChange(inserted, "none", inserted.status as RunStatus);
    return { run: inserted, created: true };
  }
  const holder = values.idempotencyKey ? eq(runs.idempotencyKey, values.idempotencyKey) : eq(runs.id, values.id);
  const existing = await db.select().from(runs).where(holder).get();
  if (!existing) throw new Error("run insert conflicted but no run holds its key");
  return { run: existing, created: false };
}

/** Inserts a run that is final from birth (a missed or skipped fire) and counts it, once per fire slot. */
export async function insertFinalRun(db: Db, values: NewRun): Promise<void> {
  const query = db.insert(runs).values(values).onConflictDoNothing().toSQL();
  const rollup = rollupStatement({
    runId: values.id,
    jobId: values.jobId ?? null,
    status: values.status as RunStatus,
    finishedAt: values.finishedAt ?? values.updatedAt ?? Date.now(),
    durationMs: null,
  });
  await db.$client.batch([db.$client.prepare(query.sql).bind(...query.params), db.$client.prepare(rollup.sql).bind(...rollup.params)]);
  logChange({ id: values.id, jobId: values.jobId ?? null, requestId: null, attempt: 0 }, "none", values.status as RunStatus);
}

/** Loads one run by id. */
export async function getRun(db: Db, id: string): Promise<RunRow | undefined> {
  return db.select().from(runs).where(eq(runs.id, id)).get();
}

/**
 * The conditional UPDATE that starts attempt `attempt` of a waiting run that
 * is due, and takes its lease; it matches nothing when another delivery got
 * there first. store-batch.ts's claimRuns sends these.
 */
export function claimQuery(db: Db, id: string, attempt: number, now: number) {
  return db
    .update(runs)
    .set({
      status: "running",
      attempt,
      startedAt: now,
      durationMs: null,
      // Neither available_at nor finished_at: touching a column of runs_pending_idx would cost an index write.
      leaseExpiresAt: sql`${now} + ${runs.timeout} * 1000 + ${LEASE_GRACE_MS}`,
      updatedAt: now,
    })
    .where(
      and(
        eq(runs.id, id),
        inArray(runs.status, [...WAITING]),
        eq(runs.attempt, attempt - 1),
        eq(runs.cancelRequested, false),
        // Due (or nearly), and not a task that expired before its first attempt.
        lte(runs.availableAt, now + EARLY_START_MS),
        or(ne(runs.attempt, 0), isNull(runs.expiresAt), gte(runs.expiresAt, now)),
      ),
    )
    .returning();
}

/**
 * Gives back a claim whose attempt could not start (the host guard said
 * wait): the run waits again until `until`, without spending the attempt,
 * and shows why. Conditional on the claim still being this one.
 */
export async function unclaimRun(db: Db, run: RunRow, until: number, reason: string, now: number): Promise<RunRow | undefined> {
  const [waiting] = await db
    .update(runs)
    .set({
      status: run.attempt > 1 ? "retrying" : "queued",
      attempt: run.attempt - 1,
      startedAt: null,
      leaseExpiresAt: null,
      availableAt: until,
      deferredReason: reason,
      updatedAt: now,
    })
    .where(and(eq(runs.id, run.id), eq(runs.status, "running"), eq(runs.attempt, run.attempt)))
    .returning();
  if (waiting) log("info", "run_deferred", { run_id: run.id, attempt: run.attempt, until: new Date(until).toISOString(), reason });
  return waiting;
}

export type AttemptOutcome =
  | { status: "succeeded"; result: unknown }
  | { status: "failed" | "dead"; error: unknown }
  | { status: "retrying"; error: unknown; availableAt: number };

/**
 * Records the end of the current attempt of a running run. Final outcomes
 * update the stats rollup in the same batch, and only if the status changed.
 * Returns the updated run, or undefined when the run was no longer running
 * that attempt (cancelled, or reclaimed after its lease expired).
 */
export async function finishAttempt(db: Db, run: RunRow, outcome: AttemptOutcome, now: number): Promise<RunRow | undefined> {
  const { update, finished } = finishQuery(db, run, outcome, now);
  const updated = finished ? await updateWithRollup(db, update, finished) : (await update)[0];
  if (updated) logChange(updated, "running", outcome.status, { duration_ms: updated.durationMs });
  return updated;
}

/** The conditional UPDATE that records an attempt, and the rollup it feeds when final (shared with store-batch.ts). */
export function finishQuery(db: Db, run: RunRow, outcome: AttemptOutcome, now: number) {
  const durationMs = run.startedAt === null ? null : Math.max(0, now - run.startedAt);
  const entry = attemptEntry(run, outcome, now, durationMs);
  // The attempt history lives in the run row, appended by this same UPDATE: no extra rows to write.
  const common = {
    updatedAt: now,
    leaseExpiresAt: null,
    deferredReason: null,
    attempts: sql`json_insert(coalesce(${runs.attempts}, '[]'), '$[#]', json(${JSON.stringify(entry)}))`,
  };
  const values =
    outcome.status === "retrying"
      ? { ...common, status: outcome.status, error: bounded(outcome.error), availableAt: outcome.availableAt, durationMs }
      : {
          ...common,
          status: outcome.status,
          finishedAt: now,
          durationMs,
          availableAt: now,
          ...(outcome.status === "succeeded" ? { result: bounded(outcome.result), error: null } : { error: bounded(outcome.error) }),
        };
  const update = db
    .update(runs)
    .set(values)
    .where(and(eq(runs.id, run.id), eq(runs.status, "running"), eq(runs.attempt, run.attempt)))
    .returning();
  const finished: FinishedRun | undefined =
    outcome.status === "retrying" ? undefined : { runId: run.id, jobId: run.jobId, status: outcome.status, finishedAt: now, durationMs };
  return { update, finished };
}

/** Ends a task whose expires_at passed before its first attempt started: it never runs. */
export async function expireRun(db: Db, run: RunRow, now: number): Promise<RunRow | undefined> {
  const update = db
    .update(runs)
    .set({
      status: "expired",
      finishedAt: now,
      availableAt: now,
      updatedAt: now,
      error: { message: "expired before it started", expires_at: new Date(run.expiresAt ?? now).toISOString() },
    })
    .where(and(eq(runs.id, run.id), inArray(runs.status, [...WAITING]), eq(runs.attempt, 0)))
    .returning();
  const expired = await updateWithRollup(db, update, {
    runId: run.id,
    jobId: run.jobId,
    status: "expired",
    finishedAt: now,
    durationMs: null,
  });
  if (expired) logChange(expired, run.status, "expired");
  return expired;
}

/** Cancels a run that has not finished. A running attempt's result will be ignored. */
export async function cancelRun(db: Db, id: string, now: number): Promise<RunRow | undefined> {
  const update = db
    .update(runs)
    .set({ status: "cancelled", cancelRequested: true, finishedAt: now, leaseExpiresAt: null, availableAt: now, updatedAt: now })
    .where(and(eq(runs.id, id), inArray(runs.status, sourcesOf("cancelled"))))
    .returning();
  const before = await getRun(db, id);
  if (!before) return undefined;
  const cancelled = await updateWithRollup(db, update, {
    runId: id,
    jobId: before.jobId,
    status: "cancelled",
    finishedAt: now,
    durationMs: null,
  });
  if (cancelled) logChange(cancelled, before.status, "cancelled");
  return cancelled;
}

/**
 * Takes back a run whose consumer vanished: its lease expired while running.
 * It retries if attempts remain, else it is dead. Returns the updated run.
 */
export async function reclaimExpiredLease(db: Db, run: RunRow, now: number): Promise<RunRow | undefined> {
  if (run.status !== "running" || run.leaseExpiresAt === null || run.leaseExpiresAt > now) return undefined;
  const error = { message: "lease expired: the consumer running this attempt stopped without a result", attempt: run.attempt };
  const outcome: AttemptOutcome =
    run.attempt < run.maxAttempts ? { status: "retrying", error, availableAt: now } : { status: "dead", error };
  const reclaimed = await finishAttempt(db, run, outcome, now);
  if (reclaimed) log("warn", "lease_expired", { run_id: run.id, attempt: run.attempt, to: outcome.status });
  return reclaimed;
}

/** The UPDATE that cancels every waiting run of a deleted job (they never start); sent in the deletion's batch. */
export function cancelPendingRunsQuery(db: Db, jobId: string, now: number) {
  return db
    .update(runs)
    .set({ status: "cancelled", cancelRequested: true, finishedAt: now, updatedAt: now })
    .where(and(eq(runs.jobId, jobId), inArray(runs.status, [...WAITING])))
    .returning({ id: runs.id });
}

/**
 * Waiting runs due before `waitingBefore` (a lost message) and running runs whose lease expired before `now`.
 * One range scan of runs_pending_idx: a running run keeps the due time it was claimed at, so it is in range.
 */
export async function overdueRuns(db: Db, waitingBefore: number, now: number, limit: number): Promise<RunRow[]> {
  return db
    .select()
    .from(runs)
    .where(
      and(
        isNull(runs.finishedAt),
        lt(runs.availableAt, now),
        or(
          and(inArray(runs.status, [...WAITING]), lt(runs.availableAt, waitingBefore)),
          and(eq(runs.status, "running"), lt(runs.leaseExpiresAt, now)),
        ),
      ),
    )
    .limit(limit)
    .all();
}

/** Marks a waiting run as re-sent now, so the heartbeat re-sends it at most once per window. */
export async function requeueStaleRun(db: Db, run: RunRow, now: number): Promise<RunRow | undefined> {
  const [requeued] = await db
    .update(runs)
    .set({ availableAt: now, updatedAt: now })
    // Still overdue: two heartbeat ticks at once re-send a lost message only once.
    .where(and(eq(runs.id, run.id), eq(runs.status, run.status), eq(runs.attempt, run.attempt), lt(runs.availableAt, run.availableAt + 1)))
    .returning();
  if (requeued) log("warn", "run_requeued", { run_id: run.id, attempt: run.attempt, status: run.status });
  return requeued;
}
