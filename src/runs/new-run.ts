import { type HttpTarget, type Priority, type RetryPolicy, retryPolicyOf, type Target } from "../execution/target-schema";
import type { RunRow } from "./store";

/** What a new run is: where it comes from decides its id and its owner. */
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

/** A new run, waiting for its first attempt (queued, or scheduled when it is due later). */
export function newRunRow(spec: RunSpec, id: string, now: number): RunRow {
  const retry = retryPolicyOf(spec.retry);
  return {
    id,
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
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    leaseExpiresAt: null,
    jobVersion: spec.jobVersion ?? null,
    requestId: spec.requestId,
    idempotencyKey: spec.idempotencyKey ?? null,
    retryOf: spec.retryOf ?? null,
    cancelRequested: false,
    expiresAt: spec.expiresAt ?? null,
    callback: spec.callback ?? null,
    failureCallback: spec.failureCallback ?? null,
    parentRunId: spec.parentRunId ?? null,
    deferredReason: null,
    attempts: null,
    result: null,
    error: null,
    createdAt: now,
    updatedAt: now,
  };
}
