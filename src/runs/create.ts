import { database } from "../db/client";
import type { Env } from "../env";
import { dispatchRun } from "../execution/dispatch";
import { RetryPolicy, type HttpTarget, type Priority, type Target } from "../execution/target-schema";
import { newId } from "../ids";
import { log } from "../log";
import { insertFinalRun, insertRun, type RunRow } from "./store";

export interface RunSpec {
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
  const retry = RetryPolicy.parse(spec.retry ?? {});
  const { run, created } = await insertRun(database(env.DB), {
    id: newId("run", now),
    jobId: spec.jobId ?? null,
    fireSlot: spec.fireSlot ?? null,
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
  });
  if (created) {
    try {
      await dispatchRun(env, run, now);
    } catch (error) {
      log("error", "dispatch_failed", { run_id: run.id, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return { run, created };
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
    id: newId("run", now),
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
