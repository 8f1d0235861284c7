import { database } from "../db/client";
import type { Env } from "../env";
import { dispatchRuns } from "../execution/dispatch";
import { type HttpTarget, type Priority, RetryPolicy, type Target } from "../execution/target-schema";
import { fireRunId, newId } from "../ids";
import { log } from "../log";
import { type Companion, insertFinalRun, insertJobRun, type LiveJob, type NewRun, type Refusal, type RunRow } from "./store";
import { type InsertResult, insertRuns } from "./store-batch";

export interface RunSpec {
  /** The run's id when the caller needs it first (a lease taken under it); else derived or new. */
  id?: string;
  target: Target;
  /** When it is due; `scheduledFor` (the fire time) defaults to it, jitter makes them differ. */
  dueAt: number;
  scheduledFor?: number;
  priority: Priority;
  retry: RetryPolicy | undefined;
  timeoutSeconds: number;
  requestId: string | null;
  idempotencyKey?: string | undefined;
  jobId?: string | null;
  jobVersion?: number | null;
  fireSlot?: number | null;
  retryOf?: string | null;
  expiresAt?: number | null;
  callback?: HttpTarget | null;
  failureCallback?: HttpTarget | null;
  parentRunId?: string | null;
}

/**
 * Writes a new run and sends its first message: the one way work enters the
 * executor. A failed send leaves the run waiting in D1, where the heartbeat
 * finds and re-sends it, so an accepted run is never lost.
 */
export async function createRun(env: Env, spec: RunSpec, now = Date.now()): Promise<{ run: RunRow; created: boolean }> {
  const [result] = await createRuns(env, [spec], now);
  if (!result) throw new Error("createRuns returned no result");
  if ("error" in result) throw result.error;
  return result;
}

/**
 * createRun for many runs (bulk enqueue): the inserts share one D1 round
 * trip and the messages one send per queue. Results are in `specs` order; a
 * run that could not be written has its error instead.
 */
export async function createRuns(env: Env, specs: RunSpec[], now = Date.now()): Promise<InsertResult[]> {
  if (specs.length === 0) return [];
  const values = await Promise.all(specs.map((spec) => newRunValues(spec, now)));
  const results = await insertRuns(database(env.DB), values);
  await sendFirstMessages(
    env,
    results.flatMap((r) => ("run" in r && r.created ? [r.run] : [])),
    now,
  );
  return results;
}

/**
 * createRun for a job's run (a fire, or run-now): written only while the job
 * exists as the caller knows it and, for a fire, while the scheduler runs
 * (checked in the insert's own round trip). `fire` is undefined when nothing
 * was written, and `refused` says why. `companion` rides in the insert's round trip.
 */
export async function createJobRun(
  env: Env,
  spec: RunSpec & { jobId: string },
  job: LiveJob,
  options: { checkSchedulerPause: boolean; companion?: Companion | undefined },
  now = Date.now(),
): Promise<{ fire: { run: RunRow; created: boolean } | undefined; companionMatched: boolean; refused?: Refusal }> {
  const result = await insertJobRun(database(env.DB), await newRunValues(spec, now), job, options);
  if (result.fire?.created) await sendFirstMessages(env, [result.fire.run], now);
  return result;
}

/** A failed send leaves the runs waiting in D1, where the heartbeat finds and re-sends them. */
async function sendFirstMessages(env: Env, fresh: RunRow[], now: number): Promise<void> {
  try {
    await dispatchRuns(env, fresh, now);
  } catch (error) {
    log("error", "dispatch_failed", { run_ids: fresh.map((r) => r.id), error: error instanceof Error ? error.message : String(error) });
  }
}

async function newRunValues(spec: RunSpec, now: number): Promise<NewRun> {
  const retry = RetryPolicy.parse(spec.retry ?? {});
  const fireSlot = spec.fireSlot ?? null;
  return {
    // A fire's run has the fire's id, so the same fire cannot start a second run.
    id: spec.id ?? (spec.jobId && fireSlot !== null ? await fireRunId(spec.jobId, fireSlot) : newId("run", now)),
    jobId: spec.jobId ?? null,
    fireSlot,
    status: spec.dueAt > now ? "scheduled" : "queued",
    attempt: 0,
    maxAttempts: retry.max_attempts,
    target: spec.target,
    retry,
    timeout: spec.timeoutSeconds,
    priority: spec.priority,
    scheduledFor: spec.scheduledFor ?? spec.dueAt,
    availableAt: spec.dueAt,
    jobVersion: spec.jobVersion ?? null,
    requestId: spec.requestId,
    idempotencyKey: spec.idempotencyKey ?? null,
    retryOf: spec.retryOf ?? null,
    expiresAt: spec.expiresAt ?? null,
    callback: spec.callback ?? null,
    failureCallback: spec.failureCallback ?? null,
    parentRunId: spec.parentRunId ?? null,
    createdAt: now,
    updatedAt: now,
  };
}

export interface SkippedFire {
  jobId: string;
  jobVersion: number;
  slot: number;
  status: "missed" | "skipped";
  target: Target;
  priority: Priority;
}

/** Records a fire that did not run (missed its grace time, or max_instances was reached). */
export async function recordSkippedFire(env: Env, fire: SkippedFire, now = Date.now()): Promise<void> {
  await insertFinalRun(database(env.DB), {
    // The fire's id: a fire recorded as missed or skipped cannot also get a run, nor be counted twice.
    id: await fireRunId(fire.jobId, fire.slot),
    jobId: fire.jobId,
    fireSlot: fire.slot,
    status: fire.status,
    attempt: 0,
    maxAttempts: 0,
    target: fire.target,
    timeout: 0,
    priority: fire.priority,
    scheduledFor: fire.slot,
    availableAt: now,
    finishedAt: now,
    jobVersion: fire.jobVersion,
    error: { message: fire.status === "missed" ? "fire was later than misfire_grace_time" : "max_instances runs were in flight" },
    createdAt: now,
    updatedAt: now,
  });
}
