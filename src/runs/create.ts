import { database } from "../db/client";
import type { Env } from "../env";
import { dispatchRun } from "../execution/dispatch";
import { RetryPolicy, type Priority, type Target } from "../execution/target-schema";
import { newId } from "../ids";
import { log } from "../log";
import { insertRun, type RunRow } from "./store";

export interface RunSpec {
  target: Target;
  dueAt: number;
  priority: Priority;
  retry: RetryPolicy | undefined;
  timeoutSeconds: number;
  requestId: string | null;
  idempotencyKey?: string | undefined;
  jobId?: string | null;
  jobVersion?: number | null;
  fireSlot?: number | null;
  retryOf?: string | null;
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
    scheduledFor: spec.dueAt,
    availableAt: spec.dueAt,
    jobVersion: spec.jobVersion ?? null,
    requestId: spec.requestId,
    idempotencyKey: spec.idempotencyKey ?? null,
    retryOf: spec.retryOf ?? null,
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
