import { and, eq, gte, inArray, isNull, lt, lte, ne, or, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { runs } from "../db/schema";
import { log } from "../log";
import { attemptEntry } from "./attempt-history";
import { bounded } from "./bounded";
import { EARLY_START_MS } from "./changes";
import { fromRaw, logChange } from "./run-rows";
import { LEASE_GRACE_MS } from "./run-timeout";
import { type FinishedRun, rollupStatement } from "./stats-rollup";
import { sourcesOf, WAITING } from "./transitions";

/**
 * The runs D1 kept before runs moved to their owners (`run_…` ids): the old
 * executor path reads and changes them until they have drained and aged out;
 * nothing writes a new run here. store-batch.ts does the same changes for many
 * runs at once. Every change is a conditional
 * UPDATE on the status (and attempt) it expects, so duplicate deliveries,
 * redeliveries and races cannot run an attempt twice or lose a run.
 */
export type RunRow = typeof runs.$inferSelect;
export type NewRun = typeof runs.$inferInsert;

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
